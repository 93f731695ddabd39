/* SPDX-License-Identifier: MIT */
/*
 * hugelived: the live update agent. Sole owner of /dev/liveupdate; serves
 * clients over a SOCK_SEQPACKET Unix socket (docs/protocol.md) with one
 * non-blocking epoll loop.
 */
#include "agent.h"
#include "../common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

static struct agent *g_agent;
static int listen_tag; /* epoll sentinel */

void agent_log(struct agent *a, int level, const char *fmt, ...)
{
	static const char *const pfx[] = { "<3>", "<6>", "<7>" };
	char buf[1024];
	va_list ap;

	if (a && level > a->verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* sd-daemon prefixes are understood by journald; harmless on a console. */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "%shugelived: %s\n", pfx[level > 2 ? 2 : level], buf);
	else
		fprintf(stderr, "hugelived[%d]: %s\n", (int)getpid(), buf);
}

static void on_signal(int sig)
{
	(void)sig;
	if (g_agent)
		g_agent->quit = 1;
}

/* ---- client output ---------------------------------------------------- */

static void client_arm(struct agent *a, struct client *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == out)
		return;
	c->want_out = out;
	epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_flush(struct agent *a, struct client *c)
{
	while (c->oq_head && !c->dead) {
		struct outpkt *p = c->oq_head;
		ssize_t n = hl_send_packet(c->fd, p->buf, p->len, p->fd, true);

		if (n == -EAGAIN) {
			client_arm(a, c, true);
			return;
		}
		if (n < 0) {
			LOGD(a, "client pid %d: send failed: %s", (int)c->pid, strerror((int)-n));
			client_drop(a, c);
			return;
		}
		c->oq_head = p->next;
		if (!c->oq_head)
			c->oq_tail = NULL;
		c->oq_bytes -= p->len;
		if (p->fd >= 0)
			close(p->fd);
		free(p->buf);
		free(p);
	}
	client_arm(a, c, false);
}

void client_send(struct agent *a, struct client *c, struct json_object *obj, int fd)
{
	struct outpkt *p;
	size_t len;
	char *s;

	if (!c || c->dead) {
		json_object_put(obj);
		if (fd >= 0)
			close(fd);
		return;
	}
	s = hl_json_dump(obj, &len);
	json_object_put(obj);
	p = calloc(1, sizeof(*p));
	if (!s || !p || len > HL_MAX_MSG) {
		free(s);
		free(p);
		if (fd >= 0)
			close(fd);
		LOGE(a, "client pid %d: cannot queue reply, dropping", (int)c->pid);
		client_drop(a, c);
		return;
	}
	p->buf = s;
	p->len = len;
	p->fd = fd;
	if (c->oq_tail)
		c->oq_tail->next = p;
	else
		c->oq_head = p;
	c->oq_tail = p;
	c->oq_bytes += len;
	if (c->oq_bytes > HL_MAX_OUTQ_BYTES) {
		LOGE(a, "client pid %d uid %u does not read its replies; dropping", (int)c->pid,
		     (unsigned)c->uid);
		client_drop(a, c);
		return;
	}
	client_flush(a, c);
}

void client_drop(struct agent *a, struct client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
	agent_client_gone(a, c);
}

static void client_free(struct client *c)
{
	while (c->oq_head) {
		struct outpkt *p = c->oq_head;

		c->oq_head = p->next;
		if (p->fd >= 0)
			close(p->fd);
		free(p->buf);
		free(p);
	}
	close(c->fd);
	free(c);
}

