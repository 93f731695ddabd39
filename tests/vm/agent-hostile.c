// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=600 userspace=1 cmdline="hugepages=32"
 *
 * A hostile uid on a shared host fails at each of issue 9 items 1-4 on the
 * real kernel, while root's update carries root's hugetlb memory.
 *
 * gen 0: hugelived --daemonize (keeper fd store). Root's service "vault"
 *        keeps 32 MiB in a hugetlb memfd (2 MiB pages) as token 1 and a
 *        64 KiB shmem "log" memfd as token 2, subscribes, reconnects when
 *        the agent restarts. Then uid 1000, one child per attack:
 *   item 4: opens 256 connections and keeps them idle: 32 are admitted,
 *        224 get EAGAIN "too many connections"; meanwhile root's
 *        `hugelivectl status` and a raw root connection still work, quickly.
 *   item 1: attaches to a `status` request a TCP socket with SO_LINGER 60 s
 *        and unsent data in its send queue (the peer never reads), and
 *        closes its own copy: the agent answers EINVAL "fd attached to a
 *        message that takes none" and drops the connection; root's status
 *        then answers within 3 s (a close in the loop would block 60 s).
 *        The VM's debug kernel has no CONFIG_INET (nor FUSE): there an
 *        AF_UNIX stream socket with unread data stands in, which the agent
 *        must refuse the same way but whose close does not block, so the
 *        blocking close itself is shown by the host test (t_passed_fds).
 *        On preserve: a pipe and the TCP socket -> EINVAL, a read-only
 *        reopen of its own memfd -> EBADF, root's memfd (inherited across
 *        the fork) -> EPERM; its own read-write memfd -> ok.
 *   item 2: grows the state inside its quota: 9 sessions x 128 memfds
 *        with 128-character labels. Every request succeeds; then root's
 *        own create/preserve/destroy still work, state_seq advanced, and
 *        after kill -9 of the agent and a restart root's vault is listed
 *        with both tokens and labels (not adopted), uid 1000's 9 sessions
 *        with 128 fds each, nothing in status.report. uid 1000 destroys
 *        them.
 *   item 3: uid 1000, owning no session, subscribes; during root's update
 *        it gets prepare with "counted": false and its refusal is EPERM
 *        "owns no session". Its TAP lines go into vault's log memfd
 *        (mapped before the fork), because the update does not wait for
 *        it; vault answers ready only after the refusal was answered.
 *        `hugelivectl update` kexecs.
 * gen 1: hugelived: boot updated, last_update names update 1 (kexec), so
 *        the refusal cancelled nothing. Root retrieves vault: every word
 *        of the 32 MiB hugetlb memfd verifies; the log memfd brings the
 *        hostile client's refusal results across the kexec (relayed as
 *        TAP). Finish; the 2M pool is whole again.
 */
#include "lib/agent.h"

#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#define USER		1000
#define NR_HUGE		32LL
#define VAULT_SIZE	(32ULL << 20)
#define VAULT_SEED	0x7661756c7448ULL
#define LOG_SIZE	(64ULL << 10)
#define HOG_SESSIONS	9
#define HOG_FDS		128
#define PER_UID		32	/* HL_MAX_CLIENTS_PER_UID */

static char out[65536];
static char *logp;		/* vault's log memfd, shared with the children */
static int log_fd = -1;

/* ---- the log memfd: lines a child writes for the next generation ------- */

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
	size_t o = strnlen(logp, LOG_SIZE - 1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(logp + o, LOG_SIZE - 1 - o, fmt, ap);
	va_end(ap);
	o = strnlen(logp, LOG_SIZE - 1);
	if (o + 1 < LOG_SIZE) {
		logp[o] = '\n';
		logp[o + 1] = 0;
	}
	msync(logp, LOG_SIZE, MS_SYNC);
}

/* ---- root's service ------------------------------------------------------ */

static int vault_subscribe(struct ag_client *c, bool first)
{
	int rc = ag_call(c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"vault\"");

	if (!rc)
		rc = ag_call(c, -1, NULL, "\"op\":\"subscribe\"");
	ag_ok(!rc, "vault: %s and subscribed (%s)", first ? "connected" : "reconnected after the agent restart",
	      ag_res(rc, c));
	return rc;
}

