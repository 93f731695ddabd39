#!/bin/sh
# Run the host tests (built with ASan+UBSan) and sum up their TAP results.
# usage: tests/run.sh BINDIR [LIBDIR]
set -u
BIN=${1:?usage: run.sh BINDIR [LIBDIR]}
LIB=${2:-}
pass=0; fail=0; rc=0
for t in test_unit test_agent test_persist test_kimage test_vm fuzz_agent exports; do
	echo "# --- $t"
	if [ $t = exports ]; then
		[ -n "$LIB" ] || continue
		out=$("$(dirname "$0")/exports.sh" "$LIB" "$(dirname "$0")/../src/lib/libhugelive.map" 2>&1); st=$?
	else
		out=$("$BIN/$t" "$BIN" 2>&1); st=$?
	fi
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' | tail -1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' | tail -1)
	if [ -z "$p" ]; then p=0; f=$((f + 1)); echo "not ok - $t crashed (exit $st)"; fi
	pass=$((pass + p)); fail=$((fail + ${f:-0}))
	[ $st -ne 0 ] && rc=1
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $rc -eq 0 ]