static void reap_clients(struct agent *a)
{
	struct client **pp = &a->clients;

	while (*pp) {
		struct client *c = *pp;

		if (c->dead) {
			*pp = c->next;
			a->nclients--;
			client_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Send an error reply without queueing and drop the client (protocol violation). */
static void client_fatal(struct agent *a, struct client *c, int64_t id, int code, const char *msg)
{
	struct json_object *o = hl_reply_err(id, code, "%s", msg);
	size_t len;
	char *s = hl_json_dump(o, &len);

	json_object_put(o);
	LOGI(a, "client pid %d uid %u: %s (%s); dropping connection", (int)c->pid, (unsigned)c->uid,
	     msg, hl_errno_name(code));
	if (s) {
		/* queued replies first, best effort, never blocking */
		client_flush(a, c);
		if (!c->dead)
			hl_send_packet(c->fd, s, len, -1, true);
	}
	free(s);
	client_drop(a, c);
}

/* ---- client input ----------------------------------------------------- */

static void client_readable(struct agent *a, struct client *c)
{
	static char buf[HL_MAX_MSG + 1];

	/* Bounded work per wakeup so that one chatty client cannot starve others. */
	for (int i = 0; i < 16 && !c->dead; i++) {
		int fd = -1, nfds = 0;
		bool trunc = false;
		ssize_t n = hl_recv_packet(c->fd, buf, sizeof(buf), &fd, &nfds, &trunc, true);
		struct hl_req req;
		char err[256];
		int rc;

		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			if (fd >= 0)
				close(fd);
			LOGD(a, "client pid %d disconnected", (int)c->pid);
			client_drop(a, c);
			return;
		}
		if (trunc || (size_t)n > HL_MAX_MSG) {
			if (fd >= 0)
				close(fd);
			client_fatal(a, c, -1, EMSGSIZE, "message too large or too many fds");
			return;
		}
		if (nfds > HL_MAX_FDS_PER_MSG) {
			if (fd >= 0)
				close(fd);
			client_fatal(a, c, -1, EINVAL, "more than one fd in a message");
			return;
		}
		rc = hl_req_parse(buf, (size_t)n, &req, err, sizeof(err));
		if (rc == EOPNOTSUPP) {
			if (fd >= 0)
				close(fd);
			client_send(a, c, hl_reply_err(req.id, EOPNOTSUPP, "unknown op"), -1);
			continue;
		}
		if (rc) {
			if (fd >= 0)
				close(fd);
			client_fatal(a, c, req.id, rc, err);
			return;
		}
		if (fd >= 0 && req.op != HL_OP_PRESERVE) {
			close(fd);
			hl_req_free(&req);
			client_fatal(a, c, req.id, EINVAL, "fd attached to a message that takes none");
			return;
		}
		agent_handle_request(a, c, &req, fd);
		hl_req_free(&req);
	}
}

/*
 * Until a hello names it, a client is known by its process name (for
 * messages such as "client hugelivectl (pid 74, uid 0) refused: ...").
 */
static void client_name_from_proc(struct client *c)
{
	char path[64], *comm;
	size_t o = 0;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
	comm = hl_read_file(path, 64, NULL);
	if (!comm)
		return;
	for (const char *p = comm; *p && *p != '\n' && o < sizeof(c->name) - 1; p++)
		c->name[o++] = isprint((unsigned char)*p) ? *p : '?';
	c->name[o] = '\0';
	free(comm);
}

static void accept_clients(struct agent *a)
{
	for (;;) {
		int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct client *c;
		struct epoll_event ev;

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
			close(fd);
			continue;
		}
		if (a->nclients >= HL_MAX_CLIENTS) {
			struct json_object *o = hl_reply_err(-1, EAGAIN, "too many clients");
			char *s = hl_json_dump(o, NULL);

			json_object_put(o);
			if (s)
				hl_send_packet(fd, s, strlen(s), -1, true);
			free(s);
			close(fd);
			LOGE(a, "refusing client pid %d: %d clients connected", (int)cr.pid, a->nclients);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
		client_name_from_proc(c);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = a->clients;
		a->clients = c;
		a->nclients++;
		LOGD(a, "client pid %d uid %u connected", (int)c->pid, (unsigned)c->uid);
	}
}

/* ---- setup ------------------------------------------------------------ */

static int mkdir_p(const char *dir, mode_t mode)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int setup_listen(struct agent *a, int inherited)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(a->sock_path)];
	char *slash;
	int fd;

	if (inherited >= 0) {
		a->listen_fd = inherited;
		hl_set_nonblock(inherited, true);
		hl_set_cloexec(inherited, true);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s", a->sock_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			LOGE(a, "cannot create %s: %m", dir);
			return -1;
		}
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->sock_path);
	unlink(a->sock_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		LOGE(a, "cannot listen on %s: %m", a->sock_path);
		close(fd);
		return -1;
	}
	chmod(a->sock_path, a->sock_mode);
	a->listen_fd = fd;
	a->bound_socket = true;
	return 0;
}

