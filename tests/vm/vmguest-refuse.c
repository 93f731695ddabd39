// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 timeout=900 userspace=1 vmm=1 kernels="kvm" cmdline="hugepages=300"
 *
 * hugelive-vm refuses an update it cannot carry the guest through, and the
 * guest goes on where it was (docs/vm-guest.md).
 *
 * gen 0: hugelived, hugelive-vm start, the guest fills and checks its RAM.
 *        root then owns 64 sessions ("guest" and 63 fillers), the agent's
 *        limit per uid, so at the barrier hugelive-vm has stopped the guest
 *        and saved its state but cannot create "guest.state" (EDQUOT): it
 *        refuses with that reason and continues the guest. `hugelivectl
 *        update` exits 4 naming the reason; the same QEMU runs the guest,
 *        which (its own lines) did not reboot, counts on by one and verifies
 *        every page after the refusal. The fillers go, and a plain update
 *        carries the guest.
 * gen 1: restore and the guest's checks (vmguest.h); stop.
 */
#include "lib/vmguest.h"

#define VG_REFUSED "[hugelive-vm] continuing the guest in the same QEMU (update refused)"

static char out[65536];

static void refused_update(void)
{
	long long qpid = vg_status_ll("qemu_pid");
	struct vg_guest g;
	bool ok;
	int rc;

	rc = ag_run(out, sizeof(out), -1, "for i in $(seq 1 63); do hugelivectl create --session filler$i >/dev/null || "
		    "exit 1; done; hugelivectl create --session one-too-many");
	hl_ok(rc != 0 && ag_contains(out, "EDQUOT"), "root owns 64 sessions, the agent's limit: a 65th is refused "
	      "(EDQUOT)");
	rc = ag_run_as(-1, out, sizeof(out), -1, 300, "hugelivectl update --kernel %s --initrd %s --reuse-cmdline "
		       "--append hugelive.gen=1 --timeout 120", getenv("HUGELIVE_KERNEL"),
		       getenv("HUGELIVE_NEXT_INITRD"));
	hl_ok(rc == AG_EXIT_CANCELLED && ag_contains(out, "hugelive-vm guest: preserving the saved state in session "
						   "guest.state"),
	      "hugelivectl update exits %d (cancelled), naming hugelive-vm's reason (got %d)", AG_EXIT_CANCELLED, rc);
	ok = vg_wait_state("running", -1, 60);
	hl_ok(ok && vg_status_ll("qemu_pid") == qpid && vg_status_ll("cancels") == 0,
	      "hugelive-vm runs the guest again in the same QEMU (pid %lld)", qpid);
	ok = vg_wait_guest(VG_REFUSED, 4, 300, &g);
	if (!hl_ok(ok, "the guest runs again after the refusal: %lld heartbeats since", g.hb_after))
		vg_console_tail(30);
	hl_ok(g.starts == 1 && g.boot_changes == 0 && g.n_gaps == 0 && g.n_after == g.n_before + 1,
	      "the refusal left the guest unchanged: same boot %s, counter %lld -> %lld", g.boot, g.n_before, g.n_after);
	hl_ok(g.bad == 0 && g.sweep_after_ok && g.sweep_after_pages == g.pages,
	      "verified by the guest itself after the refusal: sweep %lld checked all %lld pages", g.sweep_after_k,
	      g.sweep_after_pages);
	rc = ag_run(out, sizeof(out), -1, "for i in $(seq 1 63); do hugelivectl destroy --session filler$i >/dev/null || "
		    "exit 1; done");
	hl_ok(rc == 0, "the 63 filler sessions destroyed");
}

int main(void)
{
	if (hl_gen() == 0) {
		hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
		vg_start();
		refused_update();
		ag_update(120);
	} else {
		vg_restore(1);
		vg_stop();
	}
	return hl_exit();
}
