#!/bin/bash
# The body of "make demo": a live update in a VM (the kvm kernel for
# demo-vm, the vm kernel for the others).
#
# Builds the kernel if missing, an initramfs with the demo program, boots
# QEMU, and lets the demo preserve memory, kexec into the next kernel,
# retrieve and verify it. Prints the demo's report.
#
# DEMO=NAME picks the demo program (tests/vm/demo/): demo-vm (default; a
# nested KVM guest whose RAM is a hugetlb memfd keeps running across the
# host's kernel update, run by hugelive-vm; docs/vm-guest.md), demo-agent
# (hugetlb memory of a client service carried by hugelived and
# `hugelivectl update`) or demo-memfd (a shmem memfd, raw /dev/liveupdate);
# DEMO_MIB=N sets the memfd size for demo-memfd (default 512).
# The whole script is one block: bash parses it before running it, so an
# edit of this file while it runs cannot derail the run.
{
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
DEMO=${DEMO:-demo-vm}
t0=$(date +%s)

# demo-vm's host needs KVM: the kvm flavour (its kernels= metadata names it)
FLAV=vm
[ "$DEMO" = demo-vm ] && FLAV=kvm
KERNEL=$(scripts/build-kernel.sh $FLAV)
xcmd=
[ -n "${DEMO_MIB:-}" ] && xcmd="hugelive.demo_mib=$DEMO_MIB"

echo "hugelive demo ($DEMO): live update of the VM's kernel by kexec, memory carried through /dev/liveupdate"
echo "  kernel: $KERNEL"
echo "  VM:     QEMU TCG, console log build/logs/demo.log, results build/logs/demo.results"
set +e
out=$(vm/run-scenario.sh -q -r -k "$KERNEL" -n demo -c "$xcmd" "$DEMO" 2>&1)
rc=$?
set -e
kver=$(grep -o 'kernel=[^ ]*' build/logs/demo.results 2>/dev/null | head -n1 | cut -d= -f2)
echo "  kernel release: ${kver:-?} -> ${kver:-?} (generation 0 -> 1)"
echo
echo "report:"
grep -v -E '^(not )?ok - |^    ' <<<"$out" | sed 's/^/  /'
echo
if [ $rc = 0 ]; then
	echo "demo: PASS ($(grep -E '^ok - ' <<<"$out" | sed 's/^ok - //'); $(( $(date +%s) - t0 ))s in total)"
else
	echo "demo: FAIL"
	grep -E '^not ok - |^    ' <<<"$out"
fi
exit $rc
exit
}
