// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=400 userspace=1 cmdline="hugepages=32"
 *
 * Killing the agent (kill -9, not the keeper) and restarting it loses
 * nothing (design.md: the keeper process holds a copy of every fd, the
 * device's included).
 *
 * gen 0: hugelived; svc-huge, a C client with a 32 MiB hugetlb memfd
 *        (subscribed, reconnects when the agent goes away); svc-tool, 32
 *        MiB of shmem preserved with `hugelivectl preserve --create --fd 3`,
 *        after which the scenario closes its own copy (only the agent and
 *        its keeper hold the file). kill -9 the agent: the keeper lives on,
 *        `hugelivectl status` exits 3 (agent not reachable). Restart
 *        `hugelived --daemonize`: a new pid, boot "restarted", both sessions
 *        with their tokens and labels, the same keeper; svc-huge reconnects
 *        and subscribes again; svc-tool adds token 2 (usable). Update.
 * gen 1: hugelived (boot "updated"); svc-huge retrieves, verifies and
 *        finishes. kill -9 the agent again with svc-tool's session still
 *        incoming, restart: the incoming session is still there; svc-tool
 *        gets both tokens back with `hugelivectl retrieve -- verifier`.
 */
#include "lib/agent.h"

#define T_SIZE		(32ULL << 20)
#define T_SEED		0x746f6f6cULL

static struct ag_svc svc_huge = {
	.session = "svc-huge", .label = "32 MiB hugetlb", .huge = true, .size = 32ULL << 20,
	.seed = 0x68756765ULL, .uid = -1, .reconnect = true, .prepared = 1,
};

static char out[65536];
static char self[256];

static void gen0(void)
{
	struct ag_child h;
	struct ag_mem t, t2;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;
	ag_fork(&h, "svc-huge", ag_svc_serve, &svc_huge);
	hl_ok(ag_relay(&h, "ready", 60000), "svc-huge is up: preserved and subscribed");
	if (!hl_ok(!ag_mem_new(&t, "svc-tool", T_SIZE, false, T_SEED), "svc-tool: 32 MiB memfd filled"))
		return;
	rc = ag_run(out, sizeof(out), t.fd,
		    "hugelivectl preserve --session svc-tool --token 1 --fd 3 --create --label 'shell service'");
	hl_ok(rc == 0, "svc-tool: hugelivectl preserve --create (exit %d)", rc);
	munmap(t.p, t.size);
	close(t.fd);
	hl_diag("svc-tool: the scenario closed its own fd: only the agent and the keeper hold the memfd");

	ag_crash_and_restart("gen 0", NULL, 2, "outgoing_sessions");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions");
	hl_ok(rc == 0 && ag_contains(out, "1:32 MiB hugetlb[hugetlb]") && ag_contains(out, "1:shell service"),
	      "sessions after the restart: both, with tokens, labels and the hugetlb flag");
	hl_ok(ag_relay(&h, "reconnected", 30000), "svc-huge reconnected to the new agent");
	rc = ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "subscribers", -1) == 1, "status: svc-huge subscribed again (subscribers %lld)",
	      ag_jint(out, "subscribers", -1));
	if (hl_ok(!ag_mem_new(&t2, "svc-tool-2", AG_TOKEN2_SIZE, false, T_SEED + 1), "svc-tool: second memfd")) {
		rc = ag_run(out, sizeof(out), t2.fd,
			    "hugelivectl preserve --session svc-tool --token 2 --fd 3 --label 'after restart'");
		hl_ok(rc == 0, "the restarted agent takes a new token in an old session (exit %d)", rc);
		munmap(t2.p, t2.size);
		close(t2.fd);
	}
	ag_update(60);
}

static int verify_main(int token)
{
	struct ag_mem m;
	char what[64];

	ag_rep_fd = 1;
	snprintf(what, sizeof(what), "svc-tool token %d (fd 3 from hugelivectl retrieve)", token);
	return ag_mem_verify(3, what, false, token == 1 ? T_SIZE : AG_TOKEN2_SIZE,
			     T_SEED + (uint64_t)token - 1, &m) ? 0 : 1;
}

static void gen1(void)
{
	struct ag_child h;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && ag_jint(out, "incoming_sessions", -1) == 2,
	      "status: boot updated, 2 incoming sessions");
	ag_fork(&h, "svc-huge", ag_svc_claim, &svc_huge);
	rc = ag_wait_child(&h, 120000);
	hl_ok(rc == 0, "svc-huge got its memory back (exit %d)", rc);

	ag_crash_and_restart("gen 1", NULL, 1, "incoming_sessions");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions");
	hl_ok(rc == 0 && ag_contains(out, "svc-tool") && ag_contains(out, "incoming") &&
	      ag_contains(out, "2:after restart"),
	      "sessions after the second restart: svc-tool still incoming with both tokens");

	rc = ag_run(out, sizeof(out), -1, "hugelivectl retrieve --session svc-tool --token 1 -- %s --verify 1", self);
	hl_ok(rc == 0 && ag_relay_text(out) >= 4, "svc-tool: hugelivectl retrieve token 1 -- verifier (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl retrieve --session svc-tool --token 2 --finish -- %s --verify 2",
		    self);
	hl_ok(rc == 0 && ag_relay_text(out) >= 4, "svc-tool: hugelivectl retrieve token 2 --finish -- verifier (exit %d)",
	      rc);
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0 && ag_jint(out, "outgoing_sessions", -1) == 0,
	      "status: no session left");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == 32, "2M pool whole again (free %lld of 32)",
	      hl_hp(HL_2M, "free_hugepages"));
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--verify"))
		return verify_main(atoi(argv[2]));
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		snprintf(self, sizeof(self), "/scenarios/agent-restart");
	if (hl_gen() == 0)
		gen0();
	else
		gen1();
	return hl_exit();
}