static int vault_serve(void *arg)
{
	struct ag_client c = { .fd = -1 };
	struct ag_mem m = { .fd = -1 };
	char ev[1024], buf[64];
	int rc;

	(void)arg;
	if (!ag_ok(!ag_mem_new(&m, "vault", VAULT_SIZE, true, VAULT_SEED),
		   "vault: 32 MiB hugetlb memfd (2 MiB pages) filled with the pattern"))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "vault: connected (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"vault\"");
	if (!ag_ok(!rc, "vault: create session (%s)", ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, m.fd, NULL, "\"op\":\"preserve\",\"session\":\"vault\",\"token\":1,\"label\":\"vault hugetlb\"");
	if (!ag_ok(!rc, "vault: preserve token 1, the hugetlb memfd (%s)", ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, log_fd, NULL, "\"op\":\"preserve\",\"session\":\"vault\",\"token\":2,\"label\":\"hostile log\"");
	if (!ag_ok(!rc, "vault: preserve token 2, the log memfd (%s)", ag_res(rc, &c)))
		return 1;
	if (vault_subscribe(&c, true))
		return 1;
	ag_mark("ready");
	for (;;) {
		rc = ag_event(&c, -1, ev, sizeof(ev));
		if (rc < 0) {
			ag_close(&c);
			if (ag_connect(&c, 30000) || vault_subscribe(&c, false))
				return 0; /* the kexec ended it (or the agent is gone for good) */
			ag_mark("reconnected");
			continue;
		}
		if (!ag_jstr(ev, "event", buf, sizeof(buf)) || strcmp(buf, "prepare"))
			continue;
		unsigned long long id = (unsigned long long)ag_jint(ev, "update", 0);
		uint64_t end = ag_ms() + 20000;

		/* let the hostile client refuse first: the update must survive it */
		while (!strstr(logp, "M refused") && ag_ms() < end)
			usleep(20000);
		ag_hdr(&m)->prepared = id;
		hl_stamp_now(&ag_hdr(&m)->stamp);
		msync(m.p, AG_HDR, MS_SYNC);
		ag_call(&c, -1, NULL, "\"op\":\"ready\",\"update\":%llu", id);
	}
}

/* ---- item 4: 256 idle connections ------------------------------------------ */

static int flood(void *arg)
{
	static int conns[256];
	int admitted = 0, refused = 0, other = 0;
	char line[8];

	(void)arg;
	if (!ag_ok(!ag_drop_to(USER), "flood: running as uid %d", USER))
		return 1;
	for (int i = 0; i < 256; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		strcpy(sa.sun_path, AG_SOCK);
		conns[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (conns[i] >= 0 && connect(conns[i], (struct sockaddr *)&sa, sizeof(sa))) {
			close(conns[i]);
			conns[i] = -1;
		}
	}
	usleep(1500 * 1000);
	for (int i = 0; i < 256; i++) {
		struct pollfd pf = { .fd = conns[i], .events = POLLIN };
		char b[1024];
		ssize_t n;

		if (conns[i] < 0) {
			other++;
			continue;
		}
		if (poll(&pf, 1, 0) != 1) {
			admitted++;
			continue;
		}
		n = recv(conns[i], b, sizeof(b) - 1, MSG_DONTWAIT);
		b[n > 0 ? n : 0] = 0;
		if (n > 0 && ag_jint(b, "code", 0) == EAGAIN && ag_contains(b, "too many connections"))
			refused++;
		else
			other++;
	}
	ag_ok(admitted == PER_UID && refused == 256 - PER_UID,
	      "flood: uid %d opened 256 connections: %d admitted and idle, %d refused with EAGAIN "
	      "\"too many connections\", %d other", USER, admitted, refused, other);
	ag_mark("holding");
	/* hold them until the parent says so (a line on stdin) */
	if (read(0, line, sizeof(line)) < 0) {
		/* parent gone */
	}
	return 0;
}

/* ---- item 1: passed fds ------------------------------------------------------ */

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (s < 0)
		return -1;
	strcpy(ifr.ifr_name, "lo");
	rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (!rc && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc;
}

/*
 * A connected TCP socket with SO_LINGER 60 s and data stuck in its send
 * queue: the peer (listener, kept in *lfd, never accepting or reading)
 * has a tiny receive buffer; its close() blocks for the linger time.
 * Kernels without CONFIG_INET (the VM's debug kernel) get an AF_UNIX
 * stream socket whose peer (*lfd) never reads instead: also an fd the
 * agent must refuse on status, but its close does not block (*tcp false).
 * Returns the socket; *queued the bytes unsent (or unread).
 */
static int lingering_socket(int *lfd, int *queued, bool *tcp)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct linger lg = { .l_onoff = 1, .l_linger = 60 };
	int small = 4096, s;
	char chunk[4096];

	memset(chunk, 'x', sizeof(chunk));
	*tcp = true;
	*lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0 && errno == EAFNOSUPPORT) {
		int sv[2];

		*tcp = false;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
			return -1;
		*lfd = sv[1];
		s = sv[0];
		while (write(s, chunk, sizeof(chunk)) > 0)
			;
		*queued = 0;
		if (ioctl(sv[1], FIONREAD, queued))
			*queued = -1;
		fcntl(s, F_SETFL, 0);
		return s;
	}
	if (*lfd < 0 || setsockopt(*lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) ||
	    bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(*lfd, 4) ||
	    getsockname(*lfd, (struct sockaddr *)&sa, &sl))
		return -1;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) ||
	    connect(s, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	fcntl(s, F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 4096 && write(s, chunk, sizeof(chunk)) > 0; i++)
		;
	usleep(200000);
	if (ioctl(s, SIOCOUTQ, queued))
		*queued = -1;
	fcntl(s, F_SETFL, 0);
	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		return -1;
	return s;
}

