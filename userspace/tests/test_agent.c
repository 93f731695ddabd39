/* SPDX-License-Identifier: MIT */
/*
 * Integration tests: the real hugelived binary against hugelive-fakeluo,
 * driven through libhugelive, raw sockets and hugelivectl.
 * usage: test_agent BINDIR   (must run as root: uses setuid children)
 */
#include "harness.h"
#include "tap.h"
#include "kimgen.h"
#include "hugelive.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <sys/inotify.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

static const char status_req[] = "{\"v\":1,\"id\":1,\"op\":\"status\"}";


/*
 * Run fn(arg) in a child with uid/gid NOBODY that stays alive after fn
 * returned (what it holds stays open) until *release is closed. Returns the
 * pid after fn has returned; *result gets fn's return value.
 */
static pid_t nobody_hold(int (*fn)(void *), void *arg, int *release, int *result)
{
	int up[2], down[2];
	pid_t p;
	char r = 99;

	if (pipe(up) < 0 || pipe(down) < 0)
		return -1;
	p = fork();
	if (p == 0) {
		char ch;

		close(up[0]);
		close(down[1]);
		if (h_become(NOBODY) < 0)
			_exit(99);
		ch = (char)fn(arg);
		if (write(up[1], &ch, 1) != 1)
			_exit(98);
		if (read(down[0], &ch, 1) < 0)
			_exit(97);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	if (read(up[0], &r, 1) != 1)
		r = 99;
	close(up[0]);
	*release = down[1];
	*result = r;
	return p;
}

static void nobody_release(pid_t p, int release)
{
	close(release);
	waitpid(p, NULL, 0);
}

/* Milliseconds root needs for a status round trip. */
static int64_t status_ms(void)
{
	int64_t t0 = hl_now_ms();
	struct json_object *s = h_status();

	json_object_put(s);
	return s ? hl_now_ms() - t0 : -1;
}

/*
 * A TCP socket whose close() blocks: SO_LINGER 5 s and unsent data the
 * peer (kept open by the caller, *peer) never reads. Returns the socket.
 */
static int lingering_socket(int *peer, int *lsock)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct linger lg = { .l_onoff = 1, .l_linger = 5 };
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s, small = 4096;
	static char junk[65536];

	setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	*peer = accept(ls, NULL, NULL);
	*lsock = ls;
	hl_set_nonblock(s, true);
	while (send(s, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	return s;
}

/* arg: "status" or "preserve": pass a lingering TCP socket with that request. */
static int nobody_linger_attack(void *arg)
{
	const char *op = arg;
	int peer = -1, ls = -1, s = lingering_socket(&peer, &ls), a;
	char m[160];
	int n;

	if (s < 0 || peer < 0)
		return 1;
	if (!strcmp(op, "preserve")) {
		hl_client *c;

		if (hl_connect(h_sock, &c) < 0)
			return 2;
		hl_create_session(c, "lingertest");
		hl_disconnect(c);
		n = snprintf(m, sizeof(m), "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"lingertest\",\"token\":1}");
	} else {
		n = snprintf(m, sizeof(m), "{\"v\":1,\"id\":1,\"op\":\"status\"}");
	}
	a = h_raw_connect(0);
	if (a < 0 || hl_send_packet(a, m, (size_t)n, s, false) < 0)
		return 3;
	close(s); /* the agent holds the last reference now */
	/* keep peer (and so the unsent data) alive: the child lives on */
	usleep(200 * 1000);
	return 0;
}

static int nobody_bad_fds(void *arg)
{
	int *root_mfd = arg, bad = 0, p[2], ro, mine = h_make_memfd("mine");
	hl_client *c;
	char path[64];

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	if (hl_create_session(c, "fdcheck") != 0)
		bad |= 1;
	if (pipe(p) < 0 || hl_preserve_fd(c, "fdcheck", 1, p[0], NULL) != -EINVAL || !strstr(hl_last_error(c), "not a memfd"))
		bad |= 2;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mine);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0 || hl_preserve_fd(c, "fdcheck", 2, ro, NULL) != -EBADF || !strstr(hl_last_error(c), "read-write"))
		bad |= 4;
	if (hl_preserve_fd(c, "fdcheck", 3, *root_mfd, NULL) != -EPERM || !strstr(hl_last_error(c), "belongs to uid 0"))
		bad |= 8;
	if (hl_preserve_fd(c, "fdcheck", 4, mine, "own") != 0)
		bad |= 16;
	if (hl_destroy_session(c, "fdcheck") != 0)
		bad |= 32;
	hl_disconnect(c);
	return bad;
}

/* Issue 9 item 1: passed fds are checked, and closed off the event loop. */
static void t_passed_fds(void)
{
	static const char *const ops[] = { "status", "preserve" };
	int rel, res, rmfd = h_make_memfd("root-owned");
	pid_t p;

	for (size_t i = 0; i < HL_ARRAY_SIZE(ops); i++) {
		int64_t dt;

		p = nobody_hold(nobody_linger_attack, (void *)ops[i], &rel, &res);
		dt = status_ms();
		ok(res == 0 && dt >= 0 && dt < 1000,
		   "uid %d passes a lingering TCP socket with %s: root's status answers in %lld ms (< 1000)",
		   NOBODY, ops[i], (long long)dt);
		nobody_release(p, rel);
	}
	res = 0;
	p = nobody_hold(nobody_bad_fds, &rmfd, &rel, &res);
	nobody_release(p, rel);
	ok(res == 0, "preserve: pipe -> EINVAL, read-only memfd -> EBADF, root's memfd from uid %d -> EPERM, "
	   "own memfd -> ok (mask %d)", NOBODY, res);
	close(rmfd);
	{
		hl_client *c;

		ok(hl_connect(h_sock, &c) == 0 && hl_call_json(c, "{\"op\":\"destroy\",\"session\":\"lingertest\",\"uid\":65534}",
							    -1, NULL, NULL) == 0, "cleanup of uid %d's session", NOBODY);
		hl_disconnect(c);
	}
}


/* Issue 9 item 4: 256 connections of uid NOBODY, kept open by the child. */
static int conns[256];
static int nobody_flood(void *arg)
{
	int admitted = 0, refused_ok = 0;
	char msg[256];

	(void)arg;
	for (size_t i = 0; i < HL_ARRAY_SIZE(conns); i++)
		conns[i] = h_raw_connect(0);
	usleep(300 * 1000);
	for (size_t i = 0; i < HL_ARRAY_SIZE(conns); i++) {
		struct pollfd pf = { .fd = conns[i], .events = POLLIN };
		int rc;

		if (conns[i] < 0)
			continue;
		/* refused: the error reply is waiting (nothing sent, so no reset) */
		if (poll(&pf, 1, 0) == 1) {
			rc = h_raw_reply_msg(conns[i], msg, sizeof(msg));
			if (rc == EAGAIN && strstr(msg, "too many connections from uid 65534 (32)") && h_is_eof(conns[i]))
				refused_ok++;
			else
				printf("# connection %zu: reply %d (%s)\n", i, rc, msg);
			continue;
		}
		if (send(conns[i], status_req, strlen(status_req), 0) > 0 && h_raw_reply(conns[i]) == 0)
			admitted++;
	}
	printf("# uid %d: %d of %zu connections admitted, %d refused with EAGAIN\n", NOBODY, admitted,
	       HL_ARRAY_SIZE(conns), refused_ok);
	fflush(stdout);
	return admitted == 32 && refused_ok == (int)HL_ARRAY_SIZE(conns) - 32 ? 0 : 1;
}

static int other_uid_status(void)
{
	int s = h_raw_connect(0);

	return s >= 0 && send(s, status_req, strlen(status_req), 0) > 0 && h_raw_reply(s) == 0 ? 0 : 1;
}

