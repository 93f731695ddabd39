/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the agent's persistence and crash recovery (issue 9
 * items 2, 7, 8, 9): hugelived on hugelive-fakeluo, each scenario in a fresh
 * fake "kernel", uid switching and fault injection ($HUGELIVE_FAKE_FAULTS).
 * usage: test_persist BINDIR   (must run as root: uses setuid children)
 */
#include "tap.h"
#include "harness.h"
#include "hugelive.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define G_SESSIONS 9
#define G_FDS 128

static void glabel(char *out, size_t len, int s, int t)
{
	int n = snprintf(out, len, "sess%d-token%03d-", s, t);

	/* 128 characters, the longest label the protocol takes */
	for (; n < 128 && (size_t)n < len - 1; n++)
		out[n] = (char)('a' + (n + s + t) % 26);
	out[n] = '\0';
}

static int g_failed; /* requests that did not get ok, seen by the child */

/* One uid fills its quota side: 9 sessions x 128 fds with 128-char labels. */
static int nobody_fill(void)
{
	hl_client *c;
	int bad = 0;

	if (hl_connect(h_sock, &c) < 0)
		return 250;
	for (int s = 0; s < G_SESSIONS; s++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", s);
		if (hl_create_session(c, name) != 0) {
			bad++;
			continue;
		}
		for (int t = 1; t <= G_FDS; t++) {
			char lbl[160], content[32];
			int fd;

			glabel(lbl, sizeof(lbl), s, t);
			snprintf(content, sizeof(content), "g%d-%d", s, t);
			fd = h_make_memfd(content);
			if (fd < 0 || hl_preserve_fd(c, name, (uint64_t)t, fd, lbl) != 0)
				bad++;
			if (fd >= 0)
				close(fd);
		}
	}
	hl_disconnect(c);
	return bad > 200 ? 200 : bad;
}

/* After the update: labels and data of the first and last fd come back. */
static int nobody_check_labels(void)
{
	hl_client *c;
	int bad = 0;

	if (hl_connect(h_sock, &c) < 0)
		return 250;
	for (int s = 0; s < G_SESSIONS; s += G_SESSIONS - 1) {
		for (int t = 1; t <= G_FDS; t += G_FDS - 1) {
			char name[16], lbl[160], req[128], content[32], *rep = NULL;
			int fd = -1;
			struct json_object *o;

			snprintf(name, sizeof(name), "g%d", s);
			glabel(lbl, sizeof(lbl), s, t);
			snprintf(content, sizeof(content), "g%d-%d", s, t);
			snprintf(req, sizeof(req), "{\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d}", name, t);
			if (hl_call_json(c, req, -1, &rep, &fd) != 0) {
				bad |= 1;
				continue;
			}
			o = hl_json_parse(rep, strlen(rep));
			if (!o || !hl_jstr(o, "label") || strcmp(hl_jstr(o, "label"), lbl))
				bad |= 2;
			if (fd < 0 || !h_memfd_has(fd, content))
				bad |= 4;
			json_object_put(o);
			free(rep);
			if (fd >= 0)
				close(fd);
		}
	}
	hl_disconnect(c);
	return bad;
}

static bool report_has(struct json_object *s, const char *what)
{
	struct json_object *r;

	return s && json_object_object_get_ex(s, "report", &r) && r &&
	       strstr(json_object_to_json_string(r), what);
}

