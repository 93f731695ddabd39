#!/bin/bash
# Run one hugelive VM scenario in QEMU and judge it.
#
#   vm/run-scenario.sh [-k BZIMAGE] [-i INITRD] [-c CMDLINE] [-t SECS] [-n LOGNAME] [-q] [-r] SCENARIO
#
# SCENARIO is a scenario source (tests/vm/NAME.c) or a NAME found in
# tests/vm, tests/vm/selftest or tests/vm/demo. Its metadata line
#   hugelive-scenario: generations=N mem=MiB timeout=SECS smp=N numa=N numa_mem="MiB,..." cmdline="..." allow_warn=1 userspace=1 bins="a b"
# sets the VM up (defaults: generations=1 mem=512 timeout=120 smp=2).
# check=no leaves a scenario out of make check (vm/check.sh names it; run it
# with make run S=NAME).
# userspace=1 puts userspace/build/bin/* (with their shared libraries) in the
# guest's /usr/local/bin; bins="..." adds programs (paths relative to the
# repo top) there too. vmm=1 makes the VM a hypervisor host: the host's
# QEMU (qemu-system-x86_64, its libraries, the firmware it loads) and the
# nested guest's initramfs (vm/mkguest.sh) as /usr/share/hugelive-vm/guest.cpio
# (run it with hugelive-vm; pair with kernels="kvm", a kernel with KVM).
#
# The guest's console (ttyS0) goes to build/logs/NAME.log, the results port
# (ttyS1) to build/logs/NAME.results. The scenario passes when every
# generation 0..N-1 started, no TAP line says "not ok", at least one says
# "ok", the last generation exited 0 and printed the done marker, the VM
# ended before the timeout, and the console shows no kernel BUG/WARNING/
# panic/Oops (unless allow_warn=1). Otherwise: the reason, the last 40
# lines of the console log, exit 1.
#
# kernels="F0 F1 ..." (metadata) names the kernel flavour each generation
# runs (scripts/build-kernel.sh flavours: debug vm vmb v0.1 stock; word g
# for generation g, the last word for the generations after it): QEMU boots
# F0, every flavour named is in the initramfs as /boot/bzImage-F, and the
# guest's /init learns the list from hugelive.kernels=F0,F1,... and kexecs
# generation g into F(g+1) ($HUGELIVE_KERNEL). The images come from
# $HUGELIVE_IMAGES ("F=PATH ...", set by vm/check.sh, which builds each once)
# or else from scripts/build-kernel.sh; -k does not apply then.
# $HUGELIVE_KERNELS (a blank-separated list) overrides the metadata list.
# kernels_cycle=1 (metadata, or $HUGELIVE_KERNELS_CYCLE) makes the list a
# cycle instead: generation g runs word g mod N (kernels="debug vmb"
# alternates for any number of generations); it reaches the guest as
# hugelive.kernels_cycle=1 (vm/init and hl_flavour() read it).
# $HUGELIVE_GENERATIONS overrides generations= (e.g. a short soak run).
#
# Options: -k kernel (default: scripts/build-kernel.sh debug), -i initramfs
# (default: build one with vm/mkinitramfs.sh holding only this scenario's
# program from build/vm/scenarios/, see "make vm-bins"), -c extra kernel
# cmdline, -t timeout override,
# -n log name, -q print only the verdict, -r print the "report:" lines.
# Metadata qemu="ARGS" (and $HUGELIVE_QEMU_ARGS) add QEMU arguments, split on
# blanks (e.g. a virtio disk: -drive file=disk.img,format=raw,if=virtio).
# Environment: CORRUPT=1 adds hugelive.corrupt=1; EXTRA_CMDLINE is appended;
# HUGELIVE_KVM=1 uses KVM if a probe boot with it succeeds (TCG otherwise);
# HUGELIVE_LOGDIR overrides build/logs; HUGELIVE_TIMEOUT_SCALE multiplies
# the metadata timeout (make check sets it to its number of parallel jobs).
# The whole script is one block: bash parses it before running it, so an
# edit of this file while it runs cannot derail the run.
{
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
KERNEL=${HUGELIVE_KERNEL:-} INITRD=${HUGELIVE_INITRD:-} XCMD= TMO= LOGNAME_= QUIET=0 REPORT=0
while getopts "k:i:c:t:n:qr" opt; do
	case $opt in
	k) KERNEL=$OPTARG ;; i) INITRD=$OPTARG ;; c) XCMD=$OPTARG ;;
	t) TMO=$OPTARG ;; n) LOGNAME_=$OPTARG ;; q) QUIET=1 ;; r) REPORT=1 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;/^set -e/d' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || { echo "usage: $0 [-k BZIMAGE] [-i INITRD] [-c CMDLINE] [-t SECS] [-n NAME] [-q] [-r] SCENARIO" >&2; exit 2; }