static int nobody_idle(void)
{
	int idle = h_raw_connect(0), busy = h_raw_connect(0), sub = h_raw_connect(0), bad = 0;
	char msg[256];
	const char *subreq = "{\"v\":1,\"id\":1,\"op\":\"subscribe\"}";

	if (idle < 0 || busy < 0 || sub < 0)
		return 90;
	if (send(sub, subreq, strlen(subreq), 0) < 0 || h_raw_reply(sub) != 0)
		bad |= 1;
	for (int i = 0; i < 4; i++) {
		usleep(400 * 1000);
		if (send(busy, status_req, strlen(status_req), 0) < 0 || h_raw_reply(busy) != 0)
			bad |= 2;
	}
	/* 1.6 s: past the 1 s idle timeout */
	if (h_raw_reply_msg(idle, msg, sizeof(msg)) != ETIMEDOUT || !strstr(msg, "idle for 1 s") || !h_is_eof(idle))
		bad |= 4;
	if (send(sub, status_req, strlen(status_req), 0) < 0 || h_raw_reply(sub) != 0)
		bad |= 8;
	return bad;
}

static void t_limits(void)
{
	int rel, res, root[HL_ROOT_RESERVED_CLIENTS], okc = 0;
	pid_t p = nobody_hold(nobody_flood, NULL, &rel, &res);
	struct json_object *s;

	ok(res == 0, "uid %d: 32 connections admitted, the other 224 refused with EAGAIN \"too many connections "
	   "from uid 65534 (32)\"", NOBODY);
	s = h_status();
	ok(s != NULL, "root's status works while uid %d holds its connections", NOBODY);
	json_object_put(s);
	ok(h_as_uid(NOBODY - 1, other_uid_status) == 0, "another uid (%d) can still connect", NOBODY - 1);
	for (int i = 0; i < HL_ROOT_RESERVED_CLIENTS; i++) {
		root[i] = h_raw_connect(0);
		okc += root[i] >= 0 && send(root[i], status_req, strlen(status_req), 0) > 0 && h_raw_reply(root[i]) == 0;
	}
	ok(okc == HL_ROOT_RESERVED_CLIENTS, "root opens %d connections at once (%d served)", HL_ROOT_RESERVED_CLIENTS, okc);
	for (int i = 0; i < HL_ROOT_RESERVED_CLIENTS; i++)
		close(root[i]);
	nobody_release(p, rel);

	/* idle timeout: restart the agent with a 1 s timeout */
	ok(h_stop_agent(), "agent stops on SIGTERM");
	ok(h_agent_start("--idle-timeout 1") == 0, "agent restarts with --idle-timeout 1");
	{
		int rs = h_raw_connect(0);

		res = h_as_nobody(nobody_idle);
		ok(res == 0, "uid %d: idle connection dropped after 1 s with ETIMEDOUT; active and subscribed ones "
		   "kept (mask %d)", NOBODY, res);
		ok(rs >= 0 && send(rs, status_req, strlen(status_req), 0) > 0 && h_raw_reply(rs) == 0,
		   "root's idle connection is kept");
		close(rs);
	}
	ok(h_stop_agent(), "agent stops on SIGTERM");
	ok(h_agent_start(NULL) == 0, "agent restarts with the default idle timeout");
}


/* Soft "Max open files" of pid, or -1. */
static long nofile_soft(pid_t pid)
{
	struct rlimit rl;

	return prlimit(pid, RLIMIT_NOFILE, NULL, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* utime + stime of pid in clock ticks, or -1. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	while (dir && (d = readdir(dir)))
		n += d->d_name[0] != '.';
	if (dir)
		closedir(dir);
	return n;
}

/* Issue 9 item 5: the open file limit is raised at start; EMFILE on accept backs off. */
static void t_nofile(void)
{
	int64_t pid;
	int c[12], nc = 0;
	long t0, t1;
	struct rlimit low, orig;

	ok(h_stop_agent(), "agent stops on SIGTERM");
	ok(h_agent_start_pre("ulimit -Sn 64;", NULL) == 0, "agent starts with a soft open file limit of 64");
	pid = h_agent_pid();
	ok(pid > 1 && nofile_soft((pid_t)pid) >= 16384, "agent raised its soft open file limit to %ld (>= 16384)",
	   pid > 1 ? nofile_soft((pid_t)pid) : -1L);
	if (pid <= 1)
		return;
	/* leave the agent a handful of free fds, then connect more clients than that */
	prlimit((pid_t)pid, RLIMIT_NOFILE, NULL, &orig);
	low.rlim_cur = (rlim_t)count_fds((pid_t)pid) + 3;
	low.rlim_max = orig.rlim_max;
	ok(prlimit((pid_t)pid, RLIMIT_NOFILE, &low, NULL) == 0, "agent's soft limit lowered to %lu",
	   (unsigned long)low.rlim_cur);
	for (size_t i = 0; i < HL_ARRAY_SIZE(c); i++)
		if ((c[nc] = h_raw_connect(0)) >= 0)
			nc++;
	usleep(300 * 1000);
	t0 = cpu_ticks((pid_t)pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks((pid_t)pid);
	ok(t0 >= 0 && t1 - t0 < 20, "agent out of fds with %d connections pending uses %ld ticks of CPU in 1 s "
	   "(< 20 of %ld: no spinning)", nc, t1 - t0, sysconf(_SC_CLK_TCK));
	prlimit((pid_t)pid, RLIMIT_NOFILE, &orig, NULL);
	for (int i = 0; i < nc; i++)
		close(c[i]);
	{
		int64_t t = hl_now_ms();
		struct json_object *s = h_status();

		ok(s != NULL && hl_now_ms() - t < 3000, "with fds again the agent accepts (%lld ms)",
		   (long long)(hl_now_ms() - t));
		json_object_put(s);
	}
	ok(h_stop_agent() && h_agent_start(NULL) == 0, "agent restarted with the default limit");
}


/* Issue 9 item 6: 3 sessions x 128 fds with 128-char labels (> 64 KiB as one reply). */
static int nobody_big(void)
{
	hl_client *c;
	char label[HL_MAX_LABEL + 1], name[16];
	struct hl_session_info *ss = NULL;
	size_t n = 0, fds = 0, nbig = 0;
	int bad = 0;

	memset(label, 'L', HL_MAX_LABEL);
	label[HL_MAX_LABEL] = '\0';
	if (hl_connect(h_sock, &c) < 0)
		return 90;
	for (int s = 0; s < 3; s++) {
		snprintf(name, sizeof(name), "big%d", s);
		if (hl_create_session(c, name) != 0)
			bad |= 1;
		for (int k = 0; k < HL_MAX_TOKENS_PER_SESSION; k++) {
			int mfd = h_make_memfd("x");

			if (hl_preserve_fd(c, name, (uint64_t)k, mfd, label) != 0)
				bad |= 2;
			close(mfd);
		}
	}
	if (hl_list_sessions(c, &ss, &n) != 0)
		bad |= 4;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(ss[i].name, "big", 3)) {
			fds += ss[i].nfds;
			nbig++;
		}
	if (nbig != 3 || fds != 3 * HL_MAX_TOKENS_PER_SESSION)
		bad |= 8;
	hl_free_sessions(ss, n);
	hl_disconnect(c);
	return bad;
}

static int nobody_big_cleanup(void)
{
	hl_client *c;
	int bad = 0;
	char name[16];

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	for (int s = 0; s < 3; s++) {
		snprintf(name, sizeof(name), "big%d", s);
		bad |= hl_destroy_session(c, name) != 0;
	}
	hl_disconnect(c);
	return bad;
}

/* Run hugelivectl with args; its stdout (up to len) in out. Returns the exit code. */
static int tool_out(const char *args, char *out, size_t len)
{
	char cmd[1024];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "HUGELIVE_SOCKET=%s %s/hugelivectl %s 2>>%s/tool.log", h_sock, h_bindir, args, h_dir);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (n + 1 < len && (st = (int)fread(out + n, 1, len - 1 - n, f)) > 0)
		n += (size_t)st;
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void t_big_replies(void)
{
	static char out[1 << 20];
	struct json_object *o, *arr;
	size_t nbig = 0, fds = 0;
	int rc;

	rc = h_as_nobody(nobody_big);
	ok(rc == 0, "uid %d: 3 sessions x 128 fds with 128-char labels, listed back by libhugelive (mask %d)", NOBODY, rc);
	rc = tool_out("--json sessions --all", out, sizeof(out));
	o = json_tokener_parse(out);
	if (o && json_object_object_get_ex(o, "sessions", &arr))
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *s = json_object_array_get_idx(arr, i), *f;

			if (hl_jint(s, "uid", 0) == NOBODY && !strncmp(hl_jstr(s, "name") ? hl_jstr(s, "name") : "", "big", 3) &&
			    json_object_object_get_ex(s, "fds", &f)) {
				nbig++;
				fds += json_object_array_length(f);
			}
		}
	ok(rc == 0 && nbig == 3 && fds == 3 * HL_MAX_TOKENS_PER_SESSION,
	   "root's hugelivectl --json sessions --all: exit %d, %zu sessions and %zu fds of uid %d (%zu bytes)",
	   rc, nbig, fds, NOBODY, strlen(out));
	json_object_put(o);
	ok(h_tool("sessions --all") == 0, "root's hugelivectl sessions --all (table)");
	{
		hl_client *c;
		char *rep = NULL;

		ok(hl_connect(h_sock, &c) == 0 && hl_call_json(c, "{\"op\":\"list\",\"all\":true}", -1, &rep, NULL) == 0 &&
		   strlen(rep) < HL_MAX_MSG && strstr(rep, "\"more\":true") && strstr(rep, "\"next\":"),
		   "one list reply stays below 64 KiB and says more/next (%zu bytes)", rep ? strlen(rep) : 0);
		free(rep);
		hl_disconnect(c);
	}
	ok(h_as_nobody(nobody_big_cleanup) == 0, "uid %d destroys its big sessions", NOBODY);
}


