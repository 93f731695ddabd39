// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 timeout=900 userspace=1 vmm=1 kernels="kvm" cmdline="hugepages=300"
 *
 * A virtual machine whose RAM is in 2 MiB huge pages keeps running across a
 * live update of its host's kernel (issue 11; docs/vm-guest.md).
 *
 * gen 0: the test VM is the host (kvm kernel): hugelived, then hugelive-vm
 *        starts a nested KVM guest (Debian's QEMU, 512 MiB of RAM in a
 *        hugetlb memfd preserved in session "guest"); the guest fills 384
 *        MiB with its per-page pattern and checks it. `hugelivectl update`:
 *        at the barrier hugelive-vm stops the guest, saves its device state
 *        (x-ignore-shared: RAM stays out of it) into a memfd preserved in
 *        "guest.state", answers ready; the host kexecs.
 * gen 1: hugelived; `hugelive-vm restore` gets RAM, state and console record
 *        back, starts QEMU on the same RAM with -incoming, loads the state and
 *        continues the guest. Checked from the guest's own lines: no reboot
 *        (one start, same boot id), its heartbeat counter continues by one,
 *        its clock never went back, and a sweep begun after the update
 *        verified every page and the running checksum.
 */
#include "lib/vmguest.h"

static void gen0(void)
{
	hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
	vg_start();
	ag_update(120);
}

static void gen1(void)
{
	vg_restore(1);
	vg_stop();
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
