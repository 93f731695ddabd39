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
#include <sys/select.h>
#include <sys/stat.h>
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
	ok(h_safe_kill(kp, SIGKILL) == 0 && h_wait_gone(kp, 3000), "keeper: kill -9 the keeper (pid %d)", (int)kp);
	for (int i = 0; i < 300 && !seen; i++) {
		usleep(10000);
		kp2 = h_keeper_pid();
		seen = kp2 > 0 && kp2 != kp;
	}
	ok(seen, "keeper: the agent starts a new keeper (pid %d) without any request", (int)kp2);
	/*
	 * A new keeper process exists before the agent has connected to it
	 * and handed it the fds: wait (up to 10 s) for status to say so.
	 * Killing the agent before that is the window in which both holders
	 * are gone (under load it was hit: the session was lost).
	 */
	for (int i = 0; i < 1000; i++) {
		s = h_status();
		if (s && hl_jstr(s, "fd_store") && !strcmp(hl_jstr(s, "fd_store"), "keeper"))
			break;
		json_object_put(s);
		s = NULL;
		usleep(10000);
	}
	if (!s)
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

/*
 * The harness itself: an agent that does not answer status when the next
 * test starts a fresh 'kernel' (here its socket path is gone; in CI it was
 * slow) must still be stopped. Left alive, it re-created the keeper that
 * h_fresh_kernel killed, filled it with its connection to the old fake
 * kernel, and the next agent took that dead connection from the keeper:
 * preserve and kexec_file_load failed with EPIPE (CI, test_kimage).
 */
static void t_harness_stray_agent(void)
{
	hl_client *c;
	int64_t old = -1;
	int fd;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && (old = h_agent_pid()) > 1, "stray: agent up"))
		return;
	unlink(h_sock); /* status can no longer reach it */
	h_fresh_kernel();
	ok(h_wait_gone((pid_t)old, 100), "stray: h_fresh_kernel stopped the agent (pid %lld) it could not ask",
	   (long long)old);
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "stray: the next agent up"))
		return;
	fd = h_make_memfd("stray");
	ok(hl_create_session(c, "s1") == 0 && hl_preserve_fd(c, "s1", 1, fd, "x") == 0,
	   "stray: the next agent's device works (%s)", hl_last_error(c));
	close(fd);
	hl_disconnect(c);
}

/* fd_store of the agent's status becomes want within timeout_ms: how long it took, or -1 */
static int64_t wait_fd_store(const char *want, int timeout_ms)
{
	int64_t t0 = hl_now_ms();

	while (hl_now_ms() - t0 < timeout_ms) {
		struct json_object *s = h_status();
		bool hit = s && hl_jstr(s, "fd_store") && !strcmp(hl_jstr(s, "fd_store"), want);

		json_object_put(s);
		if (hit)
			return hl_now_ms() - t0;
		usleep(20000);
	}
	return -1;
}

/*
 * A keeper that cannot be re-created at once (its socket path is taken:
 * here by a directory) is tried again by the agent itself, with no request,
 * until it can; the sessions then survive a kill -9 of the agent. Before
 * the retry the agent stayed without a keeper until the next preserve.
 */
static void t_keeper_respawn_blocked(void)
{
	hl_client *c;
	char *rep = NULL, moved[128];
	int fd = h_make_memfd("keeper-blocked");
	int64_t dt;
	pid_t kp;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "keeper retry: agent up"))
		return;
	ok(hl_create_session(c, "k2") == 0 && hl_preserve_fd(c, "k2", 1, fd, "kept-blocked") == 0,
	   "keeper retry: session k2 preserved");
	hl_disconnect(c);
	close(fd);
	snprintf(moved, sizeof(moved), "%s.moved", h_keeper);
	kp = h_keeper_pid();
	ok(rename(h_keeper, moved) == 0 && mkdir(h_keeper, 0700) == 0,
	   "keeper retry: the keeper's socket path is taken by a directory");
	ok(h_safe_kill(kp, SIGKILL) == 0 && h_wait_gone(kp, 3000), "keeper retry: kill -9 the keeper (pid %d)", (int)kp);
	dt = -1;
	for (int i = 0; i < 500 && dt < 0; i++) {
		if (h_log_has("will try again to re-create the fd keeper in 1000 ms"))
			dt = i;
		else
			usleep(20000);
	}
	ok(dt >= 0, "keeper retry: the agent cannot re-create it and says it will try again");
	ok(wait_fd_store("keeper (not connected)", 2000) >= 0, "keeper retry: status says 'keeper (not connected)'");
	ok(rmdir(h_keeper) == 0, "keeper retry: the path is free again");
	unlink(moved);
	dt = wait_fd_store("keeper", 40000);
	ok(dt >= 0, "keeper retry: the agent re-creates the keeper by itself, with no request (%lld ms)",
	   (long long)dt);
	ok(h_kill9_agent(), "keeper retry: then kill -9 the agent");
	ok(strstr(h_fake_dump(), "hl:0:k2 out files 1") != NULL, "keeper retry: the session survives in the 'kernel'");
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "keeper retry: agent restarts"))
		return;
	ok(hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) == 0 && rep && strstr(rep, "\"label\":\"kept-blocked\""),
	   "keeper retry: the session and its label come back from the re-created keeper");
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

