/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the agent-* VM scenarios, which drive the real userspace
 * (hugelived, hugelivectl; metadata userspace=1 puts them in the guest's
 * PATH). Header-only, like hugepages.h, so scenarios need nothing but
 * lib/scenario.c.
 *
 *  - ag_run(): run a shell command, capture and echo its output, with a
 *    time limit (a daemon that keeps the pipe open does not block it);
 *  - a minimal client of the agent protocol (userspace/docs/protocol.md):
 *    AF_UNIX SOCK_SEQPACKET, one JSON object per packet, one fd with
 *    SCM_RIGHTS. Scenario programs are static and cannot link libhugelive
 *    (json-c), so client services are small C clients speaking the
 *    documented protocol, besides the tool's own client commands;
 *  - client services as forked children that report TAP results to the
 *    scenario process through a pipe ("T 1 text", "D text", "M marker"
 *    lines); the parent relays them as hl_ok()/hl_diag() so that TAP
 *    numbering stays in one process;
 *  - a pattern-filled memory object with a header page (seed, size, the
 *    update the owner prepared for) and its word-by-word verifier;
 *  - ag_update(): the orchestrated update into generation N+1 with
 *    `hugelivectl update --kernel $HUGELIVE_KERNEL (/boot/bzImage) --initrd
 *    $HUGELIVE_NEXT_INITRD --reuse-cmdline --append hugelive.gen=N+1`.
 */
#ifndef HUGELIVE_AGENT_H
#define HUGELIVE_AGENT_H

#include "scenario.h"
#include "hugepages.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <grp.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define AG_SOCK		"/run/hugelive/agent.sock"
#define AG_MAX_MSG	65536
#define AG_HDR		4096ULL		/* header page of an ag_mem object */
#define AG_MAGIC	0x4147454e544d454dULL
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC	0x958458f6
#endif

/* hugelivectl exit codes (hugelivectl(8)) */
#define AG_EXIT_FAIL		1
#define AG_EXIT_CANCELLED	4
#define AG_EXIT_PREFLIGHT	5

static inline uint64_t ag_ms(void)
{
	return hl_now_ns(CLOCK_MONOTONIC) / 1000000ULL;
}

/* ---- reporting from children ------------------------------------------- */

/* In a forked client service (or an exec'd helper): the pipe to the parent. */
static int ag_rep_fd = -1;

static inline void ag_line(char kind, int ok, const char *fmt, va_list ap)
{
	char buf[900];
	int n;

	if (kind == 'T')
		n = snprintf(buf, sizeof(buf), "T %d ", ok);
	else
		n = snprintf(buf, sizeof(buf), "%c ", kind);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ' ';
	strcat(buf, "\n");
	if (write(ag_rep_fd, buf, strlen(buf)) < 0) {
		/* parent gone: nothing to report to */
	}
}

/* hl_ok() in the scenario process, a "T" line to it from a child. */
static inline bool ag_ok(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline bool ag_ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	char buf[900];

	va_start(ap, fmt);
	if (ag_rep_fd >= 0) {
		ag_line('T', cond, fmt, ap);
	} else {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		hl_ok(cond, "%s", buf);
	}
	va_end(ap);
	return cond;
}

static inline void ag_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void ag_diag(const char *fmt, ...)
{
	va_list ap;
	char buf[900];

	va_start(ap, fmt);
	if (ag_rep_fd >= 0) {
		ag_line('D', 0, fmt, ap);
	} else {
		vsnprintf(buf, sizeof(buf), fmt, ap);
		hl_diag("%s", buf);
	}
	va_end(ap);
}

/* A marker the parent can wait for (ag_relay). */
static inline void ag_mark(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void ag_mark(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ag_rep_fd >= 0)
		ag_line('M', 0, fmt, ap);
	va_end(ap);
}

/* Parent: turn one reported line into TAP; returns the marker or NULL. */
static inline const char *ag_relay_line(char *l)
{
	if (l[0] == 'T' && l[1] == ' ' && (l[2] == '0' || l[2] == '1') && l[3] == ' ')
		hl_ok(l[2] == '1', "%s", l + 4);
	else if (l[0] == 'D' && l[1] == ' ')
		hl_diag("%s", l + 2);
	else if (l[0] == 'M' && l[1] == ' ')
		return l + 2;
	return NULL;
}

/* Parent: relay every T/D line of a captured output; count the T lines. */
static inline int ag_relay_text(const char *text)
{
	char *copy = strdup(text ? text : ""), *save = NULL;
	int n = 0;

	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == 'T' && l[1] == ' ')
			n++;
		ag_relay_line(l);
	}
	free(copy);
	return n;
}

struct ag_child {
	const char *name;
	pid_t pid;
	int fd;			/* read end of the report pipe */
	char buf[8192];
	size_t len;
	bool eof;
};

/*
 * Fork a client service: fn(arg) runs in the child with ag_rep_fd set, and
 * the child exits with its return value.
 */