static int update(const char *kernel, const char *cmdline, int timeout_ms, char *err, size_t errlen);
static pid_t start_subscriber(int mode, int *rfd);
static pid_t start_subscriber_uid(int mode, uid_t uid, int *rfd);

/* Update in a child process; its result is written to the returned pipe as an int. */
static int update_bg(const char *kernel, int timeout_ms, pid_t *pid)
{
	int p[2];

	if (pipe(p) < 0)
		return -1;
	*pid = fork();
	if (*pid == 0) {
		char err[512];
		int rc = update(kernel, "kho=on liveupdate=on", timeout_ms, err, sizeof(err));

		if (write(p[1], &rc, sizeof(rc)) != sizeof(rc))
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	return p[0];
}

static int read_rc(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int rc = 1;

	if (poll(&pf, 1, ms) != 1 || read(fd, &rc, sizeof(rc)) != sizeof(rc))
		rc = 1;
	close(fd);
	return rc;
}

static const char *kernel_for_caps;

static int dry_run(const char *kernel, bool force, char *err, size_t len)
{
	hl_client *c;
	char req[1024];
	int rc;

	if (hl_connect(h_sock, &c) < 0)
		return -ECONNREFUSED;
	snprintf(req, sizeof(req), "{\"op\":\"update\",\"kernel\":\"%s\",\"cmdline\":\"kho=on liveupdate=on\","
		 "\"dry_run\":true%s}", kernel, force ? ",\"force\":true" : "");
	rc = hl_call_json(c, req, -1, NULL, NULL);
	snprintf(err, len, "%s", hl_last_error(c));
	hl_disconnect(c);
	return rc;
}

/* Issue 9 item 3: who may veto, late subscribers, sessions that expect a barrier. */
static void t_barrier_rights(const char *kernel)
{
	int hold, other, rfd, st;
	pid_t hp, op, up;
	char ch = 0, err[512];
	int64_t t0;

	/* a late subscriber gets prepare at once; its refusal counts */
	hp = start_subscriber(1, &hold);
	rfd = update_bg(kernel, 5000, &up);
	usleep(300 * 1000);
	{
		hl_client *c;
		struct hl_event ev = { 0 };
		int rc;

		hl_connect(h_sock, &c);
		t0 = hl_now_ms();
		rc = hl_subscribe(c) == 0 ? hl_wait_event(c, 1500, &ev) : -1;
		ok(rc == 0 && ev.type == HL_EVENT_PREPARE && ev.update_id > 0,
		   "a client subscribing during the barrier gets prepare at once (%lld ms)", (long long)(hl_now_ms() - t0));
		ok(hl_refuse(c, ev.update_id, "late but firm") == 0, "... and may refuse");
		rc = read_rc(rfd, 3000);
		ok(rc == -ECANCELED, "... which cancels the update (%d)", rc);
		hl_disconnect(c);
	}
	ok(read(hold, &ch, 1) == 1 && ch == 'R', "the silent subscriber got resume");
	waitpid(hp, &st, 0);
	waitpid(up, &st, 0);
	close(hold);

	/* a uid that owns no session is told, not asked */
	hp = start_subscriber(1, &hold);
	op = start_subscriber_uid(3, NOBODY - 1, &other);
	rfd = update_bg(kernel, 1500, &up);
	ch = 0;
	ok(read(other, &ch, 1) == 1 && ch == 'P', "uid %d (no session) refusing gets EPERM \"owns no session\" (%c)",
	   NOBODY - 1, ch ? ch : '-');
	st = read_rc(rfd, 5000);
	ok(st == -ETIMEDOUT, "... and the update goes on (times out on root's silent subscriber: %d, not ECANCELED)", st);
	waitpid(hp, &st, 0);
	waitpid(op, &st, 0);
	waitpid(up, &st, 0);
	close(hold);
	close(other);

	/* root subscribed while s1 existed: s1 expects a barrier */
	ok(dry_run(kernel, false, err, sizeof(err)) == -ENOTCONN && strstr(err, "uid 0") && strstr(err, "expect a barrier"),
	   "no subscriber of the owner of s1 connected: update refused in preflight (%s)", err);
	ok(dry_run(kernel, true, err, sizeof(err)) == 0, "... unless forced (%s)", err);
	{
		hl_client *c;
		char *rep = NULL;

		ok(hl_connect(h_sock, &c) == 0 && hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) == 0 &&
		   strstr(rep, "\"name\":\"s1\"") && strstr(rep, "\"barrier\":true"), "list shows s1 with barrier: true");
		free(rep);
		hl_disconnect(c);
	}
}


/*
 * Child for t_redact: as uid NOBODY, owns a session, subscribes, answers
 * ready, and writes the reason of the resume it gets, then the
 * last_update.message its own status shows, to wfd ("reason\nmessage\n").
 */
