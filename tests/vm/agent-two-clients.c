// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=400 userspace=1 cmdline="hugepages=64"
 *
 * Two client services survive an orchestrated live update through the real
 * agent and tool.
 *
 * gen 0: start hugelived (--daemonize, keeper fd store). Two client
 *        services, each its own process, connection and session: svc-huge
 *        keeps 64 MiB in a hugetlb memfd (2 MiB pages), svc-plain 96 MiB in
 *        a shmem memfd; both filled with the per-word pattern, preserved
 *        (token 1) and subscribed to the update barrier. `hugelivectl
 *        sessions --all` and `status` show them; then `hugelivectl update
 *        --kernel /boot/bzImage --initrd $HUGELIVE_NEXT_INITRD
 *        --reuse-cmdline --append hugelive.gen=1`: preflight, load,
 *        barrier (each service writes the update id and a stamp into its
 *        header page, then answers ready), kexec.
 * gen 1: start hugelived: boot "updated", both sessions incoming, status
 *        names the update that booted the kernel. Each
 *        service (again its own process) lists, retrieves token 1 (the
 *        reply says hugetlb or not), verifies the header written at prepare
 *        and every word of the pattern, finishes the session; a retrieve
 *        after finish is ENOENT. Then no session is left, and the hugetlb
 *        pool is whole again.
 */
#include "lib/agent.h"

#define NR_HUGE		64LL

static struct ag_svc svc_huge = {
	.session = "svc-huge", .label = "64 MiB hugetlb cache", .huge = true,
	.size = 64ULL << 20, .seed = 0x4875676531ULL, .uid = -1, .prepared = 1,
};
static struct ag_svc svc_plain = {
	.session = "svc-plain", .label = "96 MiB shmem buffer", .huge = false,
	.size = 96ULL << 20, .seed = 0x506c61696eULL, .uid = -1, .prepared = 1,
};

static char out[65536];

static void gen0(void)
{
	struct ag_child a, b;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "boot", "fresh") && ag_jis(out, "backend", "luo") &&
	      ag_jbool(out, "hugetlb_support") == 1,
	      "status: fresh boot, luo backend, hugetlb support (exit %d)", rc);

	ag_fork(&a, "svc-huge", ag_svc_serve, &svc_huge);
	hl_ok(ag_relay(&a, "ready", 60000), "svc-huge is up: preserved and subscribed");
	ag_fork(&b, "svc-plain", ag_svc_serve, &svc_plain);
	hl_ok(ag_relay(&b, "ready", 60000), "svc-plain is up: preserved and subscribed");

	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions --all");
	hl_ok(rc == 0 && ag_contains(out, "svc-huge") && ag_contains(out, "svc-plain") &&
	      ag_contains(out, "hugetlb cache[hugetlb]") && ag_contains(out, "1:96 MiB shmem buffer"),
	      "sessions --all lists both sessions, outgoing, with labels and the hugetlb flag (exit %d)", rc);
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "outgoing_sessions", -1) == 2 && ag_jint(out, "subscribers", -1) == 2,
	      "status: 2 outgoing sessions, 2 subscribers (got %lld, %lld)",
	      ag_jint(out, "outgoing_sessions", -1), ag_jint(out, "subscribers", -1));
	hl_diag("2M pool before the update: nr %lld free %lld", hl_hp(HL_2M, "nr_hugepages"),
		hl_hp(HL_2M, "free_hugepages"));

	ag_update(60);
}

static void gen1(void)
{
	struct ag_child a, b;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && ag_jint(out, "incoming_sessions", -1) == 2,
	      "status: boot updated, 2 incoming sessions (exit %d)", rc);
	{
		const char *lu = ag_jfind(out, "last_update");

		hl_ok(lu && ag_jis(lu, "result", "kexec") && ag_jint(lu, "id", -1) == 1 &&
		      ag_contains(lu, "kexec into /boot/bzImage"),
		      "status: last_update names the update that booted this kernel (update 1, kexec)");
	}
	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions --all");
	hl_ok(rc == 0 && ag_contains(out, "svc-huge") && ag_contains(out, "svc-plain") &&
	      !ag_contains(out, "outgoing"),
	      "sessions --all: both sessions are back as incoming (exit %d)", rc);
	hl_diag("2M pool before retrieve: nr %lld free %lld", hl_hp(HL_2M, "nr_hugepages"),
		hl_hp(HL_2M, "free_hugepages"));

	ag_fork(&a, "svc-huge", ag_svc_claim, &svc_huge);
	ag_fork(&b, "svc-plain", ag_svc_claim, &svc_plain);
	rc = ag_wait_child(&a, 120000);
	hl_ok(rc == 0, "svc-huge got its memory back (exit %d)", rc);
	rc = ag_wait_child(&b, 120000);
	hl_ok(rc == 0, "svc-plain got its memory back (exit %d)", rc);

	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0 && ag_jint(out, "outgoing_sessions", -1) == 0,
	      "status: no session left after both finished (in %lld, out %lld)",
	      ag_jint(out, "incoming_sessions", -1), ag_jint(out, "outgoing_sessions", -1));
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == NR_HUGE && hl_hp(HL_2M, "free_hugepages") == NR_HUGE,
	      "2M pool whole again: nr %lld free %lld (want %lld)", hl_hp(HL_2M, "nr_hugepages"),
	      hl_hp(HL_2M, "free_hugepages"), NR_HUGE);
	ag_run(NULL, 0, -1, "cat " HL_LUO_DEBUGFS "/stats");
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