SRC=$1
if [ ! -f "$SRC" ]; then
	for d in tests/vm tests/vm/selftest tests/vm/demo; do
		[ -f "$TOP/$d/$1.c" ] && { SRC=$TOP/$d/$1.c; break; }
	done
fi
[ -f "$SRC" ] || { echo "run-scenario: no scenario '$1'" >&2; exit 2; }
NAME=$(basename "$SRC" .c)
LOGNAME_=${LOGNAME_:-$NAME}

# ---- metadata ----
META=$(grep -m1 -o 'hugelive-scenario:.*' "$SRC" | sed 's/^hugelive-scenario://; s/\*\/.*$//') || {
	echo "run-scenario: $SRC has no 'hugelive-scenario:' metadata line" >&2; exit 2; }
M_generations=1 M_mem=512 M_timeout=120 M_smp=2 M_cmdline= M_allow_warn=0 M_userspace=0 M_bins= M_numa=0 M_numa_mem= M_qemu= M_kernels= M_kernels_cycle=0 M_vmm=0
rest=$META
re='^[[:space:]]*([a-z_]+)=("([^"]*)"|([^[:space:]]*))(.*)$'
while [[ $rest =~ $re ]]; do
	key=${BASH_REMATCH[1]}
	val=${BASH_REMATCH[3]}${BASH_REMATCH[4]}
	rest=${BASH_REMATCH[5]}
	case $key in
	generations|mem|timeout|smp|cmdline|allow_warn|userspace|bins|numa|numa_mem|qemu|kernels|kernels_cycle|vmm) printf -v "M_$key" '%s' "$val" ;;
	*) ;;  # unknown keys are for the scenario's own use
	esac
done
[ -z "${HUGELIVE_KERNELS:-}" ] || M_kernels=$HUGELIVE_KERNELS
[ -z "${HUGELIVE_KERNELS_CYCLE:-}" ] || M_kernels_cycle=$HUGELIVE_KERNELS_CYCLE
if [ -n "${HUGELIVE_GENERATIONS:-}" ]; then
	case $HUGELIVE_GENERATIONS in ''|*[!0-9]*|0) echo "run-scenario: bad HUGELIVE_GENERATIONS '$HUGELIVE_GENERATIONS'" >&2; exit 2 ;; esac
	M_generations=$HUGELIVE_GENERATIONS
fi

# ---- kernels ----
# image_of FLAVOUR: the bzImage of a flavour (from $HUGELIVE_IMAGES, else built).
image_of() {
	local w
	if [ -n "${HUGELIVE_IMAGES:-}" ]; then
		for w in $HUGELIVE_IMAGES; do
			[ "${w%%=*}" = "$1" ] && { echo "${w#*=}"; return 0; }
		done
		echo "run-scenario: no $1 kernel in HUGELIVE_IMAGES (its build failed?)" >&2
		return 1
	fi
	"$TOP/scripts/build-kernel.sh" "$1"
}
KFLAV=() KIMG=()
if [ -n "$M_kernels" ]; then
	read -ra KLIST <<<"$M_kernels"
	for f in "${KLIST[@]}"; do
		case $f in *[!a-z0-9.]*) echo "run-scenario: bad kernel flavour '$f' in kernels=" >&2; exit 2 ;; esac
		seen=0
		for g in ${KFLAV[@]+"${KFLAV[@]}"}; do [ "$g" = "$f" ] && seen=1; done
		[ $seen = 1 ] && continue
		img=$(image_of "$f") || { echo "run-scenario: cannot get the $f kernel" >&2; exit 2; }
		KFLAV+=("$f"); KIMG+=("$img")
	done
	KERNEL=$(image_of "${KLIST[0]}")