static int count_all(struct agent *a)
{
	int k = 0;

	for (struct session *s = a->sessions; s; s = s->next)
		k++;
	return k;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hugelived [options]\n"
		"  --socket PATH          client socket (default " HL_DEFAULT_SOCKET ", $HUGELIVE_SOCKET)\n"
		"  --socket-mode MODE     socket permissions, octal (default 0666)\n"
		"  --device PATH          LUO device (default " HL_DEFAULT_DEVICE ", $HUGELIVE_DEVICE)\n"
		"  --fd-store MODE        auto|systemd|keeper|none: where session fds survive an\n"
		"                         agent restart (default auto: systemd if $NOTIFY_SOCKET)\n"
		"  --keeper-socket PATH   keeper socket (default /run/hugelive/keeper.sock)\n"
		"  --claim-timeout SEC    after an update, time for clients to reclaim (default 300)\n"
		"  --unclaimed POLICY     finish|keep: what to do with unclaimed sessions (default finish)\n"
		"  --daemonize            fork; the parent exits once the socket is ready\n"
		"  -v, --verbose          more logging (repeat for debug)\n"
		"  -q, --quiet            errors only\n"
		"  --version\n"
		"test-only:\n"
		"  --fake-luo SOCKET      use the hugelive-fakeluo server instead of the kernel\n"
		"internal:\n"
		"  --keeper               run as the fd keeper process\n");
}

static int daemon_pipe[2] = { -1, -1 };

