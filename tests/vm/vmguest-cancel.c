// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 timeout=900 userspace=1 vmm=1 kernels="kvm" cmdline="hugepages=300"
 *
 * A cancelled update resumes the nested guest where it was, in the same
 * QEMU, and a real update works afterwards (docs/vm-guest.md).
 *
 * gen 0: hugelived, hugelive-vm start, the guest fills and checks its RAM.
 *        A second subscriber (`hugelivectl subscribe --on-prepare`) waits
 *        until hugelive-vm has stopped the guest, saved its state and
 *        answered ready, then refuses: `hugelivectl update` exits 4. The
 *        launcher drops the saved state's session and continues the guest:
 *        the same QEMU process, and from the guest's own lines no reboot, a
 *        counter continuing by one, a sweep after the cancel verifying every
 *        page. Then a plain update.
 * gen 1: restore and the guest's checks (vmguest.h); stop.
 */
#include "lib/vmguest.h"

static char out[65536];

static void cancelled_update(void)
{
	long long qpid = vg_status_ll("qemu_pid");
	struct vg_guest g;
	pid_t sub;
	int rc;

	/* refuses once hugelive-vm is ready: the cancel reaches a stopped, saved guest */
	sub = ag_spawn(-1, "exec hugelivectl subscribe --count 1 --on-prepare "
		       "'until grep -q state=ready " VG_DIR "/status; do sleep 0.2; done; "
		       "echo refuser: hugelive-vm is ready, refusing; exit 1' >/dev/console 2>&1");
	sleep(2);
	rc = ag_run_as(-1, out, sizeof(out), -1, 300, "hugelivectl update --kernel %s --initrd %s --reuse-cmdline "
		       "--append hugelive.gen=1 --timeout 120", getenv("HUGELIVE_KERNEL"),
		       getenv("HUGELIVE_NEXT_INITRD"));
	hl_ok(rc == AG_EXIT_CANCELLED, "hugelivectl update exits %d (cancelled) after the refusal (got %d)",
	      AG_EXIT_CANCELLED, rc);
	bool ok = vg_wait_state("running", -1, 60);

	hl_ok(ok && vg_status_ll("cancels") == 1,
	      "hugelive-vm took the cancel after its ready (cancels %lld) and runs the guest again",
	      vg_status_ll("cancels"));
	hl_ok(vg_status_ll("qemu_pid") == qpid, "the same QEMU (pid %lld) runs it", qpid);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json sessions");
	hl_ok(rc == 0 && ag_contains(out, "\"" VG_NAME "\"") && !ag_contains(out, VG_NAME ".state"),
	      "the saved state's session is gone, the RAM's session is kept");
	ok = vg_wait_guest(VG_CONTINUING, 4, 300, &g);
	if (!hl_ok(ok, "the guest runs again after the cancel: %lld heartbeats since", g.hb_after))
		vg_console_tail(30);
	hl_ok(g.starts == 1 && g.boot_changes == 0 && g.n_gaps == 0 && g.n_after == g.n_before + 1,
	      "the cancel left the guest unchanged: same boot %s, counter %lld -> %lld", g.boot, g.n_before, g.n_after);
	hl_ok(g.bad == 0 && g.sweep_after_ok && g.sweep_after_pages == g.pages,
	      "verified by the guest itself after the cancel: sweep %lld checked all %lld pages", g.sweep_after_k,
	      g.sweep_after_pages);
	kill(sub, SIGTERM);
	waitpid(sub, NULL, 0);
}

int main(void)
{
	if (hl_gen() == 0) {
		hl_ok(ag_start_agent(NULL) == 0, "hugelived started");
		vg_start();
		cancelled_update();
		ag_update(120);
	} else {
		vg_restore(1);
		vg_stop();
	}
	return hl_exit();
}