static int badfds(void *arg)
{
	int root_mfd = (int)(long)arg, lfd = -1, lfd2 = -1, queued = 0, tcp, rc, p[2], mfd, ro;
	bool is_tcp;
	struct ag_client c = { .fd = -1 };
	char path[64];

	if (!ag_ok(!ag_drop_to(USER), "badfds: running as uid %d", USER))
		return 1;
	tcp = lingering_socket(&lfd, &queued, &is_tcp);
	if (!is_tcp)
		ag_diag("badfds: this kernel has no CONFIG_INET: an AF_UNIX stream socket with unread data "
			"stands in for the lingering TCP socket (its close does not block)");
	if (!ag_ok(tcp >= 0 && queued > 0, "badfds: %s with %d bytes %s", is_tcp ?
		   "TCP socket with SO_LINGER 60 s" : "AF_UNIX stream socket", queued, is_tcp ? "unsent" : "unread"))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "badfds: connected (%s)", ag_errname(rc)))
		return 1;
	{
		/* the agent holds the only reference once our copy is closed */
		int dup_tcp = dup(tcp);

		close(tcp);
		rc = ag_call(&c, dup_tcp, NULL, "\"op\":\"status\"");
		close(dup_tcp);
	}
	ag_ok(rc == -EINVAL && ag_contains(c.err, "takes none"),
	      "badfds: status with the socket attached -> %s (want EINVAL \"takes none\")", ag_res(rc, &c));
	{
		char b[256];
		int fd;
		struct pollfd pf = { .fd = c.fd, .events = POLLIN };
		ssize_t n = poll(&pf, 1, 3000) == 1 ? ag_recv(&c, b, sizeof(b), &fd) : -ETIMEDOUT;

		ag_ok(n == 0 || n == -ECONNRESET, "badfds: ... and the agent dropped the connection (%zd)", n);
	}
	ag_close(&c);
	ag_mark("lingering-sent");
	/* keep the listener: the data stays unsent while the parent checks root's status */
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "badfds: connected again (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"fds\"");
	ag_ok(!rc, "badfds: create session fds (%s)", ag_res(rc, &c));
	if (pipe2(p, O_CLOEXEC))
		return 1;
	rc = ag_call(&c, p[0], NULL, "\"op\":\"preserve\",\"session\":\"fds\",\"token\":1");
	ag_ok(rc == -EINVAL, "badfds: preserve a pipe -> %s (want EINVAL)", ag_res(rc, &c));
	tcp = lingering_socket(&lfd2, &queued, &is_tcp);
	rc = ag_call(&c, tcp, NULL, "\"op\":\"preserve\",\"session\":\"fds\",\"token\":1");
	ag_ok(tcp >= 0 && rc == -EINVAL, "badfds: preserve a%s socket -> %s (want EINVAL)", is_tcp ? " TCP" : "n AF_UNIX",
	      ag_res(rc, &c));
	mfd = hl_memfd("own", 1 << 20, MFD_ALLOW_SEALING);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	rc = ag_call(&c, ro, NULL, "\"op\":\"preserve\",\"session\":\"fds\",\"token\":1");
	ag_ok(ro >= 0 && rc == -EBADF, "badfds: preserve a read-only reopen of its own memfd -> %s (want EBADF)",
	      ag_res(rc, &c));
	rc = ag_call(&c, root_mfd, NULL, "\"op\":\"preserve\",\"session\":\"fds\",\"token\":1");
	ag_ok(rc == -EPERM && ag_contains(c.err, "belongs to uid 0"),
	      "badfds: preserve root's memfd (inherited across the fork) -> %s (want EPERM)", ag_res(rc, &c));
	rc = ag_call(&c, mfd, NULL, "\"op\":\"preserve\",\"session\":\"fds\",\"token\":1");
	ag_ok(!rc, "badfds: its own read-write memfd is accepted (%s)", ag_res(rc, &c));
	rc = ag_call(&c, -1, NULL, "\"op\":\"destroy\",\"session\":\"fds\"");
	ag_ok(!rc, "badfds: destroy session fds (%s)", ag_res(rc, &c));
	ag_close(&c);
	close(p[0]);
	close(p[1]);
	close(tcp);
	close(mfd);
	close(ro);
	close(lfd);
	close(lfd2);
	return 0;
}