static inline pid_t ag_fork(struct ag_child *ch, const char *name,
			    int (*fn)(void *), void *arg)
{
	int p[2];

	memset(ch, 0, sizeof(*ch));
	ch->name = name;
	ch->fd = -1;
	if (pipe2(p, O_CLOEXEC))
		return -1;
	fflush(NULL);
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		close(p[0]);
		ag_rep_fd = p[1];
		signal(SIGPIPE, SIG_IGN);
		_exit(fn(arg));
	}
	close(p[1]);
	ch->fd = p[0];
	return ch->pid;
}

/*
 * Parent: relay the child's lines until it reports the marker (true), or
 * until EOF when marker is NULL (true), or the timeout (false).
 */
static inline bool ag_relay(struct ag_child *ch, const char *marker, int timeout_ms)
{
	uint64_t end = ag_ms() + (uint64_t)timeout_ms;

	for (;;) {
		char *nl;

		while ((nl = memchr(ch->buf, '\n', ch->len))) {
			const char *m;

			*nl = 0;
			m = ag_relay_line(ch->buf);
			bool hit = m && marker && !strcmp(m, marker);

			ch->len -= (size_t)(nl + 1 - ch->buf);
			memmove(ch->buf, nl + 1, ch->len);
			if (hit)
				return true;
		}
		if (ch->eof)
			return marker == NULL;
		uint64_t now = ag_ms();

		if (now >= end)
			return false;
		struct pollfd pf = { .fd = ch->fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)(end - now));

		if (r < 0 && errno != EINTR)
			return false;
		if (r <= 0)
			continue;
		ssize_t n = read(ch->fd, ch->buf + ch->len, sizeof(ch->buf) - 1 - ch->len);

		if (n <= 0) {
			if (ch->len) { /* an unterminated last line */
				ch->buf[ch->len] = '\n';
				ch->len++;
			}
			ch->eof = true;
			continue;
		}
		ch->len += (size_t)n;
	}
}