static const char *last_result(struct json_object *s, int64_t *id)
{
	struct json_object *lu;

	if (!s || !json_object_object_get_ex(s, "last_update", &lu) || !lu)
		return "";
	if (id)
		*id = hl_jint(lu, "id", 0);
	return hl_jstr(lu, "result") ? hl_jstr(lu, "result") : "";
}

/* One root session with one file, in a fresh 'kernel' with a running agent. */
static bool setup_one(const char *name)
{
	hl_client *c;
	int fd = h_make_memfd("one-data");
	bool good;

	h_fresh_kernel();
	if (h_agent_start(NULL) != 0 || hl_connect(h_sock, &c) != 0)
		return false;
	good = hl_create_session(c, name) == 0 && hl_preserve_fd(c, name, 1, fd, "one") == 0;
	hl_disconnect(c);
	close(fd);
	return good;
}

static char tool_cmd[512];

static int run_tool_update(void)
{
	return h_tool(tool_cmd);
}

/*
 * Subscriber that never answers prepare; when the agent goes away it
 * reconnects, subscribes again and reports a resume on wfd ('P' prepare,
 * 'R' resume).
 */
static void quiesced_subscriber(int wfd)
{
	hl_client *c;
	struct hl_event ev;

	if (hl_connect(h_sock, &c) < 0 || hl_subscribe(c) < 0 || write(wfd, "S", 1) != 1)
		_exit(10);
	for (;;) {
		int rc = hl_wait_event(c, 30000, &ev);

		if (rc == -ETIMEDOUT || rc == -EAGAIN)
			_exit(11);
		if (rc < 0) {
			/* the agent died: come back like a service that was quiesced */
			hl_disconnect(c);
			c = NULL;
			for (int i = 0; i < 300 && !c; i++) {
				if (hl_connect(h_sock, &c) < 0 || hl_subscribe(c) < 0) {
					if (c)
						hl_disconnect(c);
					c = NULL;
					usleep(50000);
				}
			}
			if (!c)
				_exit(12);
			continue;
		}
		if (ev.type == HL_EVENT_PREPARE && write(wfd, "P", 1) != 1)
			_exit(13);
		if (ev.type == HL_EVENT_RESUME) {
			if (write(wfd, "R", 1) != 1)
				_exit(14);
			_exit(0);
		}
	}
}

static bool read_ch(int fd, char want, int ms)
{
	char ch = 0;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	fd_set rs;

	for (;;) {
		FD_ZERO(&rs);
		FD_SET(fd, &rs);
		if (select(fd + 1, &rs, NULL, NULL, &tv) <= 0 || read(fd, &ch, 1) != 1)
			return false;
		if (ch == want)
			return true;
	}
}