/* ---- item 2: state growth ---------------------------------------------------- */

static int hog(void *arg)
{
	struct ag_client c = { .fd = -1 };
	char label[HOG_FDS + 1];
	int rc, failed = 0, first_rc = 0, done = 0;
	uint64_t t0 = ag_ms();

	(void)arg;
	if (!ag_ok(!ag_drop_to(USER), "hog: running as uid %d", USER))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "hog: connected (%s)", ag_errname(rc)))
		return 1;
	for (int s = 1; s <= HOG_SESSIONS; s++) {
		rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"hog%d\"", s);
		if (rc) {
			failed++;
			first_rc = first_rc ? first_rc : rc;
			continue;
		}
		for (int t = 1; t <= HOG_FDS; t++) {
			int mfd = hl_memfd("hog", 4096, MFD_ALLOW_SEALING);

			snprintf(label, sizeof(label), "%03d-%03d-", s, t);
			memset(label + 8, 'a' + (t % 26), sizeof(label) - 9);
			label[sizeof(label) - 1] = 0;
			rc = ag_call(&c, mfd, NULL, "\"op\":\"preserve\",\"session\":\"hog%d\",\"token\":%d,\"label\":\"%s\"",
				     s, t, label);
			close(mfd);
			if (rc) {
				if (!first_rc)
					ag_diag("hog: hog%d token %d: %s", s, t, ag_res(rc, &c));
				failed++;
				first_rc = first_rc ? first_rc : rc;
			} else {
				done++;
			}
		}
	}
	ag_ok(!failed && done == HOG_SESSIONS * HOG_FDS,
	      "hog: %d sessions x %d memfds with %d-character labels preserved: %d ok, %d failed (first %s), %llu ms",
	      HOG_SESSIONS, HOG_FDS, HOG_FDS, done, failed, ag_errname(first_rc),
	      (unsigned long long)(ag_ms() - t0));
	ag_close(&c);
	return 0;
}

/* Root: count uid 1000's sessions and fds with a paged list. */
static void count_user_sessions(int *nsess, int *nfds, int *full)
{
	struct ag_client c = { .fd = -1 };
	char after[64] = "";
	int rc;

	*nsess = *nfds = *full = 0;
	if (ag_connect(&c, 5000))
		return;
	for (int page = 0; page < 64; page++) {
		rc = ag_call(&c, -1, NULL, "\"op\":\"list\",\"uid\":%d%s%s", USER, after[0] ? ",\"after\":" : "", after);
		if (rc)
			break;
		for (const char *p = c.reply; (p = strstr(p, "\"kname\"")); p++)
			(*nsess)++;
		for (const char *p = c.reply; (p = strstr(p, "\"token\"")); p++)
			(*nfds)++;
		for (const char *p = c.reply; (p = strstr(p, "\"label\":\"")); p++)
			if (strcspn(p + 9, "\"") == HOG_FDS)
				(*full)++;
		if (ag_jbool(c.reply, "more") != 1)
			break;
		const char *n = ag_jfind(c.reply, "next");

		if (!n)
			break;
		snprintf(after, sizeof(after), "%.*s", (int)strcspn(n, ",}"), n);
	}
	ag_close(&c);
}

