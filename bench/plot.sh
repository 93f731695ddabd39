#!/bin/bash
# PNG plots of bench/results (data files written by bench/collect.py):
#   time-vs-size.png  preserve, retrieve, preserve+retrieve, kexec path and
#                     first full read against size, per kind (median, min-max bars)
#   blackout.png      blackout breakdown: agent chain (nothing, 2 GiB of each
#                     kind) and the disk baseline
set -euo pipefail
OUT=${1:-$(dirname "$0")/results}
cd "$OUT"
command -v gnuplot >/dev/null || { echo "plot: gnuplot missing (apt-get install gnuplot-nox)" >&2; exit 1; }

gnuplot <<'EOF'
set terminal pngcairo size 1400,950 font "sans,10" noenhanced
set output "time-vs-size.png"
set multiplot layout 2,3 title "hugelive: cost against size per kind (QEMU TCG guest; median, bars min-max)"
set logscale xy
set xlabel "size (MiB)"
set ylabel "ms"
set grid
set key top left
set xrange [40:3000]
set xtics (64,256,1024,2048)
k(i) = i==0 ? "memfd 4 KiB" : i==1 ? "hugetlb 2 MiB" : "hugetlb 1 GiB"
set title "preserve (ioctl)"
plot for [i=0:2] "plot-size.dat" index i using 1:5:6:7 with yerrorlines lw 2 title k(i)
set title "retrieve (RETRIEVE_FD of the data)"
plot for [i=0:2] "plot-size.dat" index i using 1:8:9:10 with yerrorlines lw 2 title k(i)
set title "preserve + retrieve (data fd)"
plot for [i=0:2] "plot-size.dat" index i using 1:2:3:4 with yerrorlines lw 2 title k(i)
set title "old kernel: kexec call -> 'Starting new kernel' (LUO freeze, shutdown)"
plot for [i=0:2] "plot-size.dat" index i using 1:14:15:16 with yerrorlines lw 2 title k(i)
set title "after retrieve: mmap + touch + first full read (verify)"
plot for [i=0:2] "plot-size.dat" index i using 1:11:12:13 with yerrorlines lw 2 title k(i)
set title "retrieve per preserved entry (folio), microseconds"
set ylabel "us"
plot for [i=0:2] "plot-size.dat" index i using 1:17:18:19 with yerrorlines lw 2 title k(i)
unset multiplot
EOF

gnuplot <<'EOF'
set terminal pngcairo size 1800,700 font "sans,10" noenhanced
set output "blackout.png"
set multiplot layout 1,3 title "blackout breakdown (QEMU TCG guest; medians, seconds)"
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.7
set ylabel "s"
set grid y
set key outside bottom horizontal
set xtics rotate by -20
set title "through hugelived (2 GiB preserved, or nothing)"
plot "plot-blackout.dat" using 2:xtic(1) title "quiesced -> kexec call", \
     "" using 3 title "kexec call -> new kernel clock", \
     "" using 4 title "-> /init", \
     "" using 5 title "/init -> client", \
     "" using 6 title "client -> agent ready", \
     "" using 7 title "agent ready -> mapped"
set title "direct LUO, no agent (2 GiB preserved, or nothing)"
plot "plot-direct.dat" using 2:xtic(1) title "quiesced -> kexec call", \
     "" using 3 title "kexec call -> new kernel clock", \
     "" using 4 title "-> /init", \
     "" using 5 title "/init -> client", \
     "" using 6 title "client -> mapped"
set title "no preservation: virtio disk + reboot"
plot "plot-disk.dat" using 2:xtic(1) title "save", \
     "" using 3 title "shutdown", \
     "" using 4 title "boot (QEMU start -> client)", \
     "" using 5 title "load"
unset multiplot
EOF
echo "plot: $OUT/time-vs-size.png $OUT/blackout.png"