/* Item 9: the agent dies during the barrier. */
static void t_crash_barrier(void)
{
	int p[2], st, tst;
	pid_t sub, tl;
	struct json_object *s;
	int64_t id = 0;

	ok(setup_one("cb"), "crash in barrier: root session cb");
	if (pipe(p) < 0)
		return;
	sub = fork();
	if (sub == 0) {
		close(p[0]);
		quiesced_subscriber(p[1]);
	}
	close(p[1]);
	ok(read_ch(p[0], 'S', 5000), "crash in barrier: a subscriber is connected");
	snprintf(tool_cmd, sizeof(tool_cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 60",
		 h_kernel());
	tl = fork();
	if (tl == 0)
		_exit(run_tool_update());
	ok(read_ch(p[0], 'P', 10000) && strstr(h_fake_dump(), "loaded 1"),
	   "crash in barrier: the subscriber got prepare, the new kernel is loaded");
	ok(h_kill9_agent(), "crash in barrier: kill -9 the agent during the barrier");
	waitpid(tl, &tst, 0);
	ok(WIFEXITED(tst) && WEXITSTATUS(tst) == 3, "crash in barrier: hugelivectl update exits 3, not success (%d)",
	   WIFEXITED(tst) ? WEXITSTATUS(tst) : -1);
	ok(h_agent_start(NULL) == 0, "crash in barrier: agent restarts");
	ok(strstr(h_fake_dump(), "loaded 0") != NULL, "crash in barrier: the restarted agent unloaded the new kernel");
	s = h_status();
	ok(!strcmp(last_result(s, &id), "interrupted") && id == 1,
	   "crash in barrier: status records update 1 as interrupted (%s)", s ? json_object_to_json_string(s) : "");
	json_object_put(s);
	ok(read_ch(p[0], 'R', 10000), "crash in barrier: the quiesced client, reconnected, gets resume");
	waitpid(sub, &st, 0);
	close(p[0]);
	ok(strstr(h_fake_dump(), "session hl:0:cb out files 1") != NULL, "crash in barrier: the session is intact");
}

/* Item 2: a state that cannot be saved at the kexec is its own failure category. */
static void t_kexec_state_fails(void)
{
	char cmd[512];
	struct json_object *s;

	ok(setup_one("ks"), "kexec state: root session ks");
	h_set_faults("state:kexec 5\n");
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 5", h_kernel());
	{
		int rc = h_tool(cmd);

		ok(rc == 6, "kexec state: hugelivectl update exits 6 (after the barrier), not 5 (preflight): %d", rc);
	}
	h_set_faults(NULL);
	s = h_status();
	ok(!strcmp(last_result(s, NULL), "cancelled") && strstr(h_fake_dump(), "loaded 0") &&
	   strstr(h_fake_dump(), "hl:0:ks out files 1"), "kexec state: cancelled, kernel unloaded, session intact");
	json_object_put(s);
}

static int nobody_keep_incoming(void)
{
	hl_client *c;
	int fd = h_make_memfd("in-data"), bad = 0;

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	if (hl_create_session(c, "inc") != 0 || hl_preserve_fd(c, "inc", 4, fd, "incoming-label") != 0)
		bad = 1;
	hl_disconnect(c);
	close(fd);
	return bad;
}

/* Item 9: reboot() fails: the for-kexec state must not stay. */
static void t_reboot_fails(void)
{
	char cmd[512], err[256], *rep = NULL;
	struct json_object *s;
	hl_client *c;
	int rc;

	h_fresh_kernel();
	ok(h_agent_start(NULL) == 0 && h_as_nobody(nobody_keep_incoming) == 0, "reboot fails: uid %d session inc", NOBODY);
	ok(h_update(h_kernel(), 2000, err, sizeof(err)) == 0, "reboot fails: first update (fake kexec) %s", err);
	sleep(1);
	ok(h_agent_start(NULL) == 0, "reboot fails: agent up in the new 'kernel', inc unclaimed (incoming)");
	h_set_faults("kexec-reboot 5\n");
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 5", h_kernel());
	rc = h_tool(cmd);
	ok(rc == 6, "reboot fails: hugelivectl update exits 6 (%d)", rc);
	h_set_faults(NULL);
	s = h_status();
	ok(!strcmp(last_result(s, NULL), "cancelled") && strstr(h_fake_dump(), "loaded 0"),
	   "reboot fails: update recorded as cancelled, kernel unloaded");
	json_object_put(s);
	ok(h_kill9_agent() && h_agent_start(NULL) == 0, "reboot fails: then kill -9 and restart the agent");
	s = h_status();
	ok(s && hl_jint(s, "incoming_sessions", 0) == 1 && !report_has(s, "adopted") &&
	   !strcmp(last_result(s, NULL), "cancelled"),
	   "reboot fails: the saved state is the normal one: inc still incoming, outcome cancelled (%s)",
	   s ? json_object_to_json_string(s) : "");
	json_object_put(s);
	if (hl_connect(h_sock, &c) == 0) {
		ok(hl_call_json(c, "{\"op\":\"list\",\"all\":true}", -1, &rep, NULL) == 0 && rep &&
		   strstr(rep, "incoming-label"), "reboot fails: inc keeps its bookkeeping (label)");
		free(rep);
		hl_disconnect(c);
	}
}

/* Item 9: the agent dies between the first kexec event and the state write. */
static void t_ctl_reset(void)
{
	char cmd[512];
	struct json_object *s;
	int rc;

	ok(setup_one("cr"), "reset at kexec: root session cr");
	h_set_faults("state:kexec crash\n");
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 5", h_kernel());
	rc = h_tool(cmd);
	ok(rc == 3, "reset at kexec: hugelivectl does not count the reset after 'kexec' as success (exit %d)", rc);
	h_set_faults(NULL);
	ok(h_agent_start(NULL) == 0, "reset at kexec: agent restarts");
	s = h_status();
	ok(!strcmp(last_result(s, NULL), "interrupted") && strstr(h_fake_dump(), "loaded 0") &&
	   strstr(h_fake_dump(), "hl:0:cr out files 1"), "reset at kexec: interrupted, kernel unloaded, session intact");
	json_object_put(s);
}

static int nobody_handoff_setup(void)
{
	hl_client *c;
	int bad = 0;

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	for (int t = 1; t <= 2; t++) {
		char data[16];
		int fd;

		snprintf(data, sizeof(data), "ho-%d", t);
		fd = h_make_memfd(data);
		if ((t == 1 && hl_create_session(c, "ho") != 0) || hl_preserve_fd(c, "ho", (uint64_t)t, fd, data) != 0)
			bad |= t;
		close(fd);
	}
	hl_disconnect(c);
	return bad;
}

static int nobody_handoff(void)
{
	hl_client *c;
	int bad = 0, fd = -1;
	char *rep = NULL;

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	if (hl_retrieve_fd_self(c, "ho", 1, &fd) != 0 || !h_memfd_has(fd, "ho-1"))
		bad |= 1;
	if (fd >= 0)
		close(fd);
	if (hl_retrieve_fd_self(c, "ho", 9, &fd) != -ENOENT)
		bad |= 2;
	if (hl_call_json(c, "{\"op\":\"retrieve\",\"session\":\"rs\",\"token\":1,\"uid\":0,\"handoff\":true}",
			 -1, NULL, NULL) != -EPERM)
		bad |= 4;
	if (hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) != 0 || !rep ||
	    !strstr(rep, "\"token\":1,\"label\":\"ho-1\",\"hugetlb\":false,\"retrieved\":true"))
		bad |= 8;
	free(rep);
	if (hl_finish_session(c, "ho") != 0)
		bad |= 16;
	hl_disconnect(c);
	return bad;
}