fi
[ -n "$KERNEL" ] || KERNEL=$("$TOP/scripts/build-kernel.sh" debug)
if [ -n "$TMO" ]; then
	M_timeout=$TMO
elif [ -n "${HUGELIVE_TIMEOUT_SCALE:-}" ]; then
	# Several guests share the host (parallel make check): more time each.
	M_timeout=$(awk -v t="$M_timeout" -v s="$HUGELIVE_TIMEOUT_SCALE" 'BEGIN { printf "%d", t * s }')
fi

if [ -z "$INITRD" ]; then
	# A small initramfs per scenario and kernel: busybox, this program, the
	# kernel to kexec into, and the programs asked for (userspace=, bins=).
	BIN=$TOP/build/vm/scenarios/$NAME
	make -s --no-print-directory -C "$TOP" "$BIN" >&2 || { echo "run-scenario: cannot build $BIN" >&2; exit 2; }
	[ -x "$BIN" ] || { echo "run-scenario: $BIN not built (make vm-bins)" >&2; exit 2; }
	INITRD=$TOP/build/vm/initramfs/$NAME-$(basename "$(dirname "$KERNEL")").cpio
	extra=()
	if [ ${#KFLAV[@]} -gt 0 ]; then
		INITRD=$TOP/build/vm/initramfs/$NAME-$(printf '%s\n' "${KIMG[@]}" | sha256sum | cut -c1-12).cpio
		for ((k = 0; k < ${#KFLAV[@]}; k++)); do
			extra+=(-K "${KFLAV[$k]}=${KIMG[$k]}")
		done
	fi
	if [ "$M_userspace" = 1 ]; then
		[ -d "$TOP/userspace/build/bin" ] || { echo "run-scenario: $NAME wants userspace/build/bin (make -C userspace)" >&2; exit 2; }
		extra+=(-d "$TOP/userspace/build/bin")
	fi
	for b in $M_bins; do
		case $b in /*) ;; *) b=$TOP/$b ;; esac
		extra+=(-b "$b")
	done
	if [ "$M_vmm" = 1 ]; then
		# QEMU as the host has it (docs/vm-guest.md): the binary and its
		# libraries, the BIOS and option ROMs a -kernel boot of a pc machine
		# loads, the TCG module (a fallback); the nested guest's initramfs.
		GUEST=$TOP/build/vm/guest/guest.cpio
		make -s --no-print-directory -C "$TOP" "$GUEST" >&2 || { echo "run-scenario: cannot build $GUEST" >&2; exit 2; }
		QEMU_BIN=$(command -v qemu-system-x86_64) || { echo "run-scenario: vmm=1 needs qemu-system-x86_64" >&2; exit 2; }
		extra+=(-b "$QEMU_BIN" -f "$GUEST=/usr/share/hugelive-vm/guest.cpio")
		# (Debian's QEMU looks in ../share/qemu and ../share/seabios of its
		# own directory, `qemu-system-x86_64 -L help`: /usr/local/share here)
		for r in /usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin /usr/share/qemu/kvmvapic.bin; do
			[ -e "$r" ] && extra+=(-f "$r=/usr/local${r#/usr}")
		done
		for m in /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so; do
			[ -e "$m" ] && extra+=(-f "$m=$m")
		done
	fi
	"$TOP/vm/mkinitramfs.sh" -o "$INITRD" -k "$KERNEL" -x "$BIN" "${extra[@]}" 2>/dev/null ||
		{ echo "run-scenario: mkinitramfs failed" >&2; exit 2; }
fi
[ -f "$INITRD" ] || { echo "run-scenario: initramfs '$INITRD' missing (vm/mkinitramfs.sh)" >&2; exit 2; }

LOGDIR=${HUGELIVE_LOGDIR:-$TOP/build/logs}
mkdir -p "$LOGDIR"
LOG=$LOGDIR/$LOGNAME_.log
RES=$LOGDIR/$LOGNAME_.results
rm -f "$LOG" "$RES"

CMDLINE="console=ttyS0 kho=on liveupdate=on panic=-1 hugelive.scenario=$NAME hugelive.gen=0 hugelive.generations=$M_generations"
[ -n "$M_kernels" ] && CMDLINE+=" hugelive.kernels=$(tr -s ' ' ',' <<<"$M_kernels")"
[ -n "$M_kernels" ] && [ "$M_kernels_cycle" = 1 ] && CMDLINE+=" hugelive.kernels_cycle=1"
[ -n "$M_cmdline" ] && CMDLINE+=" $M_cmdline"
[ "${CORRUPT:-0}" != 0 ] && CMDLINE+=" hugelive.corrupt=1"
[ -n "$XCMD" ] && CMDLINE+=" $XCMD"
[ -n "${EXTRA_CMDLINE:-}" ] && CMDLINE+=" $EXTRA_CMDLINE"

# ---- accelerator: TCG unless KVM is asked for and proves it boots ----
ACCEL=(-accel tcg -cpu max)
if [ "${HUGELIVE_KVM:-0}" = 1 ]; then
	probe=$LOGDIR/kvm-probe
	if [ -w /dev/kvm ] && ( timeout -k 2 30 qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$KERNEL" -initrd "$INITRD" -serial "file:$probe.log" -serial "file:$probe.results" \
		-append "console=ttyS0 panic=-1 hugelive.scenario=probe" </dev/null >/dev/null 2>&1; exit $? ) 2>/dev/null &&
	   grep -q 'HUGELIVE probe ok' "$probe.results" 2>/dev/null; then
		ACCEL=(-accel kvm -cpu host)
	else
		echo "# run-scenario: HUGELIVE_KVM=1 but a KVM probe boot failed; using TCG" >&2
	fi
fi

# numa=N: N NUMA nodes sharing the memory equally (mem must divide by N),
# CPUs spread round-robin. numa_mem="A,B,...": node sizes in MiB instead,
# the last one repeated for the remaining nodes; mem must be their sum.
NUMA=()
if [ "$M_numa" -gt 1 ] 2>/dev/null; then
	IFS=, read -ra nsz <<<"$M_numa_mem"
	total=0
	for ((n = 0; n < M_numa; n++)); do
		sz=$((M_mem / M_numa))
		if [ ${#nsz[@]} -gt 0 ]; then
			sz=${nsz[$(( n < ${#nsz[@]} ? n : ${#nsz[@]} - 1 ))]}
		fi
		total=$((total + sz))
		NUMA+=(-object "memory-backend-ram,id=hlmem$n,size=${sz}M"
		       -numa "node,nodeid=$n,memdev=hlmem$n")
	done
	[ "$total" = "$M_mem" ] || { echo "run-scenario: numa_mem adds up to $total MiB, mem=$M_mem" >&2; exit 2; }
	for ((c = 0; c < M_smp; c++)); do
		NUMA+=(-numa "cpu,node-id=$((c % M_numa)),socket-id=$c")
	done
	NUMA=(-smp "$M_smp,sockets=$M_smp,cores=1,threads=1" "${NUMA[@]}")
else
	NUMA=(-smp "$M_smp")
fi

read -ra QEXTRA <<<"$M_qemu ${HUGELIVE_QEMU_ARGS:-}"
start=$(date +%s%N)
set +e
timeout -k 5 "$M_timeout" qemu-system-x86_64 "${ACCEL[@]}" -m "$M_mem" "${NUMA[@]}" \
	-nodefaults -no-user-config -display none -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$CMDLINE" \
	-serial "file:$LOG" -serial "file:$RES" ${QEXTRA[@]+"${QEXTRA[@]}"} </dev/null >"$LOGDIR/$LOGNAME_.qemu" 2>&1 &
qpid=$!
# Interrupted (make check stopped): take the guest down with us.
trap 'kill -TERM $qpid 2>/dev/null; wait $qpid 2>/dev/null; exit 143' TERM INT HUP
wait $qpid
qrc=$?
trap - TERM INT HUP
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
secs=$((ms / 1000)).$(( (ms % 1000) / 100 ))
echo "$secs" >"$LOGDIR/$LOGNAME_.secs"

touch "$RES" "$LOG"
R=$(tr -d '\r' <"$RES")
tap=$(grep -E '^(not )?ok [0-9]' <<<"$R" || true)
n_ok=$(grep -c '^ok ' <<<"$tap" || true)
n_fail=$(grep -c '^not ok ' <<<"$tap" || true)

reasons=()
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
	reasons+=("timeout: killed after ${M_timeout}s")
elif [ $qrc != 0 ]; then
	reasons+=("qemu exited with $qrc: $(tail -n 3 "$LOGDIR/$LOGNAME_.qemu" | tr '\n' ' ')")
fi
gens_seen=0
for ((g = 0; g < M_generations; g++)); do
	if grep -q "^HUGELIVE gen=$g start" <<<"$R"; then
		gens_seen=$((gens_seen + 1))
	else
		reasons+=("generation $g never started")
		break
	fi
done
extra=$(grep -c "^HUGELIVE gen=$M_generations start" <<<"$R" || true)
[ "$extra" = 0 ] || reasons+=("more generations ran than the $M_generations expected")
last=$((M_generations - 1))
exitline=$(grep "^HUGELIVE exit gen=" <<<"$R" | tail -n1 || true)
if [ -z "$exitline" ]; then
	[ ${#reasons[@]} -gt 0 ] || reasons+=("no exit/done marker from the scenario")
elif [ "$exitline" != "HUGELIVE exit gen=$last rc=0" ]; then
	reasons+=("scenario ended with '${exitline#HUGELIVE }' (expected gen=$last rc=0)")
fi
grep -q "^HUGELIVE done gen=$last" <<<"$R" || [ ${#reasons[@]} -gt 0 ] || reasons+=("no done marker")
[ "$n_fail" = 0 ] || reasons+=("$n_fail TAP line(s) not ok")
[ "$n_ok" -gt 0 ] || [ ${#reasons[@]} -gt 0 ] || reasons+=("no TAP line reported ok")
if [ "$M_allow_warn" != 1 ]; then
	oops=$(grep -m3 -E 'Kernel panic|BUG:|WARNING:|Oops|general protection fault|UBSAN|KASAN' "$LOG" | tr -d '\r' || true)
	[ -z "$oops" ] || reasons+=("kernel trouble in the console log: $(head -n1 <<<"$oops")")
fi

if [ $QUIET = 0 ] && [ -n "$tap" ]; then
	sed 's/^/    /' <<<"$tap"
fi
if [ $REPORT = 1 ]; then
	grep '^report: ' <<<"$R" | sed 's/^report: //' || true
fi
if [ ${#reasons[@]} = 0 ]; then
	echo "ok - $NAME ($gens_seen/$M_generations generations, $n_ok checks, ${secs}s)"
	exit 0
fi
echo "not ok - $NAME ($gens_seen/$M_generations generations, $n_ok ok, $n_fail not ok, ${secs}s)"
for r in "${reasons[@]}"; do echo "    reason: $r"; done
grep '^not ok ' <<<"$tap" | sed 's/^/    /' || true
echo "    --- last 40 lines of $LOG ---"
tail -n 40 "$LOG" | tr -d '\r' | sed 's/^/    | /'
exit 1
exit
}
