#!/bin/bash
# The body of "make check" (the Makefile has built the VM programs first).
#
#   vm/check.sh                  host unit tests, harness self-tests, all VM scenarios
#   vm/check.sh --selftest-only  harness self-tests only
#   vm/check.sh --run NAME [--flavour debug|vm]   one scenario, verbose
#
# VM scenarios are every tests/vm/*.c, run with the debug kernel (or the
# flavours their kernels= metadata names, each built once first),
# $HUGELIVE_JOBS at a time (default nproc). Output:
# one TAP-ish line per item (scenario details indented), then exactly
# "N passed, N failed". Exit status 0 only when nothing failed.
# The whole script is one block: bash parses it before running it, so an
# edit of this file while it runs cannot derail the run.
{
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
MODE=all FLAVOUR=debug ONE=
while [ $# -gt 0 ]; do
	case $1 in
	--selftest-only) MODE=selftest ;;
	--run) MODE=one; ONE=$2; shift ;;
	--flavour) FLAVOUR=$2; shift ;;
	*) echo "usage: $0 [--selftest-only | --run NAME [--flavour F]]" >&2; exit 2 ;;
	esac
	shift
done

passed=0 failed=0 n=0
verdict() {  # verdict 0|1 "description"
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		passed=$((passed + 1)); echo "ok $n - $2"
	else
		failed=$((failed + 1)); echo "not ok $n - $2"
	fi
}
indent() { sed 's/^/    /'; }

t0=$(date +%s)

# ---- host unit tests ----
if [ $MODE = all ] && [ -f userspace/Makefile ]; then
	# Write back what the kernel unpack and the builds left dirty first:
	# the host tests time agent restarts, and a process writing its log
	# under heavy writeback can stall for seconds.
	sync
	out=$(make --no-print-directory -C userspace check 2>&1); rc=$?
	mkdir -p build/logs && printf '%s\n' "$out" >build/logs/userspace-check.log
	if [ $rc = 0 ]; then tail -n 5 <<<"$out" | indent
	else
		# every failing line first (a CI log shows only the end), then the tail
		{ echo "# failing lines (full log: build/logs/userspace-check.log):"
		  grep -B3 -A12 'not ok\|ERROR: \|runtime error' <<<"$out" | head -n 150
		  echo "# last 40 lines:"; tail -n 40 <<<"$out"; } | indent
	fi
	verdict $rc "host: make -C userspace check"
fi
if [ $MODE = all ]; then
	out=$(tests/kernel/checkpatch.sh 2>&1); rc=$?
	if [ $rc = 0 ]; then tail -n 1 <<<"$out" | indent; else tail -n 40 <<<"$out" | indent; fi
	verdict $rc "host: every kernel patch is checkpatch --strict clean"
	out=$(tests/bench/plot-partial.sh 2>&1); rc=$?
	if [ $rc = 0 ]; then tail -n 1 <<<"$out" | indent; else grep -E '^not ok' <<<"$out" | cut -c1-300 | indent; fi
	verdict $rc "host: bench/plot.sh plots partial results (BENCH_ONLY) and leaves out what has no data"
	# the series under Debian's own config, W=1 (cached per config + series)
	out=$(scripts/debian-config-check.sh 2>&1); rc=$?
	if [ $rc = 0 ]; then grep '^ok' <<<"$out" | indent; else tail -n 40 <<<"$out" | indent; fi
	verdict $rc "host: the series compiles under Debian's kernel config with W=1, no new warning"
	# the Debian packages: built (lintian: no error or warning), then
	# installed into a clean Debian 12 root (tests/pkg/install-test.sh)
	t0=$(date +%s)
	out=$( { scripts/install-deps.sh --pkg && scripts/build-debs.sh; } 2>&1); rc=$?
	if [ $rc = 0 ] && grep -qE '^[EW]: ' build/debs/lintian.txt; then
		rc=1
		out+=$'\n'"lintian errors or warnings:"$'\n'$(grep -E '^[EW]: ' build/debs/lintian.txt)
	fi
	if [ $rc = 0 ]; then grep -E '^build-debs: (built|lintian)' <<<"$out" | indent
	else { sed -n '/^build-debs: failed checks/,/^build-debs: dpkg-buildpackage failed/p' <<<"$out" | head -n 120
	       echo "# last 40 lines:"; tail -n 40 <<<"$out"; } | indent; fi
	verdict $rc "host: Debian packages build, lintian without error or warning ($(( $(date +%s) - t0 ))s)"
	if [ $rc = 0 ]; then
		t0=$(date +%s)
		out=$(tests/pkg/install-test.sh build/debs 2>&1); rc=$?
		if [ $rc = 0 ]; then tail -n 1 <<<"$out" | indent; else grep -B2 -A8 '^not ok' <<<"$out" | head -n 60 | indent; tail -n 10 <<<"$out" | indent; fi
		verdict $rc "host: the packages install into a clean Debian 12 root and work ($(( $(date +%s) - t0 ))s)"
	fi
