#!/bin/bash
# Every patch of kernel/patches/series must be "checkpatch.pl --strict" clean
# (no error, no warning, no check), using the checkpatch of build/linux.
# Prints TAP and a final "N passed, N failed" line; exit 1 on any failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
CP=$TOP/build/linux/scripts/checkpatch.pl
PATCHDIR=$TOP/kernel/patches
[ -x "$CP" ] || { echo "checkpatch: $CP missing (run scripts/fetch-kernel.sh)" >&2; exit 2; }

mapfile -t patches < <(grep -v '^\s*#' "$PATCHDIR/series" | grep -v '^\s*$')
echo "1..${#patches[@]}"
pass=0 fail=0 n=0
for p in "${patches[@]}"; do
	n=$((n + 1))
	# build/linux is Debian's source without upstream history, so the
	# commit a Fixes: tag names cannot be looked up there; the ids were
	# checked against the upstream repository by hand.
	out=$(cd "$TOP/build/linux" && "$CP" --strict -q --ignore UNKNOWN_COMMIT_ID "$PATCHDIR/$p" 2>&1)
	if [ $? = 0 ] && ! grep -qE '^(ERROR|WARNING|CHECK):' <<<"$out"; then
		echo "ok $n - checkpatch --strict $p"
		pass=$((pass + 1))
	else
		echo "not ok $n - checkpatch --strict $p"
		sed 's/^/# /' <<<"$out"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