/* Item 14: the client retrieves from its own session fd (charged to its cgroups). */
static void t_handoff(void)
{
	hl_client *c;
	char err[256];
	int fd = h_make_memfd("root-data"), rc;

	h_fresh_kernel();
	ok(h_agent_start(NULL) == 0 && h_as_nobody(nobody_handoff_setup) == 0 && hl_connect(h_sock, &c) == 0 &&
	   hl_create_session(c, "rs") == 0 && hl_preserve_fd(c, "rs", 1, fd, "r") == 0,
	   "handoff: uid %d session ho (tokens 1, 2), root session rs", NOBODY);
	hl_disconnect(c);
	close(fd);
	ok(h_update(h_kernel(), 2000, err, sizeof(err)) == 0, "handoff: fake update %s", err);
	sleep(1);
	ok(h_agent_start(NULL) == 0, "handoff: agent up in the new 'kernel'");
	rc = h_as_nobody(nobody_handoff);
	ok(rc == 0, "handoff: uid %d retrieves token 1 itself from its session fd (data intact), unknown token -> "
	   "ENOENT, root's session -> EPERM, bookkeeping marks it retrieved, finish works (mask %d)", NOBODY, rc);
	ok(h_log_has("session fd handed to pid [0-9]+ to retrieve token 1 itself") &&
	   !h_log_has("session ho: token 1 handed back"), "handoff: the agent did not retrieve the file itself");
	ok(!strstr(h_fake_dump(), "hl:65534:ho"), "handoff: no copy of the session fd stayed open in the client "
	   "(the finished session is gone)");
}

int main(int argc, char **argv)
{
	const char *only = getenv("HL_TEST_ONLY");
	int rc;

	rc = h_main_init(argc, argv, "test_persist", "persist");
	if (rc >= 0)
		return rc;
#define RUN(fn) do { if (!only || strstr(only, #fn)) fn(); } while (0)
	RUN(t_growth);
	RUN(t_rollback);
	RUN(t_claim_restarts);
	RUN(t_keeper_killed);
	RUN(t_keeper_respawn_blocked);
	RUN(t_crash_barrier);
	RUN(t_kexec_state_fails);
	RUN(t_reboot_fails);
	RUN(t_ctl_reset);
	RUN(t_handoff);
	RUN(t_harness_stray_agent);
	ok(h_finish(), "no sanitizer reports in the logs (%s)", h_dir);
	return h_exit(tap_done());
}