fi

# ---- kernel and initramfs ----
KERNEL=$(scripts/build-kernel.sh "$FLAVOUR") || { verdict 1 "build the $FLAVOUR kernel"; echo "$passed passed, $failed failed"; exit 1; }
export HUGELIVE_KERNEL=$KERNEL
# The preflight of hugelivectl must find every format of this series in the
# kernel just built (a renamed compatible string would otherwise make every
# hugetlb update refuse).
if [ $MODE = all ] && [ -x userspace/build/bin/hugelivectl ]; then
	# (its exit status speaks of the host too, which runs no live update:
	# only the image rows are judged)
	json=$(userspace/build/bin/hugelivectl check --kernel "$KERNEL" --json 2>/dev/null || true)
	out=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = [c for c in d["checks"] if c["check"].startswith("image")]
for c in rows:
    print(c["check"], c["status"], c.get("reason", ""))
sys.exit(0 if len(rows) >= 6 and all(c["status"] == "pass" for c in rows) else 1)
' <<<"$json" 2>&1); rc=$?
	indent <<<"$out"
	verdict $rc "host: hugelivectl check --kernel finds every format of the series in the $FLAVOUR kernel"
fi
# Scenarios in make check: every tests/vm/*.c but those whose metadata says
# check=no (run by hand with make run S=NAME; named here so none hides).
in_check() { grep -L 'hugelive-scenario:.*check=no' tests/vm/*.c; }
if [ $MODE = all ]; then
	for src in $(grep -l 'hugelive-scenario:.*check=no' tests/vm/*.c); do
		echo "# not in make check (metadata check=no): $(basename "$src" .c)"
	done
fi
# Kernels the scenarios name besides this one (metadata kernels="..."):
# each built once here, before the guests run in parallel.
if [ $MODE = all ]; then
	images="$FLAVOUR=$KERNEL"
	for f in $(grep -h 'hugelive-scenario:.*' $(in_check) | grep -o 'kernels="[^"]*"' |
		   sed 's/^kernels="//; s/"$//' | tr ' ' '\n' | sort -u); do
		[ "$f" = "$FLAVOUR" ] && continue
		kt0=$(date +%s)
		if img=$(scripts/build-kernel.sh "$f"); then
			images+=" $f=$img"
			echo "# $f kernel: $img ($(( $(date +%s) - kt0 ))s)"
		else
			verdict 1 "build the $f kernel (named by kernels= of $(grep -l "kernels=\"[^\"]*\b$f\b" tests/vm/*.c | xargs -r -n1 basename | tr '\n' ' '))"
		fi
	done
	export HUGELIVE_IMAGES=$images
fi
run() { vm/run-scenario.sh "$@"; }

if [ $MODE = one ]; then
	run "$ONE"; rc=$?
	verdict $rc "$ONE"
	echo "$passed passed, $failed failed"
	exit $rc
fi

# ---- VM items: harness self-tests, then every tests/vm/*.c ----
# They run HUGELIVE_JOBS at a time (default: the number of CPUs; a TCG
# guest mostly keeps one host CPU busy), longest first, and are reported as
# they finish. Timeouts are scaled by the number of parallel jobs.
JOBS=${HUGELIVE_JOBS:-$(nproc)}
[ "$JOBS" -ge 1 ] 2>/dev/null || JOBS=1
export HUGELIVE_TIMEOUT_SCALE=${HUGELIVE_TIMEOUT_SCALE:-$JOBS}
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT

items=()   # "kind name": kind is corrupt, ksft-corrupt, hang or scenario
items+=("corrupt memfd-3gen" "ksft-corrupt kselftest-kexec-hugetlb" "hang selftest-hang")
if [ $MODE = all ]; then
	# Longest first (by the last run's time, build/logs/NAME.secs, or else
	# by the metadata timeout), so the slowest one does not start last.
	while read -r _ src; do items+=("scenario $src"); done < <(
		for src in $(in_check); do
			t=$(cat "build/logs/$(basename "$src" .c).secs" 2>/dev/null ||
			    grep -m1 -o 'hugelive-scenario:.*timeout=[0-9]*' "$src" | grep -o '[0-9]*$' ||
			    echo 120)
			echo "${t%.*} $src"
		done | sort -k1,1nr -k2,2)
fi

start_item() {  # start_item INDEX
	local kind=${items[$1]%% *} arg=${items[$1]#* }
	local cmd
	case $kind in
	corrupt)  cmd=(env CORRUPT=1 vm/run-scenario.sh -q -n selftest-corrupt "$arg") ;;
	ksft-corrupt) cmd=(env CORRUPT=1 vm/run-scenario.sh -q -n selftest-ksft-corrupt "$arg") ;;
	hang)     cmd=(vm/run-scenario.sh -q -t 40 "$arg") ;;
	scenario) cmd=(vm/run-scenario.sh "$arg") ;;
	esac
	(
		# A simple command: $! is run-scenario itself, so TERM reaches it.
		"${cmd[@]}" >"$TMPD/$1.out" 2>&1 &
		rpid=$!
		trap 'kill -TERM $rpid 2>/dev/null; wait $rpid; exit 143' TERM INT HUP
		wait $rpid
		echo $? >"$TMPD/$1.rc.tmp"
		mv "$TMPD/$1.rc.tmp" "$TMPD/$1.rc"
	) &
	pids[$1]=$!
}
pids=()
# Stopped (Ctrl-C, a CI timeout): stop every guest still running.
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait; rm -rf "$TMPD"; exit 143' TERM INT HUP

judge_item() {  # judge_item INDEX: print and count the result
	local kind=${items[$1]%% *} arg=${items[$1]#* } out rc desc res
	out=$(cat "$TMPD/$1.out"); rc=$(cat "$TMPD/$1.rc")
	case $kind in
	corrupt)
		# A word flipped after retrieve must fail memfd-3gen, naming its offset.
		desc="selftest: CORRUPT=1 fails memfd-3gen naming the flipped word 0x7654320"
		if [ "$rc" = 1 ] && grep -q 'not ok .*first bad offset 0x7654320 ' <<<"$out"; then
			grep -m1 'first bad offset' <<<"$out" | indent; verdict 0 "$desc"
		else
			indent <<<"$out"; verdict 1 "$desc"
		fi ;;
	ksft-corrupt)
		# A byte flipped between the kselftest's two stages must fail
		# stage 2 (and the scenario), naming the word that holds it.
		desc="selftest: CORRUPT=1 fails kselftest-kexec-hugetlb naming the flipped word 0x212340"
		res=${HUGELIVE_LOGDIR:-build/logs}/selftest-ksft-corrupt.results
		if [ "$rc" = 1 ] && grep -q 'not ok .*luo_hugetlb_dense: 4 present pages verified, 1 bad' <<<"$out" &&
		   grep -q 'luo_hugetlb_dense: page 1: word at 0x212340 is ' "$res" 2>/dev/null; then
			grep -m1 'word at 0x212340' "$res" | indent; verdict 0 "$desc"
		else
			indent <<<"$out"; verdict 1 "$desc"
		fi ;;
	hang)
		# A guest that never reports is killed at its timeout, with the log tail.
		desc="selftest: hanging guest is killed at its timeout and reported with the log tail"
		if [ "$rc" = 1 ] && grep -q 'reason: timeout: killed after' <<<"$out" &&
		   grep -q -- '--- last 40 lines of' <<<"$out" &&
		   grep -q 'selftest-hang: sleeping forever' <<<"$out"; then
			grep -E 'not ok|reason:' <<<"$out" | indent; verdict 0 "$desc"
		else
			indent <<<"$out"; verdict 1 "$desc"
		fi ;;
	scenario)
		# run-scenario prints the scenario's TAP lines indented, then its verdict.
		grep -v -E '^(not )?ok - ' <<<"$out"
		desc=$(grep -E '^(not )?ok - ' <<<"$out" | tail -n1 | sed -E 's/^(not )?ok - //')
		[ "$rc" = 0 ] || rc=1
		verdict "$rc" "vm: ${desc:-$(basename "$arg" .c)}" ;;
	esac
}

# Results are printed as items finish.
next=0 printed=0 running=0
declare -A done_=()
while [ $printed -lt ${#items[@]} ]; do
	while [ $next -lt ${#items[@]} ] && [ $running -lt "$JOBS" ]; do
		start_item $next
		# The hanging guest idles: it does not take a job slot.
		[ "${items[$next]%% *}" = hang ] || running=$((running + 1))
		next=$((next + 1))
	done
	wait -n 2>/dev/null || true
	running=0
	for ((k = 0; k < next; k++)); do
		[ -z "${done_[$k]:-}" ] || continue
		if [ -f "$TMPD/$k.rc" ]; then
			judge_item $k; done_[$k]=1; printed=$((printed + 1))
		elif [ "${items[$k]%% *}" != hang ]; then
			running=$((running + 1))
		fi
	done
done

echo "# make check took $(( $(date +%s) - t0 ))s (logs in build/logs/)"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
exit
}
