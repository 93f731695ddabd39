// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=400 userspace=1 cmdline="hugepages=16"
 *
 * A client of another uid can neither retrieve, list in detail nor destroy
 * someone else's sessions, before and after an update (protocol.md, "Naming
 * and ownership": names are per uid; naming another uid is EPERM for
 * non-root; a non-root list shows only the caller's sessions).
 *
 * gen 0: hugelived (socket 0666 under /run/hugelive 0755). Root services
 *        "vault" and "common" (shmem memfds); a uid 1000 service (setuid in
 *        a forked child) named "common" too, with a hugetlb memfd: the same
 *        name in another namespace. A uid 1000 prober then tries, through
 *        the protocol: list (only its own session, also with all=true),
 *        list uid=0 (EPERM), retrieve/destroy/finish/create/preserve with
 *        uid=0 (EPERM), the same names in its own namespace (ENOENT),
 *        update (EPERM); and through the tool as uid 1000: `sessions --uid
 *        0`, `destroy --uid 0` (exit 1, EPERM), `sessions --all` (its own
 *        only). Root still sees all three sessions intact; update.
 * gen 1: the prober again (retrieve/finish/destroy of root's sessions:
 *        EPERM; by name in its namespace: ENOENT for vault, and its own
 *        "common" holds its own data), `hugelivectl retrieve --uid 0` and
 *        `finish --uid 0` as uid 1000 (exit 1, EPERM). Then each owner gets
 *        its memory back verified: the user its hugetlb "common", root
 *        "vault" and its "common".
 */
#include "lib/agent.h"

#define USER	1000

static struct ag_svc vault = {
	.session = "vault", .label = "root secrets", .size = 16ULL << 20, .seed = 0x7661756c74ULL, .uid = -1,
};
static struct ag_svc root_common = {
	.session = "common", .label = "root's common", .size = 8ULL << 20, .seed = 0x726f6f74ULL, .uid = -1,
};
static struct ag_svc user_common = {
	.session = "common", .label = "user's common", .huge = true, .size = 8ULL << 20, .seed = 0x75736572ULL,
	.uid = USER,
};

static char out[65536];

/* One request that must fail with errno want; the TAP line shows it. */
#define EXPECT(want, req) do {							\
	char d_[256], *o_ = d_;							\
	int r_ = ag_call(&c, -1, NULL, "%s", req);				\
	for (const char *i_ = req; *i_ && o_ < d_ + sizeof(d_) - 1; i_++)	\
		if (*i_ != '"')							\
			*o_++ = *i_;						\
	*o_ = 0;								\
	ag_ok(r_ == -(want), "uid %d: {%s} -> %s (want %s)", USER, d_,		\
	      ag_res(r_, &c), ag_errname(want));				\
} while (0)

/* The other-uid client: everything it must not be able to do. */
static int prober(void *arg)
{
	int gen = (int)(long)arg, rc, mfd;
	struct ag_client c = { .fd = -1 };
	char sess[512];

	if (!ag_ok(!ag_drop_to(USER), "prober: running as uid %d", USER))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "prober: connected (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"prober\"");
	ag_ok(!rc && ag_jint(c.reply, "uid", -1) == USER, "prober: the agent knows it as uid %lld",
	      ag_jint(c.reply, "uid", -1));

	rc = ag_call(&c, -1, NULL, "\"op\":\"list\"");
	snprintf(sess, sizeof(sess), "%s", c.reply);
	ag_ok(!rc && strstr(sess, "\"name\":\"common\"") && strstr(sess, "\"uid\":1000") &&
	      !strstr(sess, "\"uid\":0") && !strstr(sess, "vault") && !strstr(sess, "root"),
	      "prober: list shows only its own session (%s)", ag_res(rc, &c));
	rc = ag_call(&c, -1, NULL, "\"op\":\"list\",\"all\":true");
	ag_ok(!rc && !strstr(c.reply, "\"uid\":0") && !strstr(c.reply, "vault"),
	      "prober: list all=true still shows only its own session (%s)", ag_res(rc, &c));
	EXPECT(EPERM, "\"op\":\"list\",\"uid\":0");
	EXPECT(EPERM, "\"op\":\"retrieve\",\"session\":\"vault\",\"token\":1,\"uid\":0");
	EXPECT(EPERM, "\"op\":\"retrieve\",\"session\":\"common\",\"token\":1,\"uid\":0");
	EXPECT(ENOENT, "\"op\":\"retrieve\",\"session\":\"vault\",\"token\":1");
	EXPECT(EPERM, "\"op\":\"destroy\",\"session\":\"vault\",\"uid\":0");
	EXPECT(ENOENT, "\"op\":\"destroy\",\"session\":\"vault\"");
	EXPECT(EPERM, "\"op\":\"finish\",\"session\":\"vault\",\"uid\":0");
	EXPECT(EPERM, "\"op\":\"finish\",\"all\":true,\"uid\":0");
	EXPECT(EPERM, "\"op\":\"create\",\"session\":\"intruder\",\"uid\":0");
	EXPECT(EPERM, "\"op\":\"update\",\"kernel\":\"/boot/bzImage\",\"cmdline\":\"kho=on liveupdate=on\"");
	mfd = hl_memfd("intruder", 1 << 20, 0);
	rc = ag_call(&c, mfd, NULL, "\"op\":\"preserve\",\"session\":\"vault\",\"token\":9,\"uid\":0");
	ag_ok(rc == -EPERM, "uid %d: preserve into root's vault -> %s (want EPERM)", USER, ag_res(rc, &c));
	if (gen == 0) {
		/* its own outgoing session: retrieve is for after the update */
		EXPECT(EINVAL, "\"op\":\"retrieve\",\"session\":\"common\",\"token\":1");
	}
	close(mfd);
	ag_close(&c);
	return 0;
}