static void daemonize(void)
{
	pid_t pid;
	char c;

	if (pipe2(daemon_pipe, O_CLOEXEC) < 0) {
		perror("pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid > 0) {
		close(daemon_pipe[1]);
		if (read(daemon_pipe[0], &c, 1) != 1)
			exit(1);
		exit(c == 'R' ? 0 : 1);
	}
	close(daemon_pipe[0]);
	setsid();
	int nul = open("/dev/null", O_RDWR);

	if (nul >= 0) {
		dup2(nul, 0);
		if (nul > 0)
			close(nul);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "device", required_argument, NULL, 'd' },
		{ "fake-luo", required_argument, NULL, 'F' },
		{ "fd-store", required_argument, NULL, 'S' },
		{ "keeper-socket", required_argument, NULL, 'K' },
		{ "keeper", no_argument, NULL, 'k' },
		{ "claim-timeout", required_argument, NULL, 'c' },
		{ "unclaimed", required_argument, NULL, 'u' },
		{ "daemonize", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct agent *a = calloc(1, sizeof(*a));
	const char *device = getenv("HUGELIVE_DEVICE");
	const char *sock = getenv("HUGELIVE_SOCKET");
	const char *fake = NULL, *fdstore = "auto";
	bool keeper = false, do_daemon = false;
	int inherited_listen = -1, opt, nrestored = 0;

	if (!a)
		return 1;
	g_agent = a;
	a->dev = a->listen_fd = a->state_sess = a->state_mfd = a->keeper_fd = -1;
	a->sock_mode = 0666;
	a->claim_timeout_s = 300;
	a->next_update_id = 1;
	a->start_ms = hl_now_ms();
	a->verbose = 1;
	snprintf(a->keeper_path, sizeof(a->keeper_path), "/run/hugelive/keeper.sock");
	while ((opt = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'm': a->sock_mode = (unsigned)strtoul(optarg, NULL, 8) & 0777; break;
		case 'd': device = optarg; break;
		case 'F': fake = optarg; break;
		case 'S': fdstore = optarg; break;
		case 'K': snprintf(a->keeper_path, sizeof(a->keeper_path), "%s", optarg); break;
		case 'k': keeper = true; break;
		case 'c': a->claim_timeout_s = atoi(optarg); break;
		case 'u':
			if (!strcmp(optarg, "finish"))
				a->unclaimed = UNCLAIMED_FINISH;
			else if (!strcmp(optarg, "keep"))
				a->unclaimed = UNCLAIMED_KEEP;
			else {
				usage(stderr);
				return 2;
			}
			break;
		case 'D': do_daemon = true; break;
		case 'v': a->verbose++; break;
		case 'q': a->verbose = 0; break;
		case 'V': printf("hugelived %s (protocol %d)\n", HL_VERSION, HL_PROTO_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (keeper)
		return keeper_main(a->keeper_path);

	snprintf(a->sock_path, sizeof(a->sock_path), "%s", sock && *sock ? sock : HL_DEFAULT_SOCKET);
	if (fake)
		hl_backend_fake_init(&a->be, fake);
	else
		hl_backend_luo_init(&a->be, device && *device ? device : HL_DEFAULT_DEVICE);

	if (!strcmp(fdstore, "auto"))
		a->fdstore = getenv("NOTIFY_SOCKET") ? FDSTORE_SYSTEMD : FDSTORE_KEEPER;
	else if (!strcmp(fdstore, "systemd"))
		a->fdstore = FDSTORE_SYSTEMD;
	else if (!strcmp(fdstore, "keeper"))
		a->fdstore = FDSTORE_KEEPER;
	else if (!strcmp(fdstore, "none"))
		a->fdstore = FDSTORE_NONE;
	else {
		usage(stderr);
		return 2;
	}

	if (do_daemon)
		daemonize();

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* systemd socket activation: the listening socket is passed in */
	if (a->fdstore == FDSTORE_SYSTEMD || getenv("LISTEN_FDS")) {
		char **names = NULL;
		int n = sd_listen_fds_with_names(0, &names);

		for (int i = 0; i < n; i++) {
			int fd = SD_LISTEN_FDS_START + i;

			if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0 && inherited_listen < 0)
				inherited_listen = fd;
		}
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}

	/* Take back fds from the keeper / systemd FD store, or open the device. */
	if (fdstore_setup(a, &nrestored) < 0)
		goto fail;
	if (a->dev < 0) {
		a->dev = a->be.open_dev(&a->be);
		if (a->dev < 0) {
			LOGE(a, "cannot open %s: %s%s", a->be.path, strerror(-a->dev),
			     a->dev == -EBUSY ? " (another process owns it; is an agent or keeper running?)" :
			     a->dev == -ENOENT ? " (kernel without LUO, or booted without liveupdate=on)" : "");
			goto fail;
		}
		if (a->fdstore != FDSTORE_NONE)
			fdstore_put(a, "dev", a->dev);
	}
	if (state_init(a) < 0)
		goto fail;
	a->hugetlb_support = a->be.hugetlb_supported(&a->be, a->dev);
	if (setup_listen(a, inherited_listen) < 0)
		goto fail;

	a->ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &listen_tag };

	if (a->ep < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, a->listen_fd, &lev) < 0)
		goto fail;

	LOGI(a, "ready: socket %s, backend %s (%s), boot %s, %d session(s), fd store %s",
	     a->sock_path, a->be.name, a->be.path,
	     a->boot == BOOT_UPDATED ? "after live update" : a->boot == BOOT_RESTARTED ? "agent restart" : "fresh",
	     count_all(a),
	     a->fdstore == FDSTORE_SYSTEMD ? "systemd" : a->fdstore == FDSTORE_KEEPER ? "keeper" : "none");
	sd_notifyf(0, "READY=1\nSTATUS=serving %s", a->sock_path);
	if (daemon_pipe[1] >= 0) {
		if (write(daemon_pipe[1], "R", 1) != 1) {
			/* parent gone; nothing to do */
		}
		close(daemon_pipe[1]);
		daemon_pipe[1] = -1;
	}

	while (!a->quit) {
		struct epoll_event evs[32];
		int64_t dl = agent_next_deadline(a);
		int timeout = -1, n;

		if (dl >= 0) {
			int64_t d = dl - hl_now_ms();

			timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		n = epoll_wait(a->ep, evs, 32, timeout);
		if (n < 0 && errno != EINTR) {
			LOGE(a, "epoll_wait: %m");
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listen_tag) {
				accept_clients(a);
				continue;
			}
			struct client *c = evs[i].data.ptr;

			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				client_flush(a, c);
			if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				client_readable(a, c);
		}
		agent_tick(a);
		reap_clients(a);
	}
	LOGI(a, "exiting (%s)", a->exit_after_kexec ? "fake kexec done" : "signal");
	sd_notify(0, "STOPPING=1");
	for (struct client *c = a->clients; c; c = c->next)
		client_flush(a, c);
	if (a->bound_socket)
		unlink(a->sock_path);
	/*
	 * Session fds are deliberately not finished or dropped: the keeper or
	 * the systemd FD store still holds them, so a restarted agent finds
	 * every session intact.
	 */
	return a->exit_code;
fail:
	if (daemon_pipe[1] >= 0) {
		if (write(daemon_pipe[1], "F", 1) != 1) {
		}
	}
	sd_notifyf(0, "STATUS=failed to start\nERRNO=%d", errno);
	return 1;
}
