// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 timeout=900 userspace=1 vmm=1 kernels="kvm" cmdline="hugepages=300"
 *
 * The `make demo` live update (the default of vm/demo.sh): a virtual
 * machine keeps running across a live update of its host's kernel.
 *
 * The test VM is the hypervisor host (the kvm kernel flavour). gen 0:
 * hugelived; hugelive-vm starts a nested KVM guest with Debian's QEMU 7.2,
 * its 512 MiB of RAM a hugetlb memfd (2 MiB pages) preserved through the
 * agent; the guest fills 384 MiB with a per-page pattern and prints
 * heartbeats. `hugelivectl update`: hugelive-vm stops the guest, saves its
 * device state (x-ignore-shared: without the RAM) into a preserved memfd,
 * answers ready; the host kexecs. gen 1: hugelived; `hugelive-vm restore`
 * starts a new QEMU on the same RAM, loads the state, continues the guest;
 * the guest's own lines show no reboot, its counter going on and every page
 * verified. docs/vm-guest.md.
 */
#include "../lib/vmguest.h"

int main(void)
{
	char v[64];

	if (hl_gen() == 0) {
		hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
		vg_start();
		hl_report("gen 0: host kernel %s; hugelive-vm runs QEMU %s (-accel %s), guest RAM 512 MiB = 256 x 2 MiB "
			  "hugetlb pages in a memfd preserved in session \"guest\"", getenv("HUGELIVE_FLAVOUR") ?
			  getenv("HUGELIVE_FLAVOUR") : "?", vg_status("qemu_version", v, sizeof(v)),
			  vg_status("accel", (char[16]){ 0 }, 16));
		hl_report("gen 0: hugelivectl update --kernel %s --initrd ... --reuse-cmdline --append hugelive.gen=1",
			  getenv("HUGELIVE_KERNEL"));
		ag_update(120);
	} else {
		vg_restore(1);
		vg_report_excerpt(1);
		vg_stop();
	}
	return hl_exit();
}