static int run_user(const char *cmd, int want_rc, const char *want_text)
{
	int rc = ag_run_as(USER, out, sizeof(out), -1, 60, "%s", cmd);

	hl_ok(rc == want_rc && (!want_text || ag_contains(out, want_text)),
	      "as uid %d: `%s` exits %d (want %d)%s%s", USER, cmd, rc, want_rc,
	      want_text ? ", says " : "", want_text ? want_text : "");
	return rc;
}

static void root_sees_all(const char *when)
{
	int rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions --all");

	hl_ok(rc == 0 && ag_contains(out, "vault") && ag_contains(out, "root's common") &&
	      ag_contains(out, "user's common[hugetlb]") && ag_contains(out, "\n1000 "),
	      "%s: root's sessions --all shows vault, root's common and uid 1000's common", when);
}

static void gen0(void)
{
	struct ag_child v, rc_, uc, p;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;
	ag_run(NULL, 0, -1, "ls -ld /run/hugelive /run/hugelive/agent.sock");
	ag_fork(&v, "vault", ag_svc_serve, &vault);
	hl_ok(ag_relay(&v, "ready", 60000), "root service vault is up");
	ag_fork(&rc_, "common", ag_svc_serve, &root_common);
	hl_ok(ag_relay(&rc_, "ready", 60000), "root service common is up");
	ag_fork(&uc, "user-common", ag_svc_serve, &user_common);
	hl_ok(ag_relay(&uc, "ready", 60000), "uid 1000 service common (hugetlb) is up: same name, its own namespace");
	root_sees_all("gen 0");

	ag_fork(&p, "prober", prober, (void *)0L);
	rc = ag_wait_child(&p, 60000);
	hl_ok(rc == 0, "prober done (exit %d)", rc);

	run_user("hugelivectl sessions --uid 0", AG_EXIT_FAIL, "EPERM");
	run_user("hugelivectl destroy --session vault --uid 0", AG_EXIT_FAIL, "EPERM");
	run_user("hugelivectl destroy --session vault", AG_EXIT_FAIL, "ENOENT");
	rc = run_user("hugelivectl sessions --all", 0, "user's common");
	hl_ok(!ag_contains(out, "vault") && !ag_contains(out, "root's common"),
	      "as uid %d: sessions --all does not show root's sessions", USER);
	run_user("hugelivectl update --kernel /boot/bzImage --append 'kho=on liveupdate=on'", AG_EXIT_FAIL,
		 "needs root");

	root_sees_all("after the probes");
	rc = ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "outgoing_sessions", -1) == 3, "status: 3 outgoing sessions intact (got %lld)",
	      ag_jint(out, "outgoing_sessions", -1));
	ag_update(60);
}

static void gen1(void)
{
	struct ag_child p, v, rc_, uc;
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	root_sees_all("gen 1");

	ag_fork(&p, "prober", prober, (void *)1L);
	rc = ag_wait_child(&p, 60000);
	hl_ok(rc == 0, "prober done (exit %d)", rc);
	run_user("hugelivectl retrieve --session vault --token 1 --uid 0 -- true", AG_EXIT_FAIL, "EPERM");
	run_user("hugelivectl retrieve --session vault --token 1 -- true", AG_EXIT_FAIL, "ENOENT");
	run_user("hugelivectl finish --session vault --uid 0", AG_EXIT_FAIL, "EPERM");
	run_user("hugelivectl sessions --uid 0", AG_EXIT_FAIL, "EPERM");
	root_sees_all("after the probes");

	ag_fork(&uc, "user-common", ag_svc_claim, &user_common);
	rc = ag_wait_child(&uc, 60000);
	hl_ok(rc == 0, "uid 1000 got its own common back (exit %d)", rc);
	ag_fork(&v, "vault", ag_svc_claim, &vault);
	rc = ag_wait_child(&v, 60000);
	hl_ok(rc == 0, "root got vault back intact (exit %d)", rc);
	ag_fork(&rc_, "common", ag_svc_claim, &root_common);
	rc = ag_wait_child(&rc_, 60000);
	hl_ok(rc == 0, "root got its common back intact (exit %d)", rc);
	rc = ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "incoming_sessions", -1) == 0, "status: no incoming session left");
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