/* ---- item 3: subscribe and refuse without a session --------------------- */

static int vetoer(void *arg)
{
	struct ag_client c = { .fd = -1 };
	char ev[1024], buf[64];
	int rc;

	(void)arg;
	if (!ag_ok(!ag_drop_to(USER), "vetoer: running as uid %d", USER))
		return 1;
	rc = ag_connect(&c, 10000);
	if (!rc)
		rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"vetoer\"");
	if (!rc)
		rc = ag_call(&c, -1, NULL, "\"op\":\"subscribe\"");
	if (!ag_ok(!rc, "vetoer: uid %d (no session) connected and subscribed (%s)", USER, ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"list\"");
	ag_ok(!rc && !ag_contains(c.reply, "\"kname\""), "vetoer: it owns no session (list: %s)", ag_errname(rc));
	ag_mark("subscribed");
	/* from here on the update is under way: results go to the log memfd */
	for (;;) {
		rc = ag_event(&c, 60000, ev, sizeof(ev));
		if (rc <= 0) {
			log_line("T 0 vetoer: no prepare event within 60 s (%d)", rc);
			return 1;
		}
		if (ag_jstr(ev, "event", buf, sizeof(buf)) && !strcmp(buf, "prepare"))
			break;
	}
	unsigned long long id = (unsigned long long)ag_jint(ev, "update", 0);

	log_line("T %d vetoer: got prepare for update %llu with \"counted\": false (counted=%d)",
		 ag_jbool(ev, "counted") == 0, id, ag_jbool(ev, "counted"));
	rc = ag_call(&c, -1, NULL, "\"op\":\"refuse\",\"update\":%llu,\"reason\":\"hostile veto\"", id);
	log_line("T %d vetoer: refuse update %llu -> %s (want EPERM \"owns no session\")",
		 rc == -EPERM && ag_contains(c.err, "owns no session"), id, ag_res(rc, &c));
	log_line("M refused");
	/* the kexec ends us */
	for (;;)
		if (ag_event(&c, -1, ev, sizeof(ev)) < 0)
			return 0;
}

/* ---- generations ------------------------------------------------------------ */

/* Root's status, timed; true if it answered ok within ms. */
static bool root_status_within(const char *when, int ms)
{
	uint64_t t0 = ag_ms();
	int rc = ag_status(out, sizeof(out));
	uint64_t dt = ag_ms() - t0;

	return hl_ok(rc == 0 && ag_jint(out, "pid", -1) > 0 && dt < (uint64_t)ms,
		     "%s: root's hugelivectl status answered in %llu ms (exit %d, want < %d ms)", when,
		     (unsigned long long)dt, rc, ms);
}