/* Parent: relay until EOF and reap; returns the exit status (or -1). */
static inline int ag_wait_child(struct ag_child *ch, int timeout_ms)
{
	int st = 0;

	if (!ag_relay(ch, NULL, timeout_ms)) {
		hl_ok(false, "client %s finished within %d ms", ch->name, timeout_ms);
		kill(ch->pid, SIGKILL);
	}
	if (waitpid(ch->pid, &st, 0) < 0)
		return -1;
	close(ch->fd);
	ch->fd = -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- running commands -------------------------------------------------- */

/*
 * Run `sh -c CMD` as the given uid (-1: unchanged), with stdout and stderr
 * captured into out (NUL-terminated, may be NULL) and echoed to the console
 * as "  | line", and fd3 (if >= 0) placed on fd 3. Gives up (SIGKILL) after
 * timeout_s. Returns the exit status, 128+signal, or -1.
 */
static inline int ag_run_as(int uid, char *out, size_t outlen, int fd3, int timeout_s,
			    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static inline int ag_run_as(int uid, char *out, size_t outlen, int fd3, int timeout_s,
			    const char *fmt, ...)
{
	char cmd[4096], tmp[4096], *line = tmp;
	size_t olen = 0, llen = 0;
	uint64_t end = ag_ms() + (uint64_t)timeout_s * 1000;
	bool done = false, eof = false;
	int p[2], st = 0;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (out && outlen)
		out[0] = 0;
	if (pipe2(p, O_CLOEXEC))
		return -1;
	printf("  $ %s\n", cmd);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		if (nul >= 0)
			dup2(nul, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (fd3 >= 0) {
			if (fd3 != 3)
				dup2(fd3, 3);
			fcntl(3, F_SETFD, 0);
		}
		if (uid >= 0 && (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid)))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (!eof) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int r;

		if (!done && waitpid(pid, &st, WNOHANG) == pid)
			done = true;
		/* after the exit, only drain what is already there */
		r = poll(&pf, 1, done ? 0 : 100);
		if (r > 0) {
			ssize_t n = read(p[0], line + llen, sizeof(tmp) - 1 - llen);

			if (n <= 0) {
				eof = true;
			} else {
				llen += (size_t)n;
			}
		} else if (done) {
			eof = true;
		}
		/* echo and collect complete lines (or a full buffer) */
		char *nl;

		while ((nl = memchr(line, '\n', llen)) || (eof && llen) || llen == sizeof(tmp) - 1) {
			size_t l = nl ? (size_t)(nl - line) : llen;

			printf("  | %.*s\n", (int)l, line);
			if (out && olen + l + 2 < outlen) {
				memcpy(out + olen, line, l);
				olen += l;
				out[olen++] = '\n';
				out[olen] = 0;
			}
			l = nl ? l + 1 : l;
			llen -= l;
			memmove(line, line + l, llen);
		}
		if (!done && ag_ms() > end) {
			printf("  ! timeout after %d s, killing\n", timeout_s);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			done = true;
		}
	}
	fflush(stdout);
	close(p[0]);
	if (!done)
		waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

#define ag_run(out, outlen, fd3, ...) ag_run_as(-1, out, outlen, fd3, 120, __VA_ARGS__)

/* Start a program in the background (stdout/stderr: console); its pid. */
static inline pid_t ag_spawn(int fd3, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline pid_t ag_spawn(int fd3, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	printf("  $ %s &\n", cmd);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (fd3 >= 0) {
			if (fd3 != 3)
				dup2(fd3, 3);
			fcntl(3, F_SETFD, 0);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static inline bool ag_contains(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle);
}

/* First line of text containing needle, for TAP messages. */
static inline const char *ag_line_with(const char *text, const char *needle)
{
	static char l[300];
	const char *p = text ? strstr(text, needle) : NULL, *b, *e;

	if (!p)
		return "(none)";
	for (b = p; b > text && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	snprintf(l, sizeof(l), "%.*s", (int)(e ? e - b : (long)strlen(b)), b);
	return l;
}

/* pid of a process whose argv has words containing a and b (if not NULL), or -1 */
static inline long ag_find_proc(const char *a, const char *b)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	long found = -1;

	while (d && (e = readdir(d))) {
		char path[300], buf[512];
		long pid = strtol(e->d_name, NULL, 10);
		ssize_t n;
		int fd;
		bool ha = false, hb = false;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
			buf[n] = 0;
			ha |= strstr(buf + i, a) != NULL;
			hb |= !b || strstr(buf + i, b) != NULL;
		}
		if (ha && hb) {
			found = pid;
			break;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* The process exists and is not a zombie. */
static inline bool ag_alive(long pid)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strrchr(buf, ')');

	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* ---- minimal JSON lookups (flat, first match) ---------------------------- */

static inline const char *ag_jfind(const char *js, const char *key)
{
	char pat[80];
	size_t pl;
	const char *p = js;

	if (!js)
		return NULL;
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	pl = strlen(pat);
	while ((p = strstr(p, pat))) {
		const char *q = p + pl;

		while (isspace((unsigned char)*q))
			q++;
		if (*q == ':') {
			q++;
			while (isspace((unsigned char)*q))
				q++;
			return q;
		}
		p += pl;
	}
	return NULL;
}

static inline long long ag_jint(const char *js, const char *key, long long dflt)
{
	const char *v = ag_jfind(js, key);

	return v && (isdigit((unsigned char)*v) || *v == '-') ? strtoll(v, NULL, 10) : dflt;
}

static inline int ag_jbool(const char *js, const char *key)
{
	const char *v = ag_jfind(js, key);

	return !v ? -1 : !strncmp(v, "true", 4) ? 1 : !strncmp(v, "false", 5) ? 0 : -1;
}

static inline const char *ag_jstr(const char *js, const char *key, char *buf, size_t len)
{
	const char *v = ag_jfind(js, key);
	size_t o = 0;

	if (!v || *v != '"' || !len)
		return NULL;
	for (v++; *v && *v != '"' && o + 1 < len; v++) {
		if (*v == '\\' && v[1])
			v++;
		buf[o++] = *v;
	}
	buf[o] = 0;
	return buf;
}

/* Is string field key (first match) equal to val? */
static inline bool ag_jis(const char *js, const char *key, const char *val)
{
	char b[256];

	return ag_jstr(js, key, b, sizeof(b)) && !strcmp(b, val);
}

/* ---- protocol client ---------------------------------------------------- */

struct ag_client {
	int fd;
	long long next_id;
	char *reply;			/* last reply (AG_MAX_MSG + 1) */
	char err[320];			/* "ENAME: message" of the last error */
	char evq[8][1024];		/* events received while waiting */
	int nev;
};

static inline void ag_close(struct ag_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Connect, retrying for wait_ms (the agent may be starting). 0 or -errno. */
static inline int ag_connect(struct ag_client *c, int wait_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t end = ag_ms() + (uint64_t)wait_ms;
	int e;

	if (!c->reply)
		c->reply = malloc(AG_MAX_MSG + 1);
	c->fd = -1;
	c->next_id = 1;
	c->nev = 0;
	strcpy(sa.sun_path, AG_SOCK);
	for (;;) {
		c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return -errno;
		if (!connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
			return 0;
		e = errno;
		ag_close(c);
		if (ag_ms() >= end)
			return -e;
		usleep(100000);
	}
}

/* One packet (+ at most one fd). Returns its length, 0 on EOF, -errno. */
static inline ssize_t ag_recv(struct ag_client *c, char *buf, size_t cap, int *fd_out)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = cap - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	do {
		n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (fd_out && *fd_out < 0)
				*fd_out = f;
			else
				close(f);
		}
	}
	return n;
}

/*
 * Send {"v":1,"id":N,BODY} (with fd_in if >= 0) and wait for the reply;
 * events that arrive meanwhile are queued. Returns 0 if "ok":true, else
 * -code (c->err: "ENAME: message"), or -errno of the transport
 * (-ECONNRESET when the agent closed the connection).
 */
static inline int ag_call(struct ag_client *c, int fd_in, int *fd_out, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int ag_call(struct ag_client *c, int fd_in, int *fd_out, const char *fmt, ...)
{
	char body[2048], msg[2200];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	long long id = c->next_id++;
	va_list ap;

	if (fd_out)
		*fd_out = -1;
	c->err[0] = 0;
	c->reply[0] = 0;
	if (c->fd < 0)
		return -ENOTCONN;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "{\"v\":1,\"id\":%lld,%s}", id, body);
	iov.iov_base = msg;
	iov.iov_len = strlen(msg);
	if (fd_in >= 0) {
		struct cmsghdr *h;

		memset(&u, 0, sizeof(u));
		m.msg_control = u.b;
		m.msg_controllen = sizeof(u.b);
		h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd_in, sizeof(int));
	}
	if (sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0) {
		int e = errno;

		snprintf(c->err, sizeof(c->err), "send: %s", strerror(e));
		return e == EPIPE ? -ECONNRESET : -e;
	}
	for (;;) {
		int fd = -1;
		ssize_t n = ag_recv(c, c->reply, AG_MAX_MSG + 1, &fd);

		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "connection: %s",
				 n ? strerror((int)-n) : "closed by the agent");
			return n ? (int)n : -ECONNRESET;
		}
		if (ag_jfind(c->reply, "event") && !ag_jfind(c->reply, "id")) {
			if (fd >= 0)
				close(fd);
			if (c->nev < 8)
				snprintf(c->evq[c->nev++], sizeof(c->evq[0]), "%s", c->reply);
			continue;
		}
		if (ag_jint(c->reply, "id", -1) != id) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (ag_jbool(c->reply, "ok") == 1) {
			if (fd_out)
				*fd_out = fd;
			else if (fd >= 0)
				close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		{
			char name[32] = "?", text[256] = "";
			long long code = ag_jint(c->reply, "code", EPROTO);

			ag_jstr(c->reply, "name", name, sizeof(name));
			ag_jstr(c->reply, "message", text, sizeof(text));
			snprintf(c->err, sizeof(c->err), "%s: %s", name, text);
			return (int)-code;
		}
	}
}

/*
 * Next event (queued first) into buf. 1 = event, 0 = timeout,
 * -ECONNRESET = the agent closed the connection.
 */
static inline int ag_event(struct ag_client *c, int timeout_ms, char *buf, size_t len)
{
	uint64_t end = ag_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

	for (;;) {
		if (c->nev) {
			snprintf(buf, len, "%s", c->evq[0]);
			memmove(c->evq[0], c->evq[1], sizeof(c->evq[0]) * (size_t)(c->nev - 1));
			c->nev--;
			return 1;
		}
		struct pollfd pf = { .fd = c->fd, .events = POLLIN };
		int left = timeout_ms < 0 ? -1 : (int)(end > ag_ms() ? end - ag_ms() : 0);
		int r = poll(&pf, 1, left);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return 0;
		int fd;
		ssize_t n = ag_recv(c, c->reply, AG_MAX_MSG + 1, &fd);

		if (fd >= 0)
			close(fd);
		if (n <= 0)
			return n ? (int)n : -ECONNRESET;
		if (ag_jfind(c->reply, "event") && !ag_jfind(c->reply, "id")) {
			snprintf(buf, len, "%s", c->reply);
			return 1;
		}
		/* a late reply (e.g. to ready): ignore */
	}
}

static inline const char *ag_errname(int e)
{
	const char *n = strerrorname_np(e < 0 ? -e : e);

	return e == 0 ? "ok" : n ? n : "E?";
}

/* "ok" or "ENAME: message" for an ag_call() result (one static buffer). */
static inline const char *ag_res(int rc, const struct ag_client *c)
{
	static char b[400];

	if (!rc)
		return "ok";
	if (c && c->err[0] && rc != -ECONNRESET)
		return c->err;
	snprintf(b, sizeof(b), "%s", ag_errname(rc));
	return b;
}

/* ---- pattern memory with a header page ---------------------------------- */

struct ag_hdr {
	uint64_t magic;
	uint64_t seed;
	uint64_t size;
	uint64_t prepared;		/* update id the owner got "prepare" for */
	uint64_t resumed;		/* update id it got "resume" for */
	struct hl_stamp stamp;		/* when it answered ready */
};

struct ag_mem {
	int fd;
	uint8_t *p;
	uint64_t size;
	bool huge;
};

static inline struct ag_hdr *ag_hdr(struct ag_mem *m)
{
	return (struct ag_hdr *)m->p;
}

/* A memfd (hugetlb: 2 MiB pages) of size bytes: header + pattern. */
static inline int ag_mem_new(struct ag_mem *m, const char *name, uint64_t size, bool huge,
			     uint64_t seed)
{
	m->size = size;
	m->huge = huge;
	m->fd = huge ? hl_hugetlb_memfd(name, HL_2M, size) : hl_memfd(name, size, MFD_ALLOW_SEALING);
	if (m->fd < 0)
		return -1;
	m->p = hl_map(m->fd, size);
	if (!m->p)
		return -1;
	memset(m->p, 0, AG_HDR);
	ag_hdr(m)->magic = AG_MAGIC;
	ag_hdr(m)->seed = seed;
	ag_hdr(m)->size = size;
	hl_pattern_fill(m->p + AG_HDR, size - AG_HDR, AG_HDR, seed);
	return 0;
}

static inline bool ag_is_hugetlb(int fd)
{
	struct statfs s;

	return !fstatfs(fd, &s) && (unsigned long)s.f_type == (unsigned long)HUGETLBFS_MAGIC;
}

/*
 * Map an fd we got back and check it word by word: the header (magic,
 * seed, size) and every word of the pattern after it. Reports with
 * ag_ok(); on success *m is the mapping.
 */
static inline bool ag_mem_verify(int fd, const char *what, bool want_huge, uint64_t want_size,
				 uint64_t want_seed, struct ag_mem *m)
{
	long long sz = hl_fd_size(fd);
	struct hl_mismatch mm;
	struct ag_hdr *h;
	bool ok;

	memset(m, 0, sizeof(*m));
	m->fd = fd;
	if (!ag_ok(sz == (long long)want_size && ag_is_hugetlb(fd) == want_huge,
		   "%s: size %lld (want %llu), %s", what, sz, (unsigned long long)want_size,
		   ag_is_hugetlb(fd) ? "hugetlbfs" : "shmem"))
		return false;
	m->size = (uint64_t)sz;
	m->huge = want_huge;
	m->p = hl_map(fd, m->size);
	if (!ag_ok(m->p != NULL, "%s: mapped", what))
		return false;
	h = ag_hdr(m);
	if (!ag_ok(h->magic == AG_MAGIC && h->seed == want_seed && h->size == want_size,
		   "%s: header magic/seed/size 0x%llx/0x%llx/%llu", what,
		   (unsigned long long)h->magic, (unsigned long long)h->seed,
		   (unsigned long long)h->size))
		return false;
	uint64_t t0 = ag_ms();

	ok = hl_pattern_verify(m->p + AG_HDR, m->size - AG_HDR, AG_HDR, want_seed, &mm);
	if (ok)
		return ag_ok(true, "%s: all %llu words after the header verified (%llu ms)", what,
			     (unsigned long long)((m->size - AG_HDR) / 8),
			     (unsigned long long)(ag_ms() - t0));
	return ag_ok(false, "%s verified: first bad offset 0x%llx expected 0x%016llx actual 0x%016llx (%llu bad words)",
		     what, (unsigned long long)mm.offset, (unsigned long long)mm.expected,
		     (unsigned long long)mm.actual, (unsigned long long)mm.bad_words);
}

/* ---- agent and update --------------------------------------------------- */

/* hugelived --daemonize, its log on the console. Exit status of the start. */
static inline int ag_start_agent(const char *args)
{
	return ag_run(NULL, 0, -1, "hugelived --daemonize %s >/dev/console 2>&1", args ? args : "");
}

/* `hugelivectl --json status` into out; the exit status. */
static inline int ag_status(char *out, size_t len)
{
	return ag_run(out, len, -1, "hugelivectl --json status");
}

/* pid of the running agent (from status), or -1. */
static inline long long ag_agent_pid(void)
{
	static char out[16384];

	if (ag_status(out, sizeof(out)))
		return -1;
	return ag_jint(out, "pid", -1);
}

/*
 * kill -9 the agent (not its keeper) and check the keeper lives on and
 * hugelivectl status exits 3 (no agent). *keeper_out: the keeper's pid.
 * The agent's pid, or -1.
 */
static inline long ag_kill9_agent(const char *when, long *keeper_out)
{
	static char out[16384];
	long agent = (long)ag_agent_pid(), keeper = ag_find_proc("hugelived", "--keeper");
	uint64_t end;
	int rc;

	hl_ok(agent > 0 && keeper > 0 && agent != keeper, "%s: agent pid %ld, keeper pid %ld", when, agent, keeper);
	if (agent <= 0)
		return -1;
	rc = ag_run(NULL, 0, -1, "kill -9 %ld", agent);
	end = ag_ms() + 10000;
	while (ag_alive(agent) && ag_ms() < end)
		usleep(50000);
	hl_ok(rc == 0 && !ag_alive(agent), "%s: kill -9 %ld: the agent is dead", when, agent);
	usleep(300000);
	hl_ok(ag_alive(keeper), "%s: the keeper (pid %ld) lives on", when, keeper);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl status");
	hl_ok(rc == 3, "%s: hugelivectl status without an agent exits 3 (got %d)", when, rc);
	if (keeper_out)
		*keeper_out = keeper;
	return agent;
}

/*
 * Restart the agent after ag_kill9_agent (hugelived --daemonize ARGS):
 * a new pid, boot "restarted", the fd store still the same keeper, and
 * status field state (e.g. "outgoing_sessions") = want_sessions. The
 * status JSON is left in out.
 */
static inline void ag_restart_agent(const char *when, const char *args, long agent, long keeper,
				    int want_sessions, const char *state, char *out, size_t outlen)
{
	long agent2;
	int rc;

	rc = ag_start_agent(args);
	hl_ok(rc == 0, "%s: hugelived --daemonize restarted (exit %d)", when, rc);
	rc = ag_status(out, outlen);
	agent2 = (long)ag_jint(out, "pid", -1);
	hl_ok(rc == 0 && ag_jis(out, "boot", "restarted") && agent2 > 0 && agent2 != agent &&
	      ag_jis(out, "fd_store", "keeper"),
	      "%s: status: new agent pid %ld, boot restarted, fd store keeper", when, agent2);
	hl_ok(ag_jint(out, state, -1) == want_sessions, "%s: status: %s = %lld (want %d)", when, state,
	      ag_jint(out, state, -1), want_sessions);
	hl_ok(ag_find_proc("hugelived", "--keeper") == keeper, "%s: the restarted agent uses the same keeper", when);
}

/* Both: kill -9 the agent, restart it (design.md: the keeper holds every fd). */
static inline void ag_crash_and_restart(const char *when, const char *args, int want_sessions, const char *state)
{
	static char out[65536];
	long keeper = -1, agent = ag_kill9_agent(when, &keeper);

	ag_restart_agent(when, args, agent, keeper, want_sessions, state, out, sizeof(out));
}

/*
 * The orchestrated update into the next generation. Only returns if it
 * failed (reported as not ok): on success the machine kexecs meanwhile.
 */
static inline void ag_update(int timeout_s)
{
	static char out[16384];
	const char *initrd = getenv("HUGELIVE_NEXT_INITRD");
	const char *kernel = getenv("HUGELIVE_KERNEL");
	int rc;

	hl_diag("gen %d: orchestrated update into gen %d", hl_gen(), hl_gen() + 1);
	rc = ag_run(out, sizeof(out), -1,
		    "hugelivectl update --kernel %s --initrd %s --reuse-cmdline "
		    "--append hugelive.gen=%d --timeout %d", kernel && *kernel ? kernel : "/boot/bzImage",
		    initrd ? initrd : "/tmp/next-initrd.cpio", hl_gen() + 1, timeout_s);
	if (rc == 0) {
		/* the tool saw the kexec stage; the reboot is on its way */
		for (int i = 0; i < 600; i++)
			usleep(100000);
		hl_ok(false, "update reported success but no kexec happened within 60 s");
		return;
	}
	hl_ok(false, "hugelivectl update exited %d: %s", rc, ag_line_with(out, "hugelivectl:"));
}

/*
 * The update command of a long chain (soak): like ag_update's, but the new
 * command line is /proc/cmdline without its hugelive.gen= words plus
 * hugelive.gen=N+1 (--append alone), so it does not grow by one word per
 * generation (--reuse-cmdline --append would: 100 updates, 1.6 KB). kernel
 * NULL: $HUGELIVE_KERNEL.
 */
static inline void ag_update_cmd(char *cmd, size_t len, const char *kernel, int timeout_s)
{
	const char *initrd = getenv("HUGELIVE_NEXT_INITRD");
	char cl[4096] = "", next[4096] = "";
	size_t o = 0;
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(cl, sizeof(cl), f))
			cl[0] = 0;
		fclose(f);
	}
	for (char *save = NULL, *w = strtok_r(cl, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strncmp(w, "hugelive.gen=", 13) && o + strlen(w) + 2 < sizeof(next))
			o += (size_t)snprintf(next + o, sizeof(next) - o, "%s ", w);
	snprintf(next + o, sizeof(next) - o, "hugelive.gen=%d", hl_gen() + 1);
	if (!kernel)
		kernel = getenv("HUGELIVE_KERNEL");
	snprintf(cmd, len, "hugelivectl update --kernel %s --initrd %s --append '%s' --timeout %d",
		 kernel && *kernel ? kernel : "/boot/bzImage", initrd ? initrd : "/tmp/next-initrd.cpio", next,
		 timeout_s);
}

/*
 * Run that update; its exit status (out: the tool's output). On success
 * (0) the machine kexecs meanwhile: if it has not within 60 s, not ok and
 * -1.
 */
static inline int ag_update_run(const char *kernel, int timeout_s, char *out, size_t outlen)
{
	char cmd[8192];
	int rc;

	ag_update_cmd(cmd, sizeof(cmd), kernel, timeout_s);
	rc = ag_run(out, outlen, -1, "%s", cmd);
	if (rc)
		return rc;
	for (int i = 0; i < 600; i++)
		usleep(100000);
	hl_ok(false, "update reported success but no kexec happened within 60 s");
	return -1;
}

/*
 * An update that the tool or the agent must refuse before anything is
 * loaded or frozen: exit 5, the tool's message names want1 and want2
 * (either may be NULL), and no kernel is loaded afterwards. what: the
 * target, for the TAP lines.
 */
static inline void ag_update_refused(const char *kernel, const char *what, const char *want1, const char *want2)
{
	static char out[65536];
	char cmd[8192];
	int rc;

	ag_update_cmd(cmd, sizeof(cmd), kernel, 60);
	rc = ag_run(out, sizeof(out), -1, "%s", cmd);
	hl_ok(rc == 5 && (!want1 || ag_contains(out, want1)) && (!want2 || ag_contains(out, want2)),
	      "update into %s: refused, exit %d (want 5), message names \"%s\" and \"%s\": %s", what, rc,
	      want1 ? want1 : "", want2 ? want2 : "", ag_line_with(out, "hugelivectl:"));
	hl_ok(hl_read_ll("/sys/kernel/kexec_loaded") == 0, "after the refusal (%s) no kernel is loaded", what);
}

/* ---- client services ------------------------------------------------------ */

/*
 * A client service (run with ag_fork). In the generation before an update
 * (ag_svc_serve): memory filled with the pattern, its own connection and
 * session, token 1 preserved, subscribed to barriers; on "prepare" it
 * writes the update id and a stamp into its header page and answers ready,
 * or refuses the first refuse_updates prepares (checking that the new
 * kernel is loaded meanwhile), then expects "resume", checks its memory and
 * optionally preserves a second token (the session is still usable). With
 * reconnect it survives an agent restart (reconnect, subscribe again).
 * After the update (ag_svc_claim): its session is incoming, every token
 * comes back, is verified word by word, and the session is finished.
 */
struct ag_svc {
	const char *session;
	const char *label;
	bool huge;
	uint64_t size;
	uint64_t seed;
	int uid;		/* run as this uid (-1: root) */
	int refuse_updates;	/* refuse this many prepares first */
	bool token2_after_resume; /* preserve token 2 after a cancelled update */
	bool reconnect;		/* reconnect when the agent goes away */
	int ntokens;		/* claim: tokens to expect (1 or 2) */
	uint64_t prepared;	/* claim: update id the header must name (0: any) */
};

#define AG_TOKEN2_SIZE	(8ULL << 20)

static inline int ag_drop_to(int uid)
{
	if (uid < 0)
		return 0;
	if (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid))
		return -1;
	return getuid() == (uid_t)uid && geteuid() == (uid_t)uid ? 0 : -1;
}

static inline int ag_svc_serve(void *arg)
{
	struct ag_svc *s = arg;
	struct ag_client c = { .fd = -1 };
	struct ag_mem m = { .fd = -1 }, m2 = { .fd = -1 };
	char ev[1024], buf[128];
	int refused = 0, rc;

	if (!ag_ok(!ag_drop_to(s->uid), "%s: running as uid %d", s->session, s->uid < 0 ? 0 : s->uid))
		return 1;
	if (!ag_ok(!ag_mem_new(&m, s->session, s->size, s->huge, s->seed),
		   "%s: %llu MiB %s memfd filled with the pattern", s->session,
		   (unsigned long long)(s->size >> 20), s->huge ? "hugetlb (2 MiB pages)" : "shmem"))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "%s: connected to the agent (%s)", s->session, ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"%s\"", s->session);
	ag_ok(!rc && ag_jint(c.reply, "uid", -1) == (s->uid < 0 ? 0 : s->uid),
	      "%s: hello: agent knows us as uid %lld (%s)", s->session, ag_jint(c.reply, "uid", -1), ag_errname(rc));
	rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"%s\"", s->session);
	if (!ag_ok(!rc, "%s: create session (%s)", s->session, ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, m.fd, NULL, "\"op\":\"preserve\",\"session\":\"%s\",\"token\":1,\"label\":\"%s\"",
		     s->session, s->label ? s->label : s->session);
	if (!ag_ok(!rc, "%s: preserve token 1 (%s)", s->session, ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"subscribe\"");
	if (!ag_ok(!rc, "%s: subscribed to update barriers (%s)", s->session, ag_errname(rc)))
		return 1;
	ag_mark("ready");
	for (;;) {
		rc = ag_event(&c, -1, ev, sizeof(ev));
		if (rc < 0) {
			if (!s->reconnect)
				return 0; /* the kexec (or the agent) ended it */
			ag_close(&c);
			rc = ag_connect(&c, 30000);
			if (!rc)
				rc = ag_call(&c, -1, NULL, "\"op\":\"subscribe\"");
			ag_ok(!rc, "%s: agent connection lost; reconnected and subscribed again (%s)",
			      s->session, ag_res(rc, &c));
			ag_mark("reconnected");
			continue;
		}
		if (!ag_jstr(ev, "event", buf, sizeof(buf)))
			continue;
		unsigned long long id = (unsigned long long)ag_jint(ev, "update", 0);

		if (!strcmp(buf, "prepare")) {
			if (refused < s->refuse_updates) {
				long long loaded = hl_read_ll("/sys/kernel/kexec_loaded");

				refused++;
				ag_hdr(&m)->prepared = id;
				ag_ok(loaded == 1, "%s: prepare for update %llu: the new kernel is loaded (kexec_loaded=%lld); refusing",
				      s->session, id, loaded);
				rc = ag_call(&c, -1, NULL, "\"op\":\"refuse\",\"update\":%llu,\"reason\":\"%s is busy (test refusal)\"",
					     id, s->session);
				ag_ok(!rc, "%s: refuse update %llu accepted by the agent (%s)", s->session, id,
				      ag_res(rc, &c));
			} else {
				ag_hdr(&m)->prepared = id;
				hl_stamp_now(&ag_hdr(&m)->stamp);
				msync(m.p, AG_HDR, MS_SYNC);
				ag_call(&c, -1, NULL, "\"op\":\"ready\",\"update\":%llu", id);
			}
		} else if (!strcmp(buf, "resume")) {
			struct hl_mismatch mm = { 0 };
			char why[300] = "";

			ag_jstr(ev, "reason", why, sizeof(why));
			ag_hdr(&m)->resumed = id;
			ag_ok(id == ag_hdr(&m)->prepared, "%s: resume for update %llu: \"%s\"", s->session, id, why);
			ag_ok(hl_pattern_verify(m.p + AG_HDR, m.size - AG_HDR, AG_HDR, s->seed, &mm),
			      "%s: memory intact after the cancelled update (first bad 0x%llx)", s->session,
			      (unsigned long long)mm.offset);
			if (s->token2_after_resume && !m2.p) {
				ag_ok(!ag_mem_new(&m2, "token2", AG_TOKEN2_SIZE, s->huge, s->seed + 1),
				      "%s: second memfd for token 2", s->session);
				rc = ag_call(&c, m2.fd, NULL,
					     "\"op\":\"preserve\",\"session\":\"%s\",\"token\":2,\"label\":\"after cancel\"",
					     s->session);
				ag_ok(!rc, "%s: session still usable: preserve token 2 after the cancel (%s)",
				      s->session, ag_res(rc, &c));
			}
			ag_mark("resumed");
		}
	}
}

static inline int ag_svc_claim(void *arg)
{
	struct ag_svc *s = arg;
	struct ag_client c = { .fd = -1 };
	char lab[160];
	int rc, fd, ntok = s->ntokens ? s->ntokens : 1;

	if (!ag_ok(!ag_drop_to(s->uid), "%s: running as uid %d", s->session, s->uid < 0 ? 0 : s->uid))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "%s: connected to the agent (%s)", s->session, ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"list\"");
	{
		char want[128];

		snprintf(want, sizeof(want), "\"name\":\"%s\"", s->session);
		ag_ok(!rc && strstr(c.reply, want) && strstr(c.reply, "\"incoming\""),
		      "%s: list shows the session as incoming (%s)", s->session, ag_errname(rc));
	}
	for (int t = 1; t <= ntok; t++) {
		struct ag_mem m;
		char what[96];

		rc = ag_call(&c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d", s->session, t);
		if (!ag_ok(!rc && fd >= 0, "%s: retrieve token %d: got an fd back (%s)", s->session, t,
			   ag_res(rc, &c)))
			return 1;
		ag_ok(ag_jbool(c.reply, "hugetlb") == (int)s->huge && ag_jstr(c.reply, "label", lab, sizeof(lab)),
		      "%s: token %d reply: hugetlb %d, label \"%s\"", s->session, t, ag_jbool(c.reply, "hugetlb"), lab);
		snprintf(what, sizeof(what), "%s token %d", s->session, t);
		if (!ag_mem_verify(fd, what, s->huge, t == 1 ? s->size : AG_TOKEN2_SIZE, s->seed + (uint64_t)t - 1, &m))
			return 1;
		if (t == 1) {
			struct ag_hdr *h = ag_hdr(&m);
			struct hl_stamp now;
			struct hl_elapsed el;

			ag_ok(h->prepared && (!s->prepared || h->prepared == s->prepared),
			      "%s: the header written at prepare (update %llu) crossed the kexec", s->session,
			      (unsigned long long)h->prepared);
			hl_stamp_now(&now);
			if (h->stamp.magic == HL_STAMP_MAGIC) {
				hl_elapsed_since(&h->stamp, &now, &el);
				ag_diag("%s: %.0f ms from answering ready to verified memory in the new kernel",
					s->session, el.tsc_ms);
			}
		}
		munmap(m.p, m.size);
		close(fd);
	}
	rc = ag_call(&c, -1, NULL, "\"op\":\"finish\",\"session\":\"%s\"", s->session);
	ag_ok(!rc, "%s: finish (%s)", s->session, ag_res(rc, &c));
	rc = ag_call(&c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":1", s->session);
	ag_ok(rc == -ENOENT, "%s: retrieve after finish: %s (want ENOENT)", s->session, ag_errname(rc));
	ag_close(&c);
	return 0;
}

#endif