/* Item 2: the state outgrows its memfd; nothing may be lost. */
static void t_growth(void)
{
	struct json_object *s;
	char err[512];
	int64_t t0 = hl_now_ms();

	h_fresh_kernel();
	ok(h_agent_start(NULL) == 0, "growth: agent starts");
	g_failed = h_as_nobody(nobody_fill);
	ok(g_failed == 0, "growth: uid %d stores %d sessions x %d fds with 128-char labels, every request ok "
	   "(%d not ok, %lld ms)", NOBODY, G_SESSIONS, G_FDS, g_failed, (long long)(hl_now_ms() - t0));
	ok(h_log_has("state gr(ew|ows) to [0-9]+ bytes"), "growth: the agent logged the state growth");
	ok(!h_log_has("File exists"), "growth: no \"File exists\" when the state grows");
	ok(h_kill9_agent(), "growth: kill -9 the agent");
	ok(h_agent_start(NULL) == 0, "growth: agent restarts");
	s = h_status();
	ok(s && hl_jint(s, "outgoing_sessions", 0) == G_SESSIONS && !report_has(s, "adopted") &&
	   !report_has(s, "lost"), "growth: after kill -9 all %d sessions come back with their bookkeeping (%s)",
	   G_SESSIONS, s ? json_object_to_json_string(s) : "no status");
	json_object_put(s);
	ok(h_update(h_kernel(), 2000, err, sizeof(err)) == 0, "growth: root's update on the fake backend works (%s)",
	   err);
	sleep(1);
	ok(h_agent_start(NULL) == 0, "growth: agent starts in the new 'kernel'");
	s = h_status();
	ok(s && !strcmp(hl_jstr(s, "boot") ? hl_jstr(s, "boot") : "", "updated") &&
	   hl_jint(s, "incoming_sessions", 0) == G_SESSIONS && !report_has(s, "lost"),
	   "growth: the update carried all %d sessions", G_SESSIONS);
	json_object_put(s);
	ok(h_as_nobody(nobody_check_labels) == 0, "growth: labels and data of the first and last fds are intact");
}

/* Item 8: the claim deadline survives any number of agent restarts. */
static void t_claim_restarts(void)
{
	hl_client *c;
	char err[256];
	int fd = h_make_memfd("claim-data");
	struct json_object *s;
	int64_t t0;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "claim: agent up"))
		return;
	ok(hl_create_session(c, "c1") == 0 && hl_preserve_fd(c, "c1", 1, fd, "x") == 0, "claim: session c1 preserved");
	hl_disconnect(c);
	close(fd);
	ok(h_update(h_kernel(), 2000, err, sizeof(err)) == 0, "claim: fake update (%s)", err);
	sleep(1);
	t0 = hl_now_ms();
	ok(h_agent_start("--claim-timeout 6") == 0, "claim: agent starts after the update with --claim-timeout 6");
	ok(h_kill9_agent() && h_agent_start(NULL) == 0, "claim: kill -9, restart (default claim timeout)");
	ok(h_kill9_agent() && h_agent_start(NULL) == 0, "claim: kill -9, restart again");
	s = h_status();
	ok(s && hl_jint(s, "claim_remaining_s", -1) >= 0 && hl_jint(s, "claim_remaining_s", -1) <= 6,
	   "claim: after two restarts the deadline is still pending (%lld s left)",
	   (long long)(s ? hl_jint(s, "claim_remaining_s", -1) : -1));
	json_object_put(s);
	while (hl_now_ms() - t0 < 7500)
		usleep(100000);
	s = h_status();
	ok(report_has(s, "unclaimed") && !strstr(h_fake_dump(), "hl:0:c1"),
	   "claim: the unclaimed session is finished at the original deadline");
	json_object_put(s);
}

/* Item 7: a keeper killed with kill -9 is noticed and replaced. */
static void t_keeper_killed(void)
{
	hl_client *c;
	char *rep = NULL;
	int fd = h_make_memfd("keeper-data");
	pid_t kp, kp2 = -1;
	struct json_object *s;
	bool seen = false;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "keeper: agent up"))
		return;
	ok(hl_create_session(c, "k1") == 0 && hl_preserve_fd(c, "k1", 1, fd, "kept") == 0, "keeper: session k1 preserved");
	hl_disconnect(c);
	close(fd);
	kp = h_keeper_pid();
	ok(kp > 0 && kill(kp, SIGKILL) == 0 && h_wait_gone(kp, 3000), "keeper: kill -9 the keeper (pid %d)", (int)kp);
	for (int i = 0; i < 300 && !seen; i++) {
		usleep(10000);
		kp2 = h_keeper_pid();
		seen = kp2 > 0 && kp2 != kp;
	}
	ok(seen, "keeper: the agent starts a new keeper (pid %d) without any request", (int)kp2);
	s = h_status();
	ok(s && !strcmp(hl_jstr(s, "fd_store") ? hl_jstr(s, "fd_store") : "", "keeper") &&
	   hl_jint(s, "keeper_restarts", 0) == 1, "keeper: status reports the keeper restart (%s)",
	   s ? json_object_to_json_string(s) : "");
	json_object_put(s);
	ok(h_kill9_agent(), "keeper: then kill -9 the agent");
	ok(strstr(h_fake_dump(), "hl:0:k1 out files 1") != NULL, "keeper: the session survives in the 'kernel'");
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "keeper: agent restarts"))
		return;
	ok(hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) == 0 && rep && strstr(rep, "\"label\":\"kept\""),
	   "keeper: the session and its bookkeeping come back from the new keeper");
	free(rep);
	hl_disconnect(c);
}