static void gen0(void)
{
	struct ag_child vault, fl, bf, hg, vt;
	int rc, root_mfd, inpipe[2], nsess, nfds, full;
	long long seq0, agent, agent2;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;
	if (lo_up())
		hl_diag("no loopback interface up (%s): item 1 uses an AF_UNIX socket", strerror(errno));
	log_fd = hl_memfd("hostile-log", LOG_SIZE, MFD_ALLOW_SEALING);
	logp = log_fd >= 0 ? hl_map(log_fd, LOG_SIZE) : NULL;
	if (!hl_ok(logp != NULL, "log memfd of %llu KiB mapped", LOG_SIZE >> 10))
		return;
	memset(logp, 0, LOG_SIZE);
	ag_fork(&vault, "vault", vault_serve, NULL);
	if (!hl_ok(ag_relay(&vault, "ready", 60000), "vault is up: preserved and subscribed"))
		return;

	/* item 4 */
	if (pipe2(inpipe, O_CLOEXEC))
		return;
	fflush(NULL);
	{
		pid_t p;

		memset(&fl, 0, sizeof(fl));
		fl.name = "flood";
		{
			int rp[2];

			if (pipe2(rp, O_CLOEXEC))
				return;
			p = fork();
			if (p == 0) {
				close(rp[0]);
				close(inpipe[1]);
				dup2(inpipe[0], 0);
				ag_rep_fd = rp[1];
				_exit(flood(NULL));
			}
			close(rp[1]);
			close(inpipe[0]);
			fl.pid = p;
			fl.fd = rp[0];
		}
	}
	if (hl_ok(ag_relay(&fl, "holding", 60000), "item 4: uid %d holds its connections", USER)) {
		struct ag_client c = { .fd = -1 };
		uint64_t t0 = ag_ms();

		root_status_within("item 4, 32 idle uid 1000 connections open", 3000);
		rc = ag_connect(&c, 2000);
		if (!rc)
			rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"root-probe\"");
		hl_ok(!rc && ag_jint(c.reply, "uid", -1) == 0, "item 4: a raw root connection is admitted: hello %s (%llu ms)",
		      ag_res(rc, &c), (unsigned long long)(ag_ms() - t0));
		ag_close(&c);
		rc = ag_status(out, sizeof(out));
		hl_ok(rc == 0 && ag_jint(out, "clients", -1) >= 32, "item 4: status counts %lld clients",
		      ag_jint(out, "clients", -1));
	}
	if (write(inpipe[1], "x\n", 2) != 2)
		hl_diag("flood: could not release it");
	close(inpipe[1]);
	hl_ok(ag_wait_child(&fl, 30000) == 0, "item 4: the flood child closed its connections");

	/* item 1 */
	root_mfd = hl_memfd("root-private", 1 << 20, MFD_ALLOW_SEALING);
	ag_fork(&bf, "badfds", badfds, (void *)(long)root_mfd);
	if (hl_ok(ag_relay(&bf, "lingering-sent", 60000), "item 1: uid %d passed the socket on status", USER))
		root_status_within("item 1, right after the socket on status", 3000);
	hl_ok(ag_wait_child(&bf, 60000) == 0, "item 1: the bad-fd child finished");
	close(root_mfd);
	root_status_within("item 1, after the bad fds", 3000);

	/* item 2 */
	ag_status(out, sizeof(out));
	seq0 = ag_jint(out, "state_seq", -1);
	ag_fork(&hg, "hog", hog, NULL);
	hl_ok(ag_wait_child(&hg, 400000) == 0, "item 2: the hog child finished");
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "state_seq", -1) >= seq0 + HOG_SESSIONS * (HOG_FDS + 1),
	      "item 2: state_seq %lld -> %lld: every request was saved", seq0, ag_jint(out, "state_seq", -1));
	hl_ok(rc == 0 && !ag_contains(out, "\"problem\""), "item 2: status.report has no problem entry");
	{
		struct ag_client c = { .fd = -1 };
		int m = hl_memfd("after-growth", 1 << 20, MFD_ALLOW_SEALING);

		rc = ag_connect(&c, 5000);
		if (!rc)
			rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"after-growth\"");
		if (!rc)
			rc = ag_call(&c, m, NULL, "\"op\":\"preserve\",\"session\":\"after-growth\",\"token\":1");
		if (!rc)
			rc = ag_call(&c, -1, NULL, "\"op\":\"destroy\",\"session\":\"after-growth\"");
		hl_ok(!rc, "item 2: root's create, preserve, destroy still work after the growth (%s)", ag_res(rc, &c));
		ag_close(&c);
		close(m);
	}
	agent = ag_agent_pid();
	rc = ag_run(NULL, 0, -1, "kill -9 %lld", agent);
	for (uint64_t end = ag_ms() + 10000; ag_alive(agent) && ag_ms() < end;)
		usleep(50000);
	hl_ok(agent > 0 && rc == 0 && !ag_alive(agent), "item 2: kill -9 the agent (pid %lld)", agent);
	rc = ag_start_agent(NULL);
	rc = rc ? rc : ag_status(out, sizeof(out));
	agent2 = ag_jint(out, "pid", -1);
	hl_ok(rc == 0 && ag_jis(out, "boot", "restarted") && agent2 != agent && !ag_contains(out, "adopted"),
	      "item 2: the agent restarted (pid %lld, boot restarted), nothing adopted without bookkeeping", agent2);
	hl_ok(ag_relay(&vault, "reconnected", 30000), "item 2: vault reconnected and subscribed again");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl sessions --uid 0");
	hl_ok(rc == 0 && ag_contains(out, "vault") && ag_contains(out, "vault hugetlb[hugetlb]") &&
	      ag_contains(out, "hostile log"),
	      "item 2: root's vault survived the restart with both tokens and labels (exit %d)", rc);
	count_user_sessions(&nsess, &nfds, &full);
	hl_ok(nsess == HOG_SESSIONS && nfds == HOG_SESSIONS * HOG_FDS && full == nfds,
	      "item 2: uid %d's %d sessions with %d fds and full labels survived the restart (want %d, %d)", USER,
	      nsess, nfds, HOG_SESSIONS, HOG_SESSIONS * HOG_FDS);
	rc = ag_run_as(USER, out, sizeof(out), -1, 120,
		       "for i in 1 2 3 4 5 6 7 8 9; do hugelivectl destroy --session hog$i || exit 1; done");
	hl_ok(rc == 0, "item 2: uid %d destroys its 9 sessions (exit %d)", USER, rc);

	/* item 3 */
	ag_fork(&vt, "vetoer", vetoer, NULL);
	if (!hl_ok(ag_relay(&vt, "subscribed", 30000), "item 3: uid %d subscribed without a session", USER))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "subscribers", -1) == 2 && ag_jint(out, "outgoing_sessions", -1) == 1,
	      "status before the update: 2 subscribers, 1 outgoing session (vault) (%lld, %lld)",
	      ag_jint(out, "subscribers", -1), ag_jint(out, "outgoing_sessions", -1));
	hl_diag("2M pool before the update: nr %lld free %lld", hl_hp(HL_2M, "nr_hugepages"),
		hl_hp(HL_2M, "free_hugepages"));
	ag_update(60);
}

