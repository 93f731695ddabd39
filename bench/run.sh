#!/bin/bash
# hugelive benchmarks: the body of "make bench".
#
#   bench/run.sh                 the full matrix, 18-23 min under TCG on 2 cores
#   BENCH_QUICK=1 bench/run.sh   a small matrix to try the machinery (~3 min)
#
# Boots QEMU (TCG) VM "chains" with the vm kernel; in each chain the
# benchmark program (bench/vm/hlbench.c) preserves a memfd of one kind and
# size per generation, kexecs, and the next generation retrieves, maps and
# verifies it (see that file). Two chains through the agent (hugelived)
# measure the blackout breakdown; two plain QEMU boots per repetition give the
# no-preservation baseline (a virtio disk, written, rebooted, read back).
# Raw "report:" lines land in build/bench/logs; bench/collect.py turns them
# into bench/results/{results.csv,results.json,summary.csv,summary.md} (and
# the table in docs/performance.md), bench/plot.sh into PNGs.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
OUT=${BENCH_OUT:-$TOP/bench/results}
B=$TOP/build/bench
LOGS=$B/logs
REPS=${BENCH_REPS:-3}
t_start=$(date +%s)

log() { printf '[bench %4ss] %s\n' $(( $(date +%s) - t_start )) "$*"; }

mkdir -p "$B/bin" "$B/chains" "$LOGS" "$OUT"
rm -f "$LOGS"/*

KERNEL=$(scripts/build-kernel.sh vm)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "kernel $KERNEL; host load average $LOAD0"
# The LUO uapi header and userspace (agent) come from the top-level make.
make -s --no-print-directory build/vm/include/linux/liveupdate.h userspace >/dev/null
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static \
	-I"$TOP/build/vm/include" -I"$TOP/tests/vm" \
	-o "$B/bin/hlbench" bench/vm/hlbench.c tests/vm/lib/scenario.c

# run_chain NAME MEM_MIB TIMEOUT "KERNEL CMDLINE" AGENT(0|1) PLAN|- [EXTRA_QEMU_ARGS]
# PLAN is comma-separated steps; generations = steps + 1. With PLAN "-" the
# cmdline must carry hugelive.bmode (disk baseline, one generation).
run_chain() {
	local name=$1 mem=$2 tmo=$3 kcmd=$4 agent=$5 plan=$6 qargs=${7:-}
	local gens=1 extra=() rc=0 t0 t1
	if [ "$plan" != - ]; then
		gens=$(( $(tr ',' '\n' <<<"$plan" | wc -l) + 1 ))
		kcmd+=" hugelive.bplan=$plan"
	fi
	[ "$agent" = 1 ] && { kcmd+=" hugelive.bagent=1"; extra+=(-d "$TOP/userspace/build/bin"); }
	cp "$B/bin/hlbench" "$B/chains/$name"
	printf '/* hugelive-scenario: generations=%s mem=%s timeout=%s smp=2 qemu="%s" */\n' \
		"$gens" "$mem" "$tmo" "$qargs" >"$B/chains/$name.c"
	vm/mkinitramfs.sh -o "$B/chains/$name.cpio" -k "$KERNEL" -x "$B/chains/$name" "${extra[@]}" 2>/dev/null
	# Host-side time at which the results file grew to N lines (for the
	# reboot of the disk baseline): "NS N" per change, polled every 20 ms.
	: >"$LOGS/$name.stamped"
	( last=-1; while :; do
		n=$(cat "$LOGS/$name.results" 2>/dev/null | wc -l)
		[ "$n" = "$last" ] || { echo "$(date +%s%N) $n"; last=$n; }
		sleep 0.02
	done >>"$LOGS/$name.stamped" ) &
	local poller=$!
	t0=$(date +%s%N)
	HUGELIVE_LOGDIR=$LOGS vm/run-scenario.sh -q -k "$KERNEL" -i "$B/chains/$name.cpio" \
		-n "$name" -c "$kcmd" "$B/chains/$name.c" >"$LOGS/$name.verdict" 2>&1 || rc=$?
	t1=$(date +%s%N)
	kill "$poller" 2>/dev/null || true
	wait "$poller" 2>/dev/null || true
	echo "host launch_ns=$t0 exit_ns=$t1 rc=$rc" >>"$LOGS/$name.stamped"
	log "$(head -n1 "$LOGS/$name.verdict")"
	[ $rc = 0 ] || { sed -n '2,60p' "$LOGS/$name.verdict"; return 1; }
}

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	SIZES_SMALL="64 256"
	SIZES_1G="1024"
	REPS=${BENCH_REPS:-2}
	AGENT_MIB=256
	NOHVO_MIB=256
	MEM_M=1536 MEM_H=1536 MEM_G=4096
	SIZES_SCALE="256 1024" SIZES_SCALE_1G="1024" MEM_S=3072 MEM_S1=4096
else
	SIZES_SMALL="64 256 1024 2048"
	SIZES_1G="1024 2048"
	AGENT_MIB=2048
	NOHVO_MIB=1024
	MEM_M=3072 MEM_H=3072 MEM_G=6144
	# 8 GiB of huge pages in a 10 GiB VM (11 GiB for 1 GiB pages: eight
	# aligned free gigabytes beside the PCI hole below 4 GiB and the KHO
	# scratch areas); one such VM at a time fits this 24 GiB host.
	SIZES_SCALE="1024 2048 4096 8192" SIZES_SCALE_1G=$SIZES_SCALE MEM_S=10240 MEM_S1=11264
