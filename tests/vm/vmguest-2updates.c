// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=2048 timeout=1200 userspace=1 vmm=1 kernels="kvm" cmdline="hugepages=300"
 *
 * The nested guest of vmguest-update survives two live updates of its
 * host's kernel in a row: after the first, the restored launcher preserves
 * the same RAM again in a new session and subscribes, and the next update
 * carries it the same way (docs/vm-guest.md).
 *
 * gen 0: hugelived, hugelive-vm start, the guest fills and checks its RAM;
 *        update 1.
 * gen 1: restore; the guest's own checks after update 1 (vmguest.h); update 2.
 * gen 2: restore; the guest's own checks after update 2 (no reboot since
 *        gen 0, counter continuous through both, every page verified); stop.
 */
#include "lib/vmguest.h"

int main(void)
{
	switch (hl_gen()) {
	case 0:
		hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
		vg_start();
		ag_update(120);
		break;
	case 1:
		vg_restore(1);
		ag_update(120);
		break;
	default:
		vg_restore(2);
		vg_stop();
		break;
	}
	return hl_exit();
}
