#!/bin/bash
# Build the kernel at every step of the series: is each patch bisectable?
#
#   scripts/bisect-series.sh [vm|debug] [--boot SCENARIO]   (default: vm)
#
# With --boot, every image that builds is also booted in QEMU with that VM
# scenario (vm/run-scenario.sh -k IMAGE; e.g. hugetlb-support, which kexecs
# once and expects ENOENT without the hugetlb handler, the round trip with
# it): a step passes only if it builds and the scenario passes on it.
#
# For every commit of build/linux baseline..HEAD (or $HUGELIVE_LINUX), in
# order, check it out in a separate work tree of the same repository and
# build a bzImage of the flavour's config there, in one object dir that is
# reused from step to step: a step recompiles only what its patch changed.
# The config is made again at every step (tinyconfig + the fragments +
# olddefconfig), as symbols appear with the patches that add them.
#
# Prints TAP, one line per patch ("ok N - builds: SUBJECT" or "not ok N -
# does not build: SUBJECT" with the end of its log), and ends with
# "N passed, N failed"; exit 1 if a step does not build.
#
# Not part of make check (a cold run is a full kernel build and then one
# incremental build per patch). Work tree, object dir and logs are under
# $HUGELIVE_CACHE (default ~/.cache/hugelive): bisect-linux/,
# obj-bisect-<flavour>/, bisect-logs/NN.log. JOBS sets make -j (default:
# the number of CPUs).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
FLAVOUR=vm BOOT=
while [ $# -gt 0 ]; do
	case $1 in
	vm|debug) FLAVOUR=$1 ;;
	--boot) BOOT=${2:?--boot needs a scenario}; shift ;;
	*) echo "usage: $0 [vm|debug] [--boot SCENARIO]" >&2; exit 2 ;;
	esac
	shift
done
LINUX=${HUGELIVE_LINUX:-$TOP/build/linux}
CACHE=${HUGELIVE_CACHE:-$HOME/.cache/hugelive}
JOBS=${JOBS:-$(nproc)}

case "$FLAVOUR" in
vm)    FRAGS=("$TOP/kernel/config/vm.config") ;;
debug) FRAGS=("$TOP/kernel/config/vm.config" "$TOP/kernel/config/debug.config") ;;
*)     echo "bisect-series: unknown flavour '$FLAVOUR' (vm or debug)" >&2; exit 2 ;;
esac

git -C "$LINUX" rev-parse -q --verify baseline >/dev/null ||
	{ echo "bisect-series: $LINUX has no 'baseline' (run scripts/fetch-kernel.sh)" >&2; exit 2; }
mapfile -t commits < <(git -C "$LINUX" rev-list --reverse baseline..HEAD)
[ "${#commits[@]}" -gt 0 ] || { echo "bisect-series: no commit on top of baseline" >&2; exit 2; }

WT=$CACHE/bisect-linux
OBJ=$CACHE/obj-bisect-$FLAVOUR
LOGS=$CACHE/bisect-logs
mkdir -p "$CACHE" "$OBJ" "$LOGS"
exec 9>"$OBJ.lock"
flock 9

# A detached work tree of the same repository. Debian's source ignores
# everything at the top level, so new files of a patch are committed with
# -f and checked out normally; files a later step deletes disappear too.
if [ ! -e "$WT/.git" ]; then
	rm -rf "$WT"
	git -C "$LINUX" worktree prune
	git -C "$LINUX" worktree add -q --detach "$WT" baseline
fi

build_step() {
	make -C "$WT" O="$OBJ" -s tinyconfig &&
	"$WT/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "${FRAGS[@]}" &&
	make -C "$WT" O="$OBJ" -s olddefconfig &&
	make -C "$WT" O="$OBJ" -j"$JOBS" -s bzImage
}

echo "1..${#commits[@]}"
pass=0 fail=0 n=0
for c in "${commits[@]}"; do
	n=$((n + 1))
	subj=$(git -C "$LINUX" log -1 --format=%s "$c")
	log=$LOGS/$(printf %02d "$n").log
	# Only the files that differ from the previous step are rewritten, so
	# make rebuilds only what this patch touches.
	git -C "$WT" checkout -q --detach -f "$c"
	start=$(date +%s)
	if { echo "== $n $c $subj" && build_step; } >"$log" 2>&1; then
		built=$(( $(date +%s) - start ))
		if [ -z "$BOOT" ]; then
			echo "ok $n - builds: $subj (${built}s)"
			pass=$((pass + 1))
			continue
		fi
		cp "$OBJ/arch/x86/boot/bzImage" "$LOGS/$(printf %02d "$n").bzImage"
		if "$TOP/vm/run-scenario.sh" -q -n "bisect-$(printf %02d "$n")-$BOOT" \
			-k "$LOGS/$(printf %02d "$n").bzImage" "$BOOT" >>"$log" 2>&1; then
			echo "ok $n - builds (${built}s) and boots, $BOOT passes: $subj"
			pass=$((pass + 1))
		else
			echo "not ok $n - builds but $BOOT fails on it: $subj (log: $log)"
			tail -n 20 "$log" | sed 's/^/# /'
			fail=$((fail + 1))
		fi
	else
		echo "not ok $n - does not build: $subj (log: $log)"
		grep -E 'error|Error' "$log" | head -n 20 | sed 's/^/# /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