fi
SCALE_REPS=${BENCH_SCALE_REPS:-3}
max_small=${SIZES_SMALL##* }
plan_of() {  # plan_of KIND "SIZES" [EXTRA]: none + every size (+ EXTRA), REPS times
	local k=$1 s p= r
	for ((r = 0; r < REPS; r++)); do
		p+="n,"
		for s in $2; do p+="$k:$s,"; done
		[ -z "${3:-}" ] || p+="$3,"
	done
	echo "${p%,}"
}
# HugeTLB Vmemmap Optimization on, as in production: it is what lets
# retrieve write 64 struct pages per huge page instead of all of them. The
# 2 MiB chain also retrieves 1 GiB once per repetition with HVO switched off
# (step H, vm.hugetlb_optimize_vmemmap=0 around the retrieve).
HVO=hugetlb_free_vmemmap=on

ONLY=${BENCH_ONLY:-}   # e.g. BENCH_ONLY="memfd4k disk": only these parts (memfd4k hugetlb2m hugetlb1g agent scale disk)
want() { [ -z "$ONLY" ] || grep -qw "$1" <<<"$ONLY"; }
chain() { local part=$1; shift; want "$part" || return 0; run_chain "$@" || fail=1; }
fail=0
# 1. Per kind: preserve / kexec / retrieve / read, for every size.
chain memfd4k memfd4k "$MEM_M" 900 "" 0 "$(plan_of m "$SIZES_SMALL")"
# (+2 pages: the one-page warm-up file, see bench/vm/hlbench.c)
chain hugetlb2m hugetlb2m "$MEM_H" 900 "$HVO hugepagesz=2M hugepages=$(( max_small / 2 + 2 ))" 0 \
	"$(plan_of h "$SIZES_SMALL" "H:$NOHVO_MIB")"
chain hugetlb1g hugetlb1g "$MEM_G" 900 "$HVO hugepagesz=1G hugepages=$(( ${SIZES_1G##* } / 1024 )) hugepagesz=2M hugepages=2" 0 \
	"$(plan_of g "$SIZES_1G")"

# 2. Blackout through the agent: nothing and AGENT_MIB alternately, in a VM
# like the direct chain's of the same kind. (Separate VMs for the two page
# sizes, each with the memory its pool needs. Before patch 7 of the series a
# VM with both pools could also not re-preserve a full 2 MiB pool: ENOMEM.)
# More repetitions here: a boot's time varies much more than the rest.
AREPS=${BENCH_AGENT_REPS:-$(( REPS < 7 ? 7 : REPS ))}
ap2=; ap1=
for ((r = 0; r < AREPS; r++)); do
	ap2+="n,h:$AGENT_MIB,"
	ap1+="n,g:$(( AGENT_MIB < 1024 ? 1024 : AGENT_MIB )),"
done
chain agent agent2m "$MEM_H" 1200 "$HVO hugepagesz=2M hugepages=$(( AGENT_MIB / 2 ))" 1 "${ap2%,}"
chain agent agent1g "$MEM_G" 1200 "$HVO hugepagesz=1G hugepages=$(( AGENT_MIB < 1024 ? 1 : AGENT_MIB / 1024 ))" 1 "${ap1%,}"

# 3. Scale: cost against size, up to 8 GiB in 2 MiB pages and 8 pages of
# 1 GiB, each in a VM of its own (bench/collect.py fits constant + per page
# for every stage). Fewer repetitions: every step moves gigabytes under TCG.
max_scale=${SIZES_SCALE##* }
chain scale scale2m "$MEM_S" 1800 "$HVO hugepagesz=2M hugepages=$(( max_scale / 2 + 2 ))" 0 \
	"$(REPS=$SCALE_REPS plan_of h "$SIZES_SCALE")"
chain scale scale1g "$MEM_S1" 1800 "$HVO hugepagesz=1G hugepages=$(( ${SIZES_SCALE_1G##* } / 1024 )) hugepagesz=2M hugepages=2" 0 \
	"$(REPS=$SCALE_REPS plan_of g "$SIZES_SCALE_1G")"

# 4. No preservation: write to a virtio disk, power off, boot again, read.
disk_total=0
for s in $SIZES_SMALL; do disk_total=$((disk_total + s)); done
DISK=$B/disk.img
for ((r = 0; r < REPS; r++)); do
	want disk || break
	rm -f "$DISK"
	truncate -s "${disk_total}M" "$DISK"
	dq="-drive file=$DISK,format=raw,if=virtio,cache=none,aio=threads"
	bs=$(tr ' ' ',' <<<"$SIZES_SMALL")
	chain disk "disk-save-$r" "$MEM_M" 600 "hugelive.bmode=disk-write hugelive.bsizes=$bs" 0 - "$dq"
	chain disk "disk-load-$r" "$MEM_M" 600 "hugelive.bmode=disk-read hugelive.bsizes=$bs" 0 - "$dq"
done
rm -f "$DISK"

[ -n "${BENCH_NOCOLLECT:-}" ] && exit $fail
log "collecting"
python3 bench/collect.py "$LOGS" "$OUT" --machine "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r), $(qemu-system-x86_64 --version | head -n1)" \
	--kernel "$KERNEL" --wall "$(( $(date +%s) - t_start ))" --load "$LOAD0"
bench/plot.sh "$OUT"
log "done in $(( $(date +%s) - t_start ))s; results in ${OUT#$TOP/}"
exit $fail
