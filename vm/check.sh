#!/bin/bash
# The body of "make check" (the Makefile has built the VM programs first).
#
#   vm/check.sh                  host unit tests, harness self-tests, all VM scenarios
#   vm/check.sh --selftest-only  harness self-tests only
#   vm/check.sh --run NAME [--flavour debug|vm]   one scenario, verbose
#
# VM scenarios are every tests/vm/*.c, run with the debug kernel. Output:
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
	out=$(make --no-print-directory -C userspace check 2>&1); rc=$?
	if [ $rc = 0 ]; then tail -n 5 <<<"$out" | indent; else tail -n 40 <<<"$out" | indent; fi
	verdict $rc "host: make -C userspace check"
fi
if [ $MODE = all ]; then
	out=$(tests/kernel/checkpatch.sh 2>&1); rc=$?
	if [ $rc = 0 ]; then tail -n 1 <<<"$out" | indent; else tail -n 40 <<<"$out" | indent; fi
	verdict $rc "host: every kernel patch is checkpatch --strict clean"
fi

# ---- kernel and initramfs ----
KERNEL=$(scripts/build-kernel.sh "$FLAVOUR") || { verdict 1 "build the $FLAVOUR kernel"; echo "$passed passed, $failed failed"; exit 1; }
export HUGELIVE_KERNEL=$KERNEL
run() { vm/run-scenario.sh "$@"; }

if [ $MODE = one ]; then
	run "$ONE"; rc=$?
	verdict $rc "$ONE"
	echo "$passed passed, $failed failed"
	exit $rc
fi

# ---- harness self-tests (the harness must be able to fail) ----
# 1. A word flipped after retrieve must fail memfd-3gen, naming its offset.
out=$(CORRUPT=1 run -q -n selftest-corrupt memfd-3gen 2>&1); rc=$?
if [ $rc != 0 ] && grep -q 'not ok .*first bad offset 0x7654320 ' <<<"$out"; then
	grep -m1 'first bad offset' <<<"$out" | indent
	verdict 0 "selftest: CORRUPT=1 fails memfd-3gen naming the flipped word 0x7654320"
else
	indent <<<"$out"
	verdict 1 "selftest: CORRUPT=1 fails memfd-3gen naming the flipped word 0x7654320"
fi
# 2. A guest that never reports is killed at its timeout, with the log tail.
out=$(run -q selftest-hang 2>&1); rc=$?
if [ $rc != 0 ] && grep -q 'reason: timeout: killed after' <<<"$out" &&
   grep -q -- '--- last 40 lines of' <<<"$out" && grep -q 'selftest-hang: sleeping forever' <<<"$out"; then
	grep -E 'not ok|reason:' <<<"$out" | indent
	verdict 0 "selftest: hanging guest is killed at its timeout and reported with the log tail"
else
	indent <<<"$out"
	verdict 1 "selftest: hanging guest is killed at its timeout and reported with the log tail"
fi

# ---- VM scenarios ----
if [ $MODE = all ]; then
	for src in tests/vm/*.c; do
		name=$(basename "$src" .c)
		out=$(run "$src" 2>&1); rc=$?
		# run-scenario prints the scenario's TAP lines indented, then its verdict.
		grep -v -E '^(not )?ok - ' <<<"$out"
		desc=$(grep -E '^(not )?ok - ' <<<"$out" | tail -n1 | sed -E 's/^(not )?ok - //')
		verdict $rc "vm: ${desc:-$name}"
	done
fi

echo "# make check took $(( $(date +%s) - t0 ))s (logs in build/logs/)"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
exit
}