static void redact_watcher(int wfd)
{
	hl_client *c;
	struct hl_event ev;
	char *rep = NULL, out[1200];
	struct json_object *o, *lu;
	const char *msg = "";

	if (h_become(NOBODY) < 0)
		_exit(9);
	if (hl_connect(h_sock, &c) < 0 || hl_create_session(c, "watcher") < 0 || hl_subscribe(c) < 0)
		_exit(10);
	if (write(wfd, "S", 1) != 1)
		_exit(11);
	for (;;) {
		if (hl_wait_event(c, 20000, &ev) < 0)
			_exit(12);
		if (ev.type == HL_EVENT_PREPARE)
			hl_ready(c, ev.update_id);
		else if (ev.type == HL_EVENT_RESUME)
			break;
	}
	if (hl_call_json(c, "{\"op\":\"status\"}", -1, &rep, NULL) < 0)
		_exit(13);
	o = hl_json_parse(rep, strlen(rep));
	if (o && json_object_object_get_ex(o, "last_update", &lu) && hl_jstr(lu, "message"))
		msg = hl_jstr(lu, "message");
	snprintf(out, sizeof(out), "%s\n%s\n%s\n", ev.text, msg,
		 o && json_object_object_get_ex(o, "last_update", &lu) &&
		 json_object_object_get_ex(lu, "public_message", NULL) ? "leaks-public-field" : "-");
	json_object_put(o);
	free(rep);
	if (write(wfd, out, strlen(out)) < 0 || hl_destroy_session(c, "watcher") < 0)
		_exit(14);
	hl_disconnect(c);
	_exit(0);
}

/*
 * Issue 9 item 10: a non-root client does not learn another client's name,
 * pid or refusal reason from its resume event or from last_update.
 */
