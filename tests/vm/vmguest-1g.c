// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=4096 timeout=900 userspace=1 vmm=1 kernels="kvm" cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=16"
 *
 * vmguest-update with the nested guest's RAM in one 1 GiB page (a 1 GiB
 * hugetlb memfd, --page-size 1G): a 4 GiB test VM holds one 1 GiB page
 * (NOTES.md), so the guest has 1 GiB of RAM and fills 768 MiB of it.
 * gen 0: start, fill, update; gen 1: restore, the guest's own checks, stop.
 */
#include "lib/vmguest.h"

int main(void)
{
	if (hl_gen() == 0) {
		hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
		vg_start_with(1024, 1024);
		ag_update(120);
	} else {
		vg_restore(1);
		vg_stop();
	}
	return hl_exit();
}