static bool dump_has(const char *what)
{
	return strstr(h_fake_dump(), what) != NULL;
}

/* Item 2: a request whose state write fails fails and changes nothing. */
static void t_rollback(void)
{
	hl_client *c;
	char *rep = NULL;
	int fd1 = h_make_memfd("rb-1"), fd2 = h_make_memfd("rb-2"), rc;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "rollback: agent up"))
		return;
	ok(hl_create_session(c, "rb") == 0 && hl_preserve_fd(c, "rb", 1, fd1, "one") == 0, "rollback: rb with token 1");
	h_set_faults("state:preserve 5\n");
	rc = hl_preserve_fd(c, "rb", 2, fd2, "two");
	ok(rc == -EIO && strstr(hl_last_error(c), "rolled back"), "rollback: preserve whose state write fails -> EIO "
	   "(%s)", hl_last_error(c));
	ok(dump_has("session hl:0:rb out files 1\n"), "rollback: ... and the kernel did not get the file");
	ok(h_log_has("preserve rolled back: the agent state could not be saved"), "rollback: ... with a log line");
	h_set_faults("state:create 28\n");
	rc = hl_create_session(c, "rb2");
	ok(rc == -ENOSPC && !dump_has("hl:0:rb2"), "rollback: create whose state write fails -> ENOSPC, no session "
	   "left in the kernel (%s)", hl_last_error(c));
	h_set_faults("state:destroy 5\n");
	ok(hl_destroy_session(c, "rb") == -EIO && dump_has("session hl:0:rb out files 1\n"),
	   "rollback: destroy whose state write fails -> EIO, the session stays");
	h_set_faults(NULL);
	ok(hl_preserve_fd(c, "rb", 2, fd2, "two") == 0 && dump_has("session hl:0:rb out files 1 2\n"),
	   "rollback: with the fault gone the same preserve works");
	hl_disconnect(c);
	if (!ok(h_kill9_agent() && h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "rollback: kill -9, restart"))
		return;
	ok(hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) == 0 && rep && strstr(rep, "\"label\":\"one\"") &&
	   strstr(rep, "\"label\":\"two\"") && !strstr(rep, "rb2"),
	   "rollback: the saved state matches what the clients were told");
	free(rep);
	hl_disconnect(c);
	close(fd1);
	close(fd2);
}

int main(int argc, char **argv)
{
	const char *only = getenv("HL_TEST_ONLY");

	if (argc != 2) {
		fprintf(stderr, "usage: test_persist BINDIR\n");
		return 2;
	}
	if (getuid() != 0) {
		printf("1..0 # SKIP needs root (setuid children)\n0 passed, 0 failed\n");
		return 0;
	}
	if (h_init(argv[1], "persist") < 0)
		return 1;
#define RUN(fn) do { if (!only || strstr(only, #fn)) fn(); } while (0)
	RUN(t_growth);
	RUN(t_rollback);
	RUN(t_claim_restarts);
	RUN(t_keeper_killed);
	h_stop_all();
	usleep(100000);
	ok(h_logs_clean(), "no sanitizer reports in the logs (%s)", h_dir);
	{
		int rc = tap_done();

		if (!rc)
			h_cleanup();
		return rc;
	}
}