static void gen1(void)
{
	struct ag_client c = { .fd = -1 };
	struct ag_mem m;
	int rc, fd;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	{
		const char *lu = ag_jfind(out, "last_update");

		hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && lu && ag_jis(lu, "result", "kexec") &&
		      ag_jint(lu, "id", -1) == 1,
		      "item 3: boot updated, last_update is update 1 with result kexec: the refusal cancelled nothing");
	}
	rc = ag_connect(&c, 10000);
	if (!hl_ok(!rc, "root connected (%s)", ag_errname(rc)))
		return;
	rc = ag_call(&c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"vault\",\"token\":1");
	if (hl_ok(!rc && fd >= 0 && ag_jbool(c.reply, "hugetlb") == 1, "vault: retrieve token 1: hugetlb fd (%s)",
		  ag_res(rc, &c))) {
		if (ag_mem_verify(fd, "vault token 1", true, VAULT_SIZE, VAULT_SEED, &m)) {
			hl_ok(ag_hdr(&m)->prepared == 1, "vault: the header written at prepare (update %llu) crossed the kexec",
			      (unsigned long long)ag_hdr(&m)->prepared);
			munmap(m.p, m.size);
		}
		close(fd);
	}
	rc = ag_call(&c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"vault\",\"token\":2");
	if (hl_ok(!rc && fd >= 0 && hl_fd_size(fd) == (long long)LOG_SIZE, "vault: retrieve token 2, the log (%s)",
		  ag_res(rc, &c))) {
		char *p = hl_map(fd, LOG_SIZE);

		if (hl_ok(p != NULL, "log mapped")) {
			p[LOG_SIZE - 1] = 0;
			int n = ag_relay_text(p);

			hl_ok(n == 2 && ag_contains(p, "M refused"),
			      "item 3: the hostile client's %d results crossed the kexec in the log", n);
			munmap(p, LOG_SIZE);
		}
		close(fd);
	}
	rc = ag_call(&c, -1, NULL, "\"op\":\"finish\",\"session\":\"vault\"");
	hl_ok(!rc, "vault: finish (%s)", ag_res(rc, &c));
	ag_close(&c);
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == NR_HUGE && hl_hp(HL_2M, "free_hugepages") == NR_HUGE,
	      "2M pool whole again: nr %lld free %lld (want %lld)", hl_hp(HL_2M, "nr_hugepages"),
	      hl_hp(HL_2M, "free_hugepages"), NR_HUGE);
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