static void t_redact(const char *kernel)
{
	int hold, wp[2], rfd, st, rc;
	pid_t hp, wpid, up;
	char buf[1400] = "", *reason, *msg, *field, *save = NULL;
	ssize_t n, got = 0;
	struct json_object *s, *lu;

	hp = start_subscriber(0, &hold); /* root: refuses "busy flushing" */
	if (pipe(wp) < 0)
		return;
	wpid = fork();
	if (wpid == 0) {
		close(wp[0]);
		redact_watcher(wp[1]);
	}
	close(wp[1]);
	ok(read(wp[0], buf, 1) == 1 && buf[0] == 'S', "uid %d with a session subscribed", NOBODY);
	rfd = update_bg(kernel, 5000, &up);
	rc = read_rc(rfd, 8000);
	ok(rc == -ECANCELED, "root's subscriber refuses: update cancelled (%d)", rc);
	{
		struct pollfd pf = { .fd = wp[0], .events = POLLIN };

		while (got < (ssize_t)sizeof(buf) - 1 && poll(&pf, 1, 5000) == 1 &&
		       (n = read(wp[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
			got += n;
		buf[got > 0 ? got : 0] = '\0';
	}
	reason = strtok_r(buf, "\n", &save);
	msg = strtok_r(NULL, "\n", &save);
	field = strtok_r(NULL, "\n", &save);
	diag("uid %d saw resume reason \"%s\", last_update.message \"%s\"", NOBODY, reason ? reason : "",
	     msg ? msg : "");
	ok(reason && !strcmp(reason, "a subscribed client refused the update"),
	   "uid %d's resume reason names no other client (\"%s\")", NOBODY, reason ? reason : "");
	ok(msg && !strcmp(msg, "a subscribed client refused the update"),
	   "uid %d's status: last_update.message is the public one (\"%s\")", NOBODY, msg ? msg : "");
	ok(field && !strcmp(field, "-"), "uid %d's last_update has no public_message/cause_uid fields (%s)", NOBODY,
	   field ? field : "");
	s = h_status();
	ok(s && json_object_object_get_ex(s, "last_update", &lu) && hl_jstr(lu, "message") &&
	   strstr(hl_jstr(lu, "message"), "refused: busy flushing") && strstr(hl_jstr(lu, "message"), "uid 0"),
	   "root's status keeps the full message (\"%s\")",
	   s && json_object_object_get_ex(s, "last_update", &lu) && hl_jstr(lu, "message") ? hl_jstr(lu, "message") : "");
	json_object_put(s);
	ok(waitpid(wpid, &st, 0) == wpid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "uid %d's watcher finished and destroyed its session (exit %d)", NOBODY, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	waitpid(hp, &st, 0);
	waitpid(up, &st, 0);
	close(hold);
	close(wp[0]);
}

/* Issue 9 item 11: uid 0 without CAP_SYS_BOOT may not update. */
static int root_without_cap_sys_boot(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	char err[512];
	int rc;

	if (syscall(SYS_capget, &h, d) < 0)
		return 90;
	d[CAP_SYS_BOOT / 32].effective &= ~(1u << (CAP_SYS_BOOT % 32));
	d[CAP_SYS_BOOT / 32].permitted &= ~(1u << (CAP_SYS_BOOT % 32));
	if (syscall(SYS_capset, &h, d) < 0)
		return 91;
	rc = dry_run(kernel_for_caps, false, err, sizeof(err));
	printf("# uid 0 without CAP_SYS_BOOT: update -> %d (%s)\n", rc, err);
	fflush(stdout);
	return rc == -EPERM && strstr(err, "CAP_SYS_BOOT") ? 0 : 1;
}

static void t_caps(const char *kernel)
{
	char err[512];

	kernel_for_caps = kernel;
	ok(h_as_uid(0, root_without_cap_sys_boot) == 0, "uid 0 without CAP_SYS_BOOT: update -> EPERM \"needs CAP_SYS_BOOT\"");
	ok(dry_run(kernel, true, err, sizeof(err)) == 0, "uid 0 with CAP_SYS_BOOT may (%s)", err);
}

/* libhugelive: a subscribed handle with hl_set_reconnect() survives an agent restart. */
static void t_reconnect(void)
{
	hl_client *c;
	struct hl_event ev = { 0 };
	struct json_object *s;
	int rc;

	c = NULL;
	if (!ok(hl_connect(h_sock, &c) == 0 && hl_set_reconnect(c, 10000) == 0 && hl_subscribe(c) == 0,
		"subscribe with hl_set_reconnect(10 s)")) {
		if (c)
			hl_disconnect(c);
		return;
	}
	ok(h_stop_agent() && h_agent_start(NULL) == 0, "agent restarted");
	rc = hl_wait_event(c, 10000, &ev);
	ok(rc == 0 && ev.type == HL_EVENT_RECONNECTED, "hl_wait_event: HL_EVENT_RECONNECTED (%d, %s)", rc, ev.text);
	s = h_status();
	ok(s && hl_jint(s, "subscribers", 0) == 1, "the new agent counts the handle as subscribed (%lld)",
	   s ? (long long)hl_jint(s, "subscribers", 0) : -1LL);
	json_object_put(s);
	ok(hl_create_session(c, "recon") == 0 && hl_destroy_session(c, "recon") == 0, "the handle makes calls again");
	hl_disconnect(c);
}

/* Issue 9 item 3: root's --force goes through an owner's refusal, logged. */
static void t_force(const char *kernel)
{
	char cmd[1024], grep[512];
	int rfd, st, rc;
	pid_t p = start_subscriber_uid(4, NOBODY, &rfd);

	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 5", kernel);
	ok(h_tool(cmd) == 4, "uid %d owns a session and refuses: hugelivectl update -> exit 4 (cancelled)", NOBODY);
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --timeout 5 --force", kernel);
	rc = h_tool(cmd);
	ok(rc == 0, "hugelivectl update --force goes through the refusal (fake kexec, exit %d)", rc);
	waitpid(p, &st, 0);
	close(rfd);
	snprintf(grep, sizeof(grep), "grep -q 'forced by pid' %s && grep -q 'refused (busy flushing); forced: going on' %s",
		 h_alog, h_alog);
	ok(system(grep) == 0, "the agent logged the forced update and the ignored refusal");
	ok(h_agent_start(NULL) == 0, "agent starts after the forced update");
}

/* ---- scenarios ---------------------------------------------------------- */

/*
 * b26f6d7: the kernel's memfd handler takes any shmem file without a link
 * (memfd_luo_can_preserve), and a memfd retrieved after an update is one
 * without the "memfd:" name. The agent must take it too (it refused it
 * with EINVAL "not a memfd" before), and still refuse a linked shmem file.
 * An O_TMPFILE on /dev/shm stands for the retrieved memfd here.
 */
static void t_unnamed_shmem(void)
{
	struct statfs sfs;
	hl_client *c;
	char link[128] = "", path[64];
	int tf, named;
	ssize_t n;

	if (statfs("/dev/shm", &sfs) < 0 || (unsigned long)sfs.f_type != 0x01021994 /* TMPFS_MAGIC */) {
		diag("not run (not counted): /dev/shm is not a tmpfs here, no O_TMPFILE shmem file to pass");
		return;
	}
	tf = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	named = open("/dev/shm/hugelive-test-named", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tf);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (hl_connect(h_sock, &c) < 0 || hl_create_session(c, "unnamed") != 0) {
		ok(0, "connect and create a session");
		ok(0, "(not run)");
		return;
	}
	ok(tf >= 0 && ftruncate(tf, 65536) == 0 && hl_preserve_fd(c, "unnamed", 1, tf, "retrieved-like") == 0,
	   "a shmem file without a link or memfd: name (%s) is preserved, as the kernel takes it (%s)", link,
	   hl_last_error(c));
	ok(named >= 0 && hl_preserve_fd(c, "unnamed", 2, named, NULL) == -EINVAL &&
	   strstr(hl_last_error(c), "shmem file with a link"),
	   "a linked shmem file -> EINVAL (%s)", hl_last_error(c));
	hl_destroy_session(c, "unnamed");
	hl_disconnect(c);
	unlink("/dev/shm/hugelive-test-named");
	if (tf >= 0)
		close(tf);
	if (named >= 0)
		close(named);
}

static void t_sessions(void)
{
	hl_client *c;
	struct hl_session_info *ss;
	size_t n;
	int mfd = h_make_memfd("hello-live-update"), p[2], s;

	ok(hl_connect(h_sock, &c) == 0, "connect to agent");
	ok(hl_create_session(c, "s1") == 0, "create session s1");
	ok(hl_create_session(c, "s1") == -EEXIST, "duplicate create -> EEXIST");
	ok(hl_preserve_fd(c, "s1", 1, mfd, "data") == 0, "preserve memfd under token 1");
	ok(hl_preserve_fd(c, "s1", 1, mfd, "again") == -EEXIST, "duplicate token -> EEXIST");
	ok(pipe(p) == 0 && hl_preserve_fd(c, "s1", 2, p[0], NULL) == -EINVAL,
	   "pipe is not a memfd -> EINVAL (%s)", hl_last_error(c));
	ok(hl_preserve_fd(c, "nosuch", 1, mfd, NULL) == -ENOENT, "preserve into unknown session -> ENOENT");
	close(p[0]);
	close(p[1]);
	ok(hl_call_json(c, "{\"op\":\"preserve\",\"session\":\"s1\",\"token\":3}", -1, NULL, NULL) == -EBADF,
	   "preserve without fd -> EBADF");
	{
		int fd2;

		ok(hl_retrieve_fd(c, "s1", 1, &fd2) == -EINVAL, "retrieve before an update -> EINVAL");
		ok(hl_finish_session(c, "s1") == -EINVAL, "finish before an update -> EINVAL");
	}
	ok(hl_create_session(c, "tmp") == 0 && hl_destroy_session(c, "tmp") == 0 &&
	   hl_destroy_session(c, "tmp") == -ENOENT, "create, destroy, destroy again -> ENOENT");
	ok(hl_list_sessions(c, &ss, &n) == 0 && n == 1 && !strcmp(ss[0].name, "s1") && ss[0].nfds == 1 &&
	   ss[0].fds[0].token == 1 && !strcmp(ss[0].fds[0].label, "data") && !ss[0].incoming,
	   "list shows s1 with token 1 label data");
	hl_free_sessions(ss, n);
	ok(strstr(h_fake_dump(), "session hl:0:s1 out files 1") != NULL, "kernel (fake) has hl:0:s1 with one file");
	ok(!strstr(h_fake_dump(), "hl:0:tmp"), "destroyed session unpreserved in the kernel");
	hl_disconnect(c);
	close(mfd);
	/* the fd was passed: the session keeps the memfd alive without us */
	s = 0;
	(void)s;
}

static void t_malformed(void)
{
	int s, p[2];
	char *big;

	s = h_raw_connect(0);
	ok(s >= 0 && send(s, "garbage", 7, 0) == 7 && h_raw_reply(s) == EPROTO && h_is_eof(s),
	   "garbage -> EPROTO reply, then disconnect");
	close(s);
	s = h_raw_connect(0);
	big = malloc(100000);
	memset(big, ' ', 100000);
	ok(s >= 0 && send(s, big, 100000, 0) == 100000 && h_raw_reply(s) == EMSGSIZE && h_is_eof(s),
	   "100000-byte message -> EMSGSIZE reply, then disconnect");
	free(big);
	close(s);
	s = h_raw_connect(0);
	ok(pipe(p) == 0, "pipe");
	ok(h_send_two_fds(s, status_req, strlen(status_req), p, 0) > 0 && h_raw_reply(s) == EINVAL && h_is_eof(s),
	   "two fds in one message -> EINVAL, disconnect");
	close(s);
	s = h_raw_connect(0);
	ok(hl_send_packet(s, "{\"v\":1,\"id\":1,\"op\":\"status\"}", 28, p[0], false) > 0 && h_raw_reply(s) == EINVAL &&
	   h_is_eof(s), "fd attached to status -> EINVAL, disconnect");
	close(s);
	close(p[0]);
	close(p[1]);
	s = h_raw_connect(0);
	ok(send(s, "{\"v\":1,\"id\":5,\"op\":\"nope\"}", 26, 0) > 0 && h_raw_reply(s) == EOPNOTSUPP &&
	   send(s, "{\"v\":1,\"id\":6,\"op\":\"status\"}", 28, 0) > 0 && h_raw_reply(s) == 0,
	   "unknown op -> EOPNOTSUPP, connection stays usable");
	close(s);
	s = h_raw_connect(0);
	ok(send(s, "{\"v\":2,\"id\":1,\"op\":\"status\"}", 28, 0) > 0 && h_raw_reply(s) == EPROTO && h_is_eof(s),
	   "protocol version 2 -> EPROTO, disconnect");
	close(s);
	ok(h_agent_pid() > 0, "agent still serves other clients after malformed input");
}

static void t_slow_client(void)
{
	int s = h_raw_connect(0), sent = 0;
	int64_t t0, dt;
	const char *m = "{\"v\":1,\"id\":1,\"op\":\"status\"}";

	hl_set_nonblock(s, true);
	for (int i = 0; i < 20000; i++) {
		if (send(s, m, strlen(m), MSG_DONTWAIT) < 0)
			break;
		sent++;
	}
	t0 = hl_now_ms();
	ok(h_agent_pid() > 0, "another client is served while a client floods without reading (%d requests)", sent);
	dt = hl_now_ms() - t0;
	ok(dt < 2000, "... and promptly (%lld ms)", (long long)dt);
	close(s);
}

static int nobody_checks(void)
{
	hl_client *c;
	struct hl_session_info *ss;
	size_t n;
	int fd, bad = 0, mfd = h_make_memfd("nobody-data");

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	if (hl_list_sessions(c, &ss, &n) != 0 || n != 0)
		bad |= 1; /* must not see root's s1 */
	hl_free_sessions(ss, n);
	if (hl_call_json(c, "{\"op\":\"retrieve\",\"session\":\"s1\",\"token\":1,\"uid\":0}", -1, NULL, NULL) != -EPERM)
		bad |= 2;
	if (hl_call_json(c, "{\"op\":\"destroy\",\"session\":\"s1\",\"uid\":0}", -1, NULL, NULL) != -EPERM)
		bad |= 4;
	if (hl_destroy_session(c, "s1") != -ENOENT)
		bad |= 8; /* own namespace has no s1 */
	if (hl_call_json(c, "{\"op\":\"list\",\"uid\":0}", -1, NULL, NULL) != -EPERM)
		bad |= 16;
	if (hl_call_json(c, "{\"op\":\"update\",\"kernel\":\"/k\",\"cmdline\":\"kho=on liveupdate=on\"}", -1, NULL, NULL) != -EPERM)
		bad |= 32;
	if (hl_create_session(c, "mine") != 0 || hl_preserve_fd(c, "mine", 7, mfd, "nobody") != 0)
		bad |= 64;
	if (hl_retrieve_fd(c, "s1", 1, &fd) != -ENOENT)
		bad |= 128;
	hl_disconnect(c);
	return bad;
}

static void t_ownership(void)
{
	hl_client *c;
	char *rep = NULL;
	int rc = h_as_nobody(nobody_checks);

	ok(rc == 0, "uid %d cannot list/retrieve/destroy root's session, nor update; can use its own (mask %d)",
	   NOBODY, rc);
	hl_connect(h_sock, &c);
	ok(hl_call_json(c, "{\"op\":\"list\",\"all\":true}", -1, &rep, NULL) == 0 && strstr(rep, "\"mine\"") &&
	   strstr(rep, "\"s1\"") && strstr(rep, "65534"), "root lists every uid's sessions");
	free(rep);
	ok(strstr(h_fake_dump(), "session hl:65534:mine out files 7") != NULL, "kernel name is namespaced by uid");
	hl_disconnect(c);
}

/* Barrier helper child: subscribes, then behaves per mode. */
/*
 * Barrier helper child: subscribes (as uid, if not 0), then behaves per
 * mode: 0 refuses, 1 never answers, 2 ready, 3 refuses and reports the
 * refusal's result ('P': EPERM "owns no session", 'X' otherwise), 4 creates
 * a session of its own first, then refuses.
 */
static void subscriber(int mode, int wfd, uid_t uid)
{
	hl_client *c;
	struct hl_event ev;

	if (uid && h_become(uid) < 0)
		_exit(9);
	if (hl_connect(h_sock, &c) < 0 || (mode == 4 && hl_create_session(c, "vetoer") < 0) || hl_subscribe(c) < 0)
		_exit(10);
	if (write(wfd, "S", 1) != 1)
		_exit(11);
	for (;;) {
		if (hl_wait_event(c, 20000, &ev) < 0)
			_exit(mode == 2 || mode == 4 ? 0 : 12); /* the agent goes away after kexec */
		if (ev.type == HL_EVENT_PREPARE) {
			if (mode == 0 || mode == 4) {
				hl_refuse(c, ev.update_id, "busy flushing");
			} else if (mode == 2) {
				hl_ready(c, ev.update_id);
			} else if (mode == 3) {
				int rc = hl_refuse(c, ev.update_id, "not mine to veto");
				char r = rc == -EPERM && strstr(hl_last_error(c), "owns no session") ? 'P' : 'X';

				if (write(wfd, &r, 1) != 1)
					_exit(14);
			}
			/* mode 1: never answer */
		} else if (ev.type == HL_EVENT_RESUME) {
			if (write(wfd, "R", 1) != 1)
				_exit(13);
			if (mode != 4) /* mode 4 refuses every update */
				_exit(0);
		}
	}
}

static pid_t start_subscriber_uid(int mode, uid_t uid, int *rfd)
{
	int p[2];
	pid_t pid;
	char ch;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		subscriber(mode, p[1], uid);
	}
	close(p[1]);
	if (read(p[0], &ch, 1) != 1)
		diag("subscriber did not start");
	*rfd = p[0];
	return pid;
}

static pid_t start_subscriber(int mode, int *rfd)
{
	return start_subscriber_uid(mode, 0, rfd);
}

static int update(const char *kernel, const char *cmdline, int timeout_ms, char *err, size_t errlen)
{
	hl_client *c;
	char req[1024];
	int rc;

	if (hl_connect(h_sock, &c) < 0)
		return -ECONNREFUSED;
	snprintf(req, sizeof(req), "{\"op\":\"update\",\"kernel\":\"%s\",\"cmdline\":\"%s\",\"timeout_ms\":%d}",
		 kernel, cmdline, timeout_ms);
	rc = hl_call_json(c, req, -1, NULL, NULL);
	snprintf(err, errlen, "%s", hl_last_error(c));
	hl_disconnect(c);
	return rc;
}

static void t_preflight(const char *kernel, const char *badkernel)
{
	char err[512];

	ok(update(kernel, "console=ttyS0 kho=on", 1000, err, sizeof(err)) == -EINVAL && strstr(err, "liveupdate=on"),
	   "new command line without liveupdate=on -> EINVAL (%s)", err);
	ok(update(badkernel, "kho=on liveupdate=on", 1000, err, sizeof(err)) == -ENOEXEC,
	   "image the kernel refuses to load -> ENOEXEC (%s)", err);
	ok(update("/nonexistent/bzImage", "kho=on liveupdate=on", 1000, err, sizeof(err)) == -ENOENT,
	   "missing image -> ENOENT");
	ok(strstr(h_fake_dump(), "loaded 0") != NULL, "nothing left loaded after failed preflight");
}

static void t_barrier(const char *kernel)
{
	char err[512], ch = 0;
	int rfd, st;
	pid_t p;
	int64_t t0;

	p = start_subscriber(0, &rfd);
	ok(update(kernel, "kho=on liveupdate=on", 5000, err, sizeof(err)) == -ECANCELED && strstr(err, "busy flushing"),
	   "refusing client cancels the update (%s)", err);
	ok(read(rfd, &ch, 1) == 1 && ch == 'R', "refusing client got resume");
	waitpid(p, &st, 0);
	close(rfd);
	ok(strstr(h_fake_dump(), "loaded 0") && strstr(h_fake_dump(), "hl:0:s1 out files 1"),
	   "after cancel: kernel unloaded, sessions intact");

	p = start_subscriber(1, &rfd);
	t0 = hl_now_ms();
	ok(update(kernel, "kho=on liveupdate=on", 700, err, sizeof(err)) == -ETIMEDOUT,
	   "silent client times the barrier out (%s)", err);
	ok(hl_now_ms() - t0 >= 650, "... after the timeout (%lld ms)", (long long)(hl_now_ms() - t0));
	ok(read(rfd, &ch, 1) == 1 && ch == 'R', "silent client got resume");
	waitpid(p, &st, 0);
	close(rfd);
	ok(strstr(h_fake_dump(), "loaded 0") && strstr(h_fake_dump(), "hl:0:s1 out files 1"), "after timeout: sessions intact");
	{
		struct json_object *s = h_status(), *lu;

		ok(s && json_object_object_get_ex(s, "last_update", &lu) && !strcmp(hl_jstr(lu, "result"), "cancelled"),
		   "status reports the cancelled update");
		json_object_put(s);
	}
}

static void t_keeper(const char *kernel_path)
{
	int64_t pid = h_agent_pid();
	hl_client *c;
	char *rep = NULL;
	struct json_object *s;

	ok(pid > 0 && h_safe_kill((pid_t)pid, SIGKILL) == 0 && h_wait_gone((pid_t)pid, 3000), "kill -9 the agent");
	ok(strstr(h_fake_dump(), "hl:0:s1 out files 1") && strstr(h_fake_dump(), "hl:65534:mine out files 7"),
	   "sessions survive the agent's death (keeper holds them)");
	ok(h_agent_start(NULL) == 0, "restart the agent");
	s = h_status();
	ok(s && !strcmp(hl_jstr(s, "boot"), "restarted") && hl_jint(s, "outgoing_sessions", 0) == 2,
	   "restarted agent got both sessions back from the keeper");
	json_object_put(s);
	hl_connect(h_sock, &c);
	ok(hl_call_json(c, "{\"op\":\"list\",\"all\":true}", -1, &rep, NULL) == 0 && strstr(rep, "\"label\":\"data\"") &&
	   strstr(rep, "\"label\":\"nobody\""), "bookkeeping (tokens, labels, owners) restored from the state memfd");
	{
		char err[512];

		ok(dry_run(kernel_path, false, err, sizeof(err)) == -ENOTCONN,
		   "after kill -9 and restart s1 still expects a barrier (%s)", err);
	}
	free(rep);
	hl_disconnect(c);
}

static int nobody_after(void)
{
	hl_client *c;
	int fd, bad = 0;

	if (hl_connect(h_sock, &c) < 0)
		return 90;
	if (hl_call_json(c, "{\"op\":\"retrieve\",\"session\":\"s1\",\"token\":1,\"uid\":0}", -1, NULL, NULL) != -EPERM)
		bad |= 1;
	if (hl_call_json(c, "{\"op\":\"finish\",\"session\":\"s1\",\"uid\":0}", -1, NULL, NULL) != -EPERM)
		bad |= 2;
	if (hl_retrieve_fd(c, "mine", 7, &fd) != 0 || !h_memfd_has(fd, "nobody-data"))
		bad |= 4;
	hl_disconnect(c);
	return bad; /* leaves "mine" unfinished on purpose */
}

/* Issue 9 item 10: status.report shows a non-root caller only its own sessions. */
static int other_sees_no_report(void)
{
	struct json_object *s = h_status();
	const char *js = s ? json_object_to_json_string(s) : NULL;
	int bad = !js ? 1 : (strstr(js, "hl:65534") || strstr(js, "\"mine\"")) ? 2 : 0;

	json_object_put(s);
	return bad;
}

static int nobody_sees_own_report(void)
{
	struct json_object *s = h_status();
	const char *js = s ? json_object_to_json_string(s) : NULL;
	int bad = js && strstr(js, "hl:65534:mine") && strstr(js, "unclaimed") ? 0 : 1;

	json_object_put(s);
	return bad;
}

static void t_update(const char *kernel)
{
	char err[512];
	int64_t pid = h_agent_pid();
	int rfd, st, fd = -1;
	pid_t p;
	hl_client *c;
	struct json_object *s;

	p = start_subscriber(2, &rfd);
	{
		int orfd, nrfd;
		/* uid 65534 subscribed in t_limits: its session "mine" expects a barrier */
		pid_t op = start_subscriber_uid(1, NOBODY - 1, &orfd), np = start_subscriber_uid(2, NOBODY, &nrfd);

		ok(update(kernel, "kho=on liveupdate=on console=ttyS0", 5000, err, sizeof(err)) == 0,
		   "update with ready clients (root, uid %d) completes (fake kexec); a silent uid without sessions "
		   "does not hold it %s", NOBODY, err);
		h_safe_kill(op, SIGTERM);
		waitpid(op, NULL, 0);
		waitpid(np, NULL, 0);
		close(orfd);
		close(nrfd);
	}
	ok(h_wait_gone((pid_t)pid, 5000), "agent exited with the old 'kernel'");
	waitpid(p, &st, 0);
	close(rfd);
	ok(strstr(h_fake_dump(), "generation 1") && strstr(h_fake_dump(), "session hugelived in") &&
	   strstr(h_fake_dump(), "hl:0:s1 in files 1") && strstr(h_fake_dump(), "hl:65534:mine in files 7"),
	   "the new 'kernel' holds the agent state session and both client sessions");
	ok(h_agent_start("--claim-timeout 2") == 0, "agent starts after the update");
	s = h_status();
	ok(s && !strcmp(hl_jstr(s, "boot"), "updated") && hl_jint(s, "incoming_sessions", 0) == 2,
	   "agent restored its bookkeeping and retrieved both sessions");
	{
		struct json_object *lu = NULL;

		ok(s && json_object_object_get_ex(s, "last_update", &lu) && lu &&
		   !strcmp(hl_jstr(lu, "result") ? hl_jstr(lu, "result") : "", "kexec") &&
		   hl_jint(lu, "id", 0) >= 1 && strstr(hl_jstr(lu, "message") ? hl_jstr(lu, "message") : "", kernel),
		   "status after the update names the update that booted it (last_update kexec)");
	}
	json_object_put(s);
	ok(h_as_nobody(nobody_after) == 0, "after update: uid %d cannot take root's session but gets its own fd back", NOBODY);
	hl_connect(h_sock, &c);
	ok(hl_retrieve_fd(c, "s1", 1, &fd) == 0 && h_memfd_has(fd, "hello-live-update"),
	   "root gets its memfd back with the data intact");
	ok(hl_finish_session(c, "s1") == 0 && !strstr(h_fake_dump(), "hl:0:s1"), "finish releases the session");
	ok(hl_create_session(c, "s1") == 0 && hl_preserve_fd(c, "s1", 1, fd, "data") == 0,
	   "the same name can be preserved again for the next update");
	close(fd);
	hl_disconnect(c);
	usleep(2600 * 1000);
	s = h_status();
	{
		const char *js = s ? json_object_to_json_string(s) : "";

		ok(strstr(js, "hl:65534:mine") && strstr(js, "unclaimed") && strstr(js, "finished"),
		   "unclaimed session reported after the claim timeout");
	}
	json_object_put(s);
	ok(h_as_uid(NOBODY - 1, other_sees_no_report) == 0, "uid %d's status.report does not show uid %d's session",
	   NOBODY - 1, NOBODY);
	ok(h_as_nobody(nobody_sees_own_report) == 0, "uid %d's status.report shows its own unclaimed session", NOBODY);
	ok(!strstr(h_fake_dump(), "hl:65534:mine"), "unclaimed session finished per policy");
}


/* Exit code of hugelived with args (it must refuse them before doing anything). */
static int agent_args(const char *args, char *err, size_t len)
{
	char cmd[512];
	FILE *f;
	size_t n;
	int st;

	/* never a real keeper: an old agent accepting the arguments must not leave one behind */
	snprintf(cmd, sizeof(cmd), "timeout 10 %s/hugelived --fake-luo %s/none --socket %s/none.sock --fd-store none "
		 "--keeper-socket %s/none.keeper %s 2>&1 </dev/null", h_bindir, h_dir, h_dir, h_dir, args);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	n = fread(err, 1, len - 1, f);
	err[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Issue 9 item 13 and the CLI items. */
static void t_cli(void)
{
	static char out[65536];
	char err[1024], dev[160], args[512];
	struct json_object *o, *e;
	int rc, in, wd;

	static const char *const bad[] = { "--claim-timeout 5x", "--claim-timeout 0", "--claim-timeout -1",
					   "--claim-timeout ''", "--idle-timeout 1e3", "--socket-mode 9" };
	for (size_t i = 0; i < HL_ARRAY_SIZE(bad); i++) {
		rc = agent_args(bad[i], err, sizeof(err));
		ok(rc == 2 && (strstr(err, "not a positive number") || strstr(err, "not an octal mode")),
		   "hugelived %s -> exit 2 (%d: %.*s)", bad[i], rc, (int)strcspn(err, "\n"), err);
	}
	rc = agent_args("--kexec-via reboot", err, sizeof(err));
	ok(rc == 2 && strstr(err, "--kexec-via: 'reboot' is not auto, systemd or direct"),
	   "hugelived --kexec-via reboot -> exit 2 (%d: %.*s)", rc, (int)strcspn(err, "\n"), err);
	ok(h_tool("--wait abc status") == 2, "hugelivectl --wait abc -> exit 2");
	ok(h_tool("--wait 5s status") == 2, "hugelivectl --wait 5s -> exit 2");
	ok(h_tool("status --json") == 0 && h_tool("sessions --quiet --all") == 0, "global options after the command");
	rc = tool_out("update --help", out, sizeof(out));
	ok(rc == 0 && strstr(out, "usage: hugelivectl [global options] update --kernel IMAGE") && !strstr(out, "preserve"),
	   "hugelivectl update --help: that command's usage (exit %d)", rc);
	rc = tool_out("sessions -h", out, sizeof(out));
	ok(rc == 0 && strstr(out, "sessions [--all] [--uid UID]"), "hugelivectl sessions -h (exit %d)", rc);
	snprintf(args, sizeof(args), "--json --socket %s/none --wait 0 status", h_dir);
	rc = tool_out(args, out, sizeof(out));
	o = json_tokener_parse(out);
	ok(rc == 3 && o && !hl_jbool(o, "ok", true) && hl_jint(o, "exit", 0) == 3 &&
	   json_object_object_get_ex(o, "error", &e) && !strcmp(hl_jstr(e, "name") ? hl_jstr(e, "name") : "", "ENOENT"),
	   "--json: agent not reachable -> JSON error on stdout, exit 3 (%.*s)", (int)strcspn(out, "\n"), out);
	json_object_put(o);
	rc = tool_out("destroy --session nosuch --json", out, sizeof(out));
	o = json_tokener_parse(out);
	ok(rc == 1 && o && json_object_object_get_ex(o, "error", &e) && hl_jint(e, "code", 0) == ENOENT &&
	   strstr(hl_jstr(e, "message") ? hl_jstr(e, "message") : "", "nosuch"),
	   "--json after the command: agent error ENOENT as JSON (%.*s)", (int)strcspn(out, "\n"), out);
	json_object_put(o);
	rc = tool_out("--json sessions --bogus", out, sizeof(out));
	o = json_tokener_parse(out);
	ok(rc == 2 && o && json_object_object_get_ex(o, "error", &e) && hl_jint(e, "code", 0) == EINVAL &&
	   strstr(hl_jstr(e, "message") ? hl_jstr(e, "message") : "", "--bogus"),
	   "--json: usage error as JSON, exit 2 (%.*s)", (int)strcspn(out, "\n"), out);
	json_object_put(o);

	/* check asks the running agent instead of opening the single-opener device */
	snprintf(dev, sizeof(dev), "%s/liveupdate", h_dir);
	close(open(dev, O_RDWR | O_CREAT, 0600));
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	wd = inotify_add_watch(in, dev, IN_OPEN);
	snprintf(args, sizeof(args), "HUGELIVE_DEVICE=%s HUGELIVE_SOCKET=%s %s/hugelivectl --json check >%s/check.json 2>&1",
		 dev, h_sock, h_bindir, h_dir);
	rc = system(args);
	{
		char evbuf[sizeof(struct inotify_event) + 256];
		bool opened = read(in, evbuf, sizeof(evbuf)) > 0;
		char path[200], *js;

		snprintf(path, sizeof(path), "%s/check.json", h_dir);
		js = hl_read_file(path, 1 << 16, NULL);
		ok(wd >= 0 && !opened && js && strstr(js, "owned by hugelived"),
		   "hugelivectl check with the agent running: device not opened, reported as the agent's (%s)",
		   opened ? "opened!" : "not opened");
		free(js);
	}
	close(in);
	unlink(dev);
}

static void t_tool(const char *kernel)
{
	char cmd[1024];
	int mfd = h_make_memfd("tool-data");

	ok(h_tool("status") == 0 && h_tool("--json status") == 0 && h_tool("sessions --all") == 0, "hugelivectl status/sessions");
	ok(h_tool("update") == 2, "hugelivectl update without --kernel -> exit 2");
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'console=ttyS0'", kernel);
	ok(h_tool(cmd) == 5, "hugelivectl update without kho=on liveupdate=on -> exit 5 (preflight)");
	snprintf(cmd, sizeof(cmd), "update --kernel %s --append 'kho=on liveupdate=on' --dry-run", kernel);
	ok(h_tool(cmd) == 0, "hugelivectl update --dry-run -> exit 0");
	{
		pid_t p = fork();
		int st;

		if (p == 0) {
			char a[1024];

			dup2(mfd, 5);
			snprintf(a, sizeof(a), "HUGELIVE_SOCKET=%s %s/hugelivectl preserve --session sh --token 5 --fd 5 "
				 "--label shell --create >>%s/tool.log 2>&1", h_sock, h_bindir, h_dir);
			execl("/bin/sh", "sh", "-c", a, (char *)NULL);
			_exit(127);
		}
		waitpid(p, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "hugelivectl preserve --fd from a shell");
	}
	ok(h_tool("finish --session sh") == 1, "hugelivectl finish of an outgoing session -> exit 1");
	ok(h_tool("destroy --session sh") == 0, "hugelivectl destroy");
	{
		char bad[256];

		snprintf(bad, sizeof(bad), "--socket %s/none --wait 0 status", h_dir);
		ok(h_tool(bad) == 3, "hugelivectl status without agent -> exit 3");
	}
	ok(h_tool("check") == 1, "hugelivectl check on this host (no LUO) -> not ready, exit 1");
	t_cli();
	ok(h_tool("--json check") == 1, "hugelivectl --json check");
	close(mfd);
}

int main(int argc, char **argv)
{
	char kernel[160], badkernel[160];
	int rc;

	rc = h_main_init(argc, argv, "test_agent", "test");
	if (rc >= 0)
		return rc;
	/* this suite names the socket itself and injects no faults */
	unsetenv("HUGELIVE_SOCKET");
	unsetenv("HUGELIVE_FAKE_FAULTS");
	/* synthetic bzImages: the preflight accepts both, the fake kexec load refuses "BAD" */
	snprintf(kernel, sizeof(kernel), "%s", h_kernel());
	snprintf(badkernel, sizeof(badkernel), "%s/bad.img", h_dir);
	if (kimg_write(badkernel, "gzip", kimg_all, KIMG_BAD_START) < 0)
		return 1;

	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0, "agent starts on the fake LUO backend")) {
		h_stop_all();
		return tap_done();
	}
	t_sessions();
	t_unnamed_shmem();
	t_malformed();
	t_passed_fds();
	t_slow_client();
	t_ownership();
	t_preflight(kernel, badkernel);
	t_barrier(kernel);
	t_barrier_rights(kernel);
	t_redact(kernel);
	t_caps(kernel);
	t_limits();
	t_nofile();
	t_big_replies();
	t_reconnect();
	t_keeper(kernel);
	t_update(kernel);
	t_tool(kernel);
	t_force(kernel);

	/* teardown */
	{
		int64_t pid = h_agent_pid();

		h_safe_kill((pid_t)pid, SIGTERM);
		ok(h_wait_gone((pid_t)pid, 5000), "agent exits on SIGTERM");
	}
	ok(h_finish(), "no sanitizer reports in agent/fakeluo/tool logs (%s)", h_dir);
	return h_exit(tap_done());
}
