#!/bin/bash
# bench/plot.sh on results of a partial run (BENCH_ONLY): kinds or whole
# data files without rows are left out, never fatal (issue 13: a run of
# "memfd4k hugetlb2m" failed with gnuplot "x range is invalid"). Runs on
# copies of the committed bench/results. TAP.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0 pass=0 fail=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then pass=$((pass + 1)); echo "ok $n - $2"; else fail=$((fail + 1)); echo "not ok $n - $2"; fi; }

# keep only the header of a data file
header_only() { head -n 1 "$1" >"$1.new" && mv "$1.new" "$1"; }
# drop the data rows of gnuplot index block $2 of plot-size.dat
drop_block() {
	awk -v drop="$2" 'BEGIN { b = 0; bl = 0 }
		/^[[:space:]]*$/ { bl++; print; next }
		{ if (bl >= 2) b++; bl = 0 }
		b == drop && !/^#/ { next }
		{ print }' "$1" >"$1.new" && mv "$1.new" "$1"
}
both() { [ -s "$T/r/time-vs-size.png" ] && [ -s "$T/r/blackout.png" ]; }
no_scale() { drop_block "$T/r/plot-scale.dat" 0; drop_block "$T/r/plot-scale.dat" 1; }
fresh() { rm -rf "$T/r" && cp -r "$TOP/bench/results" "$T/r" && rm -f "$T/r"/*.png; }

fresh
out=$("$TOP/bench/plot.sh" "$T/r" 2>&1); rc=$?
[ $rc = 0 ] && both; ok $? "full results: both plots (exit $rc)"
[ -s "$T/r/scale.png" ]; ok $? "... and scale.png of the scale chains"

# BENCH_ONLY="memfd4k hugetlb2m": no 1 GiB kind, no agent chain, no disk baseline
fresh
drop_block "$T/r/plot-size.dat" 2
header_only "$T/r/plot-blackout.dat"
header_only "$T/r/plot-disk.dat"
no_scale
out=$("$TOP/bench/plot.sh" "$T/r" 2>&1); rc=$?
ok $rc "memfd4k + hugetlb2m only: exit 0 ($(tr '\n' ' ' <<<"$out"))"
both; ok $? "... both plots written"
grep -q "no hugetlb 1 GiB data: left out" <<<"$out"; ok $? "... says the 1 GiB kind is left out"
grep -q "plot-disk.dat has no data: panel left out" <<<"$out"; ok $? "... says the disk panel is left out"
[ ! -e "$T/r/scale.png" ] && grep -q "no scale data: scale.png not written" <<<"$out"; ok $? "... no scale.png, and it says so"

# nothing at all: no plot, still exit 0, and it says so
fresh
for b in 0 1 2; do drop_block "$T/r/plot-size.dat" $b; done
for f in plot-blackout.dat plot-direct.dat plot-disk.dat; do header_only "$T/r/$f"; done
no_scale
out=$("$TOP/bench/plot.sh" "$T/r" 2>&1); rc=$?
ok $rc "no data at all: exit 0"
[ -z "$(ls "$T/r"/*.png 2>/dev/null)" ]; ok $? "... and no plot written"
grep -q "time-vs-size.png not written" <<<"$out"; ok $? "... says time-vs-size.png is not written"

echo "1..$n"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
