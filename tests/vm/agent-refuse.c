// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=400 userspace=1 cmdline="hugepages=32"
 *
 * A subscribed client refusing the update barrier cancels the update
 * cleanly; everything stays intact and usable, and a real update works
 * afterwards.
 *
 * gen 0: hugelived; svc-a, a C client (its own process and session, 32 MiB
 *        shmem memfd, subscribed); svc-b, a shell-style service made of
 *        `hugelivectl preserve --create --fd 3` (a 16 MiB hugetlb memfd) and
 *        `hugelivectl subscribe`.
 *        Round 1: svc-a gets "prepare", sees the new kernel loaded
 *        (/sys/kernel/kexec_loaded = 1) and refuses with a reason.
 *        `hugelivectl update` exits 4 (cancelled) naming the refusal;
 *        kexec_loaded is 0 again; svc-a gets "resume", its memory is
 *        intact and it preserves a second token (the session is usable);
 *        the hugelivectl subscriber saw "resume" too; status says
 *        cancelled (ECANCELED) with both sessions and all tokens intact;
 *        svc-b's memory is intact and it also adds token 2.
 *        Round 2: svc-b's subscriber is replaced by `hugelivectl subscribe
 *        --refuse REASON`: exit 4 again with that reason, kernel unloaded.
 *        Round 3: a plain `hugelivectl subscribe` again: the update goes
 *        through.
 * gen 1: svc-a retrieves and verifies both tokens (its header names update
 *        3), finishes; svc-b gets both tokens back with `hugelivectl
 *        retrieve ... -- /scenarios/agent-refuse --verify`, the last with
 *        --finish; nothing is left.
 */
#include "lib/agent.h"

#define B_SIZE		(16ULL << 20)
#define B_SEED		0x5376632d62ULL

static struct ag_svc svc_a = {
	.session = "svc-a", .label = "32 MiB shmem", .huge = false, .size = 32ULL << 20,
	.seed = 0x5376632d61ULL, .uid = -1, .refuse_updates = 1, .token2_after_resume = true,
	.ntokens = 2, .prepared = 3,
};

static char out[65536];
static char self[256];

static long long kexec_loaded(void)
{
	return hl_read_ll("/sys/kernel/kexec_loaded");
}

/* hugelivectl subscribe ARGS in the background, output to LOG; its pid. */
static pid_t subscriber(const char *args, const char *log)
{
	pid_t pid = ag_spawn(-1, "exec hugelivectl subscribe %s >%s 2>&1", args, log);
	uint64_t end = ag_ms() + 10000;

	/* wait until it is subscribed (svc-a + this one) */
	while (ag_ms() < end) {
		char *t = NULL;
		FILE *f = fopen(log, "r");
		size_t n = 0;

		if (f) {
			if (getdelim(&t, &n, 0, f) < 0) {
				free(t);
				t = NULL;
			}
			fclose(f);
		}
		bool ok = t && strstr(t, "subscribed");

		free(t);
		if (ok)
			return pid;
		usleep(100000);
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void gen0(void)
{
	struct ag_child a;
	struct ag_mem b, b2;
	struct hl_mismatch mm = { 0 };
	bool same;
	pid_t sub;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;
	ag_fork(&a, "svc-a", ag_svc_serve, &svc_a);
	hl_ok(ag_relay(&a, "ready", 60000), "svc-a is up: preserved and subscribed");

	if (!hl_ok(!ag_mem_new(&b, "svc-b", B_SIZE, true, B_SEED), "svc-b: 16 MiB hugetlb memfd filled"))
		return;
	rc = ag_run(out, sizeof(out), b.fd,
		    "hugelivectl preserve --session svc-b --token 1 --fd 3 --create --label 'hugetlb via the tool'");
	hl_ok(rc == 0, "svc-b: hugelivectl preserve --create --fd 3 (exit %d)", rc);
	sub = subscriber("", "/tmp/sub-b.log");
	rc = ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "subscribers", -1) == 2 && ag_jint(out, "outgoing_sessions", -1) == 2,
	      "status: 2 sessions, 2 subscribers (got %lld, %lld)", ag_jint(out, "outgoing_sessions", -1),
	      ag_jint(out, "subscribers", -1));
	hl_ok(kexec_loaded() == 0, "no kernel loaded before the update (kexec_loaded=%lld)", kexec_loaded());

	/* ---- round 1: svc-a (C client) refuses ---- */
	uint64_t t0 = ag_ms();

	rc = ag_run(out, sizeof(out), -1,
		    "hugelivectl update --kernel /boot/bzImage --initrd %s --reuse-cmdline --append hugelive.gen=1 --timeout 30",
		    getenv("HUGELIVE_NEXT_INITRD"));
	hl_ok(rc == AG_EXIT_CANCELLED, "round 1: hugelivectl update exits %d (cancelled) in %llu ms (got %d)",
	      AG_EXIT_CANCELLED, (unsigned long long)(ag_ms() - t0), rc);
	hl_ok(ag_contains(out, "refused") && ag_contains(out, "svc-a is busy (test refusal)") &&
	      ag_contains(out, "ECANCELED"),
	      "round 1: the tool names the refusal: %s", ag_line_with(out, "refused"));
	hl_ok(ag_contains(out, "barrier"), "round 1: the tool showed the barrier progress line");
	hl_ok(kexec_loaded() == 0, "round 1: the loaded kernel was unloaded (kexec_loaded=%lld)", kexec_loaded());
	hl_ok(ag_relay(&a, "resumed", 30000), "round 1: svc-a resumed");
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "result", "cancelled") && ag_jint(out, "code", -1) == ECANCELED &&
	      ag_jis(out, "state", "idle") && ag_jint(out, "outgoing_sessions", -1) == 2 &&
	      ag_jint(out, "subscribers", -1) == 2,
	      "round 1: status: last update cancelled (code %lld), idle, 2 sessions, 2 subscribers",
	      ag_jint(out, "code", -1));
	same = hl_pattern_verify(b.p + AG_HDR, b.size - AG_HDR, AG_HDR, B_SEED, &mm);
	hl_ok(same, "round 1: svc-b memory intact (first bad 0x%llx)", (unsigned long long)mm.offset);
	hl_ok(!ag_mem_new(&b2, "svc-b-2", AG_TOKEN2_SIZE, true, B_SEED + 1), "svc-b: second hugetlb memfd");
	rc = ag_run(out, sizeof(out), b2.fd, "hugelivectl preserve --session svc-b --token 2 --fd 3 --label 'after cancel'");
	hl_ok(rc == 0, "round 1: svc-b session still usable: preserve token 2 (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions");
	hl_ok(rc == 0 && ag_contains(out, "1:32 MiB shmem 2:after cancel") &&
	      ag_contains(out, "1:hugetlb via the tool[hugetlb] 2:after cancel[hugetlb]"),
	      "round 1: sessions: svc-a and svc-b outgoing with tokens 1 and 2 (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "cat /tmp/sub-b.log");
	hl_ok(ag_contains(out, "prepare for update 1: ready") && ag_contains(out, "resume after update 1"),
	      "round 1: the hugelivectl subscriber answered ready and got resume");

	/* ---- round 2: the tool subscriber refuses ---- */
	stop(sub);
	sub = subscriber("--refuse 'svc-b maintenance window'", "/tmp/sub-b2.log");
	rc = ag_run(out, sizeof(out), -1,
		    "hugelivectl update --kernel /boot/bzImage --initrd %s --reuse-cmdline --append hugelive.gen=1 --timeout 30",
		    getenv("HUGELIVE_NEXT_INITRD"));
	hl_ok(rc == AG_EXIT_CANCELLED && ag_contains(out, "svc-b maintenance window"),
	      "round 2: hugelivectl subscribe --refuse cancels: exit %d, %s", rc, ag_line_with(out, "refused"));
	hl_ok(kexec_loaded() == 0, "round 2: kernel unloaded (kexec_loaded=%lld)", kexec_loaded());
	hl_ok(ag_relay(&a, "resumed", 30000), "round 2: svc-a (ready this time) resumed");
	rc = ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "outgoing_sessions", -1) == 2 && ag_jis(out, "result", "cancelled"),
	      "round 2: status: cancelled, 2 sessions");
	same = hl_pattern_verify(b.p + AG_HDR, b.size - AG_HDR, AG_HDR, B_SEED, &mm);
	hl_ok(same, "round 2: svc-b memory intact (first bad 0x%llx)", (unsigned long long)mm.offset);

	/* ---- round 3: everyone ready: the real update ---- */
	stop(sub);
	subscriber("", "/tmp/sub-b3.log");
	ag_update(60);
}

/* Run by hugelivectl retrieve: the file is on fd 3. */
static int verify_main(int token)
{
	struct ag_mem m;
	char what[64];

	ag_rep_fd = 1;
	snprintf(what, sizeof(what), "svc-b token %d (fd 3 from hugelivectl retrieve)", token);
	return ag_mem_verify(3, what, true, token == 1 ? B_SIZE : AG_TOKEN2_SIZE,
			     B_SEED + (uint64_t)token - 1, &m) ? 0 : 1;
}

static void gen1(void)
{
	struct ag_child a;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && ag_jint(out, "incoming_sessions", -1) == 2,
	      "status: boot updated, 2 incoming sessions");

	ag_fork(&a, "svc-a", ag_svc_claim, &svc_a);
	rc = ag_wait_child(&a, 120000);
	hl_ok(rc == 0, "svc-a got both tokens back (exit %d)", rc);

	rc = ag_run(out, sizeof(out), -1, "hugelivectl retrieve --session svc-b --token 1 -- %s --verify 1", self);
	hl_ok(rc == 0 && ag_relay_text(out) >= 4, "svc-b: hugelivectl retrieve token 1 -- verifier (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl retrieve --session svc-b --token 2 --finish -- %s --verify 2",
		    self);
	hl_ok(rc == 0 && ag_relay_text(out) >= 4, "svc-b: hugelivectl retrieve token 2 --finish -- verifier (exit %d)",
	      rc);
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0 && ag_jint(out, "outgoing_sessions", -1) == 0,
	      "status: no session left (in %lld, out %lld)", ag_jint(out, "incoming_sessions", -1),
	      ag_jint(out, "outgoing_sessions", -1));
	hl_ok(hl_hp(HL_2M, "free_hugepages") == 32, "2M pool whole again (free %lld of 32)",
	      hl_hp(HL_2M, "free_hugepages"));
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--verify"))
		return verify_main(atoi(argv[2]));
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0)
		snprintf(self, sizeof(self), "/scenarios/agent-refuse");
	if (hl_gen() == 0)
		gen0();
	else
		gen1();
	return hl_exit();
}
