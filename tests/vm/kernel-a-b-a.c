// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=4096 timeout=900 userspace=1 kernels="debug vmb debug" cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * Live updates into a different kernel and back (issue 10 item 1): the
 * debug kernel (A) -> kernel B (flavour vmb: LOCALVERSION -hlvmb, NUMA off,
 * HVO on by default, deferred struct page init, zstd; kernel/config/
 * vmb.config) -> the debug kernel again, through hugelived and hugelivectl.
 * (kernel-vm-debug runs the same program with kernels="vm debug vm".)
 *
 * A client service (lib/carry.h, its own process) carries a 64 MiB
 * hugetlb memfd (2 MiB pages), a 1 GiB one (one 1 GiB page), a 32 MiB
 * shmem memfd and a journal memfd. Every generation:
 *   - starts hugelived: gen 0 fresh; later ones "updated" with the session
 *     incoming and last_update naming the update and the image it kexec'd
 *     into (the agent's state crossed the kexec);
 *   - the client retrieves every file and verifies every word (the first
 *     MiB after the header as the previous generation rewrote it, the rest
 *     as gen 0 wrote it), checks from the journal that the previous
 *     generation ran the flavour the harness booted and that this kernel
 *     is another one (uname -r and config), finishes the session;
 *   - the pools are what faulting the files in would give: 2 MiB nr 64
 *     free 32, 1 GiB nr 1 free 0, no reservation or surplus;
 *   - not last: the client rewrites the region, preserves everything in a
 *     new session and subscribes; `hugelivectl check --kernel NEXT` must
 *     read the running kernel's formats from its image (/boot/vmlinuz-
 *     $(uname -r), linked by /init) and pass every image row; then
 *     `hugelivectl update --kernel /boot/bzImage-NEXT`.
 * Last generation: the pools are whole again once the client closed its
 * files. The console must show no WARNING in any of the kernels.
 */
#include "lib/carry.h"

#define NR_2M	64LL

static struct carry car = {
	.session = "a-b-a",
	.nfiles = 3,
	.f = {
		{ .label = "64 MiB hugetlb 2M", .kind = CR_2M, .size = 64ULL << 20, .seed = 0x41424132ULL },
		{ .label = "1 GiB hugetlb 1G", .kind = CR_1G, .size = 1ULL << 30, .seed = 0x41424131ULL },
		{ .label = "32 MiB shmem", .kind = CR_SHMEM, .size = 32ULL << 20, .seed = 0x4142414dULL },
	},
};

static char out[65536];

static void check_next(void)
{
	const char *k = getenv("HUGELIVE_KERNEL");
	int rc, rows = 0, pass = 0;
	char want[128];
	struct utsname u;

	uname(&u);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check --kernel %s --reuse-cmdline", k);
	for (const char *p = out; (p = strstr(p, "\"check\":\"image")); p++) {
		const char *st = strstr(p, "\"status\":");

		rows++;
		pass += st && !strncmp(st + 9, "\"pass\"", 6);
	}
	hl_ok(rows >= 6 && rows == pass, "check --kernel %s: %d of %d image rows pass (exit %d)", k, pass, rows, rc);
	snprintf(want, sizeof(want), "(/boot/vmlinuz-%s) writes: kho-v", u.release);
	hl_ok(ag_contains(out, "\"check\":\"running-kernel\"") && ag_contains(out, want),
	      "check: the running kernel's formats come from its image /boot/vmlinuz-%s", u.release);
}

#ifdef AB_DOWNGRADE
/*
 * Back into the previous release (AB_DOWNGRADE, its image) with hugetlb
 * files preserved: it cannot read what this kernel writes, so check and
 * update refuse with exit 5 before anything is loaded or frozen.
 */
static void downgrade_refused(void)
{
	int rc;

	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check --kernel %s --reuse-cmdline", AB_DOWNGRADE);
	hl_ok(rc == 5 && ag_contains(out, "\"status\":\"fail\""),
	      "check --kernel %s (the previous release) with hugetlb preserved: exit %d (want 5)", AB_DOWNGRADE, rc);
	ag_update_refused(AB_DOWNGRADE, "the previous release", "cannot take what is preserved",
			  "nothing was loaded or frozen");
}
#endif

static void gen(void)
{
	struct ag_child ch;
	int g = hl_gen(), rc;
	uint64_t id = (uint64_t)g;	/* update g booted generation g */

	hl_diag("gen %d runs flavour %s, kexecs into %s", g, hl_flavour(g), hl_flavour(g + 1));
#ifdef AB_DOWNGRADE
	if (g >= 2)
		id++;	/* the refused downgrade in gen 1 took update id 2 */
#endif
	if (!cr_agent(&car, 1, id))
		return;
	ag_fork(&ch, "carrier", cr_client, &car);
	if (!hl_ok(ag_relay(&ch, "claimed", 180000), "the client has its memory (gen %d)", g))
		return;
	if (g)	/* (in gen 0 the client is creating its files meanwhile) */
		cr_pools("after retrieve", NR_2M, NR_2M - 32, 1, 0);
	if (hl_last_gen()) {
		cr_release(&ch);
		rc = ag_wait_child(&ch, 60000);
		hl_ok(rc == 0, "the client finished (exit %d)", rc);
		rc = ag_status(out, sizeof(out));
		hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0 && ag_jint(out, "outgoing_sessions", -1) == 0,
		      "status: no session left");
		cr_pools("after the client closed its files", NR_2M, NR_2M, 1, 1);
		ag_run(NULL, 0, -1, "cat " HL_LUO_DEBUGFS "/stats");
		return;
	}
	if (!hl_ok(ag_relay(&ch, "ready", 300000), "the client preserved everything and subscribed"))
		return;
	cr_pools("files preserved", NR_2M, NR_2M - 32, 1, 0);
#ifdef AB_DOWNGRADE
	if (g == 1)
		downgrade_refused();
#endif
	check_next();
	ag_update(120);
}

int main(void)
{
	gen();
	return hl_exit();
}
