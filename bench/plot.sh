#!/bin/bash
# PNG plots of bench/results (data files written by bench/collect.py):
#   time-vs-size.png  preserve, retrieve, preserve+retrieve, kexec path and
#                     first full read against size, per kind (median, min-max bars)
#   blackout.png      blackout breakdown: agent chain (nothing, 2 GiB of each
#                     kind), direct LUO and the disk baseline
#   scale.png         the scale chains: cost against preserved pages per stage,
#                     with the least-squares line (constant + per page)
# A run of only some chains (BENCH_ONLY) leaves some data files or kinds
# empty: those panels and curves are left out (said on stderr), a plot
# with nothing at all is not written.
set -euo pipefail
OUT=${1:-$(dirname "$0")/results}
cd "$OUT"
command -v gnuplot >/dev/null || { echo "plot: gnuplot missing (apt-get install gnuplot-nox)" >&2; exit 1; }

# data rows (not comments, not blank) of a file, or of block $2 of it
rows() { # file [block]
	[ -f "$1" ] || { echo 0; return; }
	awk -v want="${2:--1}" 'BEGIN { b = 0; n = 0; blank = 0 }
		/^[[:space:]]*$/ { blank++; next }
		{ if (blank >= 2) b++; blank = 0 }
		/^#/ { next }
		want < 0 || b == want { n++ }
		END { print n }' "$1"
}

# ---- cost against size: one curve per kind with data
kinds=()
names=("memfd 4 KiB" "hugetlb 2 MiB" "hugetlb 1 GiB")
for i in 0 1 2; do
	if [ "$(rows plot-size.dat $i)" -gt 0 ]; then kinds+=("$i"); else echo "plot: no ${names[$i]} data: left out of time-vs-size.png" >&2; fi
done
if [ ${#kinds[@]} -gt 0 ]; then
	{
		cat <<'EOF2'
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
EOF2
		echo "array K[${#kinds[@]}] = [$(IFS=,; echo "${kinds[*]}")]"
		panel() { echo "set title \"$1\""; echo "plot for [j=1:${#kinds[@]}] \"plot-size.dat\" index K[j] using $2 with yerrorlines lw 2 title k(K[j])"; }
		panel "preserve (ioctl)" 1:5:6:7
		panel "retrieve (RETRIEVE_FD of the data)" 1:8:9:10
		panel "preserve + retrieve (data fd)" 1:2:3:4
		panel "old kernel: kexec call -> 'Starting new kernel' (LUO freeze, shutdown)" 1:14:15:16
		panel "after retrieve: mmap + touch + first full read (verify)" 1:11:12:13
		echo 'set ylabel "us"'
		panel "retrieve per preserved entry (folio), microseconds" 1:17:18:19
		echo "unset multiplot"
	} | gnuplot
	made=(time-vs-size.png)
else
	echo "plot: no size data at all: time-vs-size.png not written" >&2
	made=()
fi

# ---- blackout breakdown: one panel per data file with rows
panels=()
for f in plot-blackout.dat plot-direct.dat plot-disk.dat; do
	if [ "$(rows $f)" -gt 0 ]; then panels+=("$f"); else echo "plot: $f has no data: panel left out of blackout.png" >&2; fi
done
if [ ${#panels[@]} -gt 0 ]; then
	{
		cat <<EOF2
set terminal pngcairo size $((600 * ${#panels[@]})),700 font "sans,10" noenhanced
set output "blackout.png"
set multiplot layout 1,${#panels[@]} title "blackout breakdown (QEMU TCG guest; medians, seconds)"
EOF2
		cat <<'EOF2'
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.7
set ylabel "s"
set grid y
set key outside bottom horizontal
set xtics rotate by -20
EOF2
		for f in "${panels[@]}"; do
			case $f in
			plot-blackout.dat) cat <<'EOF2'
set title "through hugelived (2 GiB preserved, or nothing)"
plot "plot-blackout.dat" using 2:xtic(1) title "quiesced -> kexec call", \
     "" using 3 title "kexec call -> new kernel clock", \
     "" using 4 title "-> /init", \
     "" using 5 title "/init -> client", \
     "" using 6 title "client -> agent ready", \
     "" using 7 title "agent ready -> mapped"
EOF2
			;;
			plot-direct.dat) cat <<'EOF2'
set title "direct LUO, no agent (2 GiB preserved, or nothing)"
plot "plot-direct.dat" using 2:xtic(1) title "quiesced -> kexec call", \
     "" using 3 title "kexec call -> new kernel clock", \
     "" using 4 title "-> /init", \
     "" using 5 title "/init -> client", \
     "" using 6 title "client -> mapped"
EOF2
			;;
			plot-disk.dat) cat <<'EOF2'
set title "no preservation: virtio disk + reboot"
plot "plot-disk.dat" using 2:xtic(1) title "save", \
     "" using 3 title "shutdown", \
     "" using 4 title "boot (QEMU start -> client)", \
     "" using 5 title "load"
EOF2
			;;
			esac
		done
		echo "unset multiplot"
	} | gnuplot
	made+=(blackout.png)
else
	echo "plot: no blackout data at all: blackout.png not written" >&2
fi
# ---- scale: cost against the number of preserved pages, with the linear fit
# (constant + per page) that bench/collect.py reports; one row per chain
sc=()
for i in 0 1; do
	[ "$(rows plot-scale.dat $i)" -gt 0 ] && sc+=("$i")
done
if [ ${#sc[@]} -gt 0 ]; then
	{
		cat <<EOF2
set terminal pngcairo size 1600,$((450 * ${#sc[@]})) font "sans,10" noenhanced
set output "scale.png"
set multiplot layout ${#sc[@]},4 title "hugelive: cost against preserved pages (QEMU TCG guest; every repetition, least-squares line)"
set grid
set key top left
set xlabel "preserved pages"
set ylabel "ms"
set fit quiet
set fit logfile "/dev/null"
EOF2
		for i in "${sc[@]}"; do
			name=$([ "$i" = 0 ] && echo "2 MiB pages" || echo "1 GiB pages")
			for c in "2:preserve" "5:retrieve (data fd)" "4:new kernel clock -> /init" "3:kexec path, old kernel"; do
				col=${c%%:*} what=${c#*:}
				cat <<EOF2
a=1; b=0.01
fit a+b*x "plot-scale.dat" index $i using 1:$col via a,b
set title sprintf("$name: $what\\n%.3g ms + %.3g us per page", a, b*1000)
plot "plot-scale.dat" index $i using 1:$col with points pt 7 title "measured", a+b*x with lines lw 2 title "fit"
EOF2
			done
		done
		echo "unset multiplot"
	} | gnuplot 2>&1 | grep -v "^$" >&2 || true
	[ -f scale.png ] && made+=(scale.png)
else
	echo "plot: no scale data: scale.png not written" >&2
fi
echo "plot: ${made[*]/#/$OUT/}"
