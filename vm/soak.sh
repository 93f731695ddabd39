#!/bin/bash
# make soak: the endurance chain (tests/vm/soak.c) in one VM, then its results.
#
#   vm/soak.sh            (environment: GENS, SEED, FAULTS, TIMEOUT, DOC)
#
# GENS generations (default: the scenario's generations=, 100), alternating
# the debug and vmb kernels; SEED chooses the faults (default: the time, in
# seconds; printed, so SEED=... replays a run); FAULTS="f0,f1,..." names the
# fault of each generation instead (see tests/vm/soak.c); TIMEOUT (seconds,
# default 300 + 60 per generation). Writes build/soak/: soak.csv (one row
# per generation), soak.txt (the table), soak.png (free memory and time per
# generation), summary.md, and the guest logs (soak.log, soak.results).
# DOC=1 also puts summary.md into docs/reliability.md (between its soak
# markers) and copies soak.csv and soak.png to docs/soak/.
# Exit status: the harness verdict (0 when every check passed).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/build/soak
SRC=$TOP/tests/vm/soak.c
META_GENS=$(grep -m1 -o 'generations=[0-9]*' "$SRC" | cut -d= -f2)
GENS=${GENS:-$META_GENS}
SEED=${SEED:-$(date +%s)}
TIMEOUT=${TIMEOUT:-$((300 + 60 * GENS))}
case $GENS in ''|*[!0-9]*) echo "soak: GENS must be a number" >&2; exit 2 ;; esac
case $SEED in ''|*[!0-9]*) echo "soak: SEED must be a number" >&2; exit 2 ;; esac
[ "$GENS" -ge 2 ] || { echo "soak: GENS must be at least 2" >&2; exit 2; }

mkdir -p "$OUT"
cmd="make soak GENS=$GENS SEED=$SEED${FAULTS:+ FAULTS=$FAULTS}"
echo "soak: $cmd (timeout ${TIMEOUT}s); replay with the same SEED"
xcmd="hugelive.seed=$SEED"
[ -z "${FAULTS:-}" ] || xcmd+=" hugelive.faults=$FAULTS"
start=$(date +%s)
set +e
HUGELIVE_GENERATIONS=$GENS HUGELIVE_LOGDIR=$OUT EXTRA_CMDLINE="${EXTRA_CMDLINE:+$EXTRA_CMDLINE }$xcmd" \
	"$TOP/vm/run-scenario.sh" -q -t "$TIMEOUT" -n soak soak >"$OUT/verdict.txt" 2>&1
rc=$?
set -e
wall=$(( $(date +%s) - start ))
cat "$OUT/verdict.txt"
verdict="$(head -n1 "$OUT/verdict.txt") (wall clock ${wall}s)"

doc=()
if [ "${DOC:-0}" = 1 ]; then
	doc=(--doc "$TOP/docs/reliability.md")
fi
python3 "$TOP/vm/soak-report.py" "$OUT/soak.results" "$OUT" --command "$cmd" --verdict "$verdict" ${doc[@]+"${doc[@]}"}

if command -v gnuplot >/dev/null && [ -s "$OUT/plot.dat" ]; then
	(cd "$OUT" && gnuplot <<'EOF'
set terminal pngcairo size 1200,800 font "sans,10" noenhanced
set output "soak.png"
set multiplot layout 2,1 title "hugelive soak: one VM chain of live updates (QEMU TCG guest)"
set grid
set key outside right
set xlabel "generation"
set ylabel "MiB"
set title "MemFree + Shmem after the clients claimed their memory (per kernel flavour)"
plot "< awk '$5==0' plot.dat" using 1:2 with linespoints pt 7 ps 0.6 title "debug", \
     "< awk '$5==1' plot.dat" using 1:2 with linespoints pt 5 ps 0.6 title "vmb"
set ylabel "s"
set title "time per generation (TSC: previous update call -> this one), and previous update call -> memory claimed"
plot "plot.dat" using 1:($1>0 ? $3 : 1/0) with linespoints pt 7 ps 0.6 title "generation", \
     "" using 1:($1>0 ? $4 : 1/0) with linespoints pt 6 ps 0.6 title "update -> claimed", \
     "" using 1:($6==1 && $1>0 ? $3 : 1/0) with points pt 2 ps 1.2 lc rgb "red" title "fault injected"
unset multiplot
EOF
	) || echo "soak: gnuplot failed" >&2
else
	echo "soak: no plot (gnuplot missing or no data)" >&2
fi
if [ "${DOC:-0}" = 1 ]; then
	mkdir -p "$TOP/docs/soak"
	cp "$OUT/soak.csv" "$OUT/soak.txt" "$TOP/docs/soak/"
	[ -f "$OUT/soak.png" ] && cp "$OUT/soak.png" "$TOP/docs/soak/"
fi
echo "soak: results in $OUT (soak.csv, soak.txt, soak.png, summary.md)"
exit $rc
