/* SPDX-License-Identifier: MIT */
/* Event loop and client I/O: see server.h. */
#include "server.h"
#include "closer.h"
#include "log.h"
#include "../common/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/pidfd.h>
#include <unistd.h>

static int listen_tag; /* epoll sentinel */

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#define HL_CAP_SYS_BOOT 22

void server_init(struct server *srv)
{
	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = srv->ep = -1;
	srv->sock_mode = 0666;
	srv->idle_timeout_ms = HL_IDLE_TIMEOUT_S * 1000;
	for (int i = 0; i < SERVER_MAX_WATCH; i++)
		srv->watch[i].fd = -1;
	sigprocmask(SIG_SETMASK, NULL, &srv->run_mask);
}

/* ---- client output ---------------------------------------------------- */

static void client_arm(struct client *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == out)
		return;
	c->want_out = out;
	epoll_ctl(c->srv->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void client_flush(struct client *c)
{
	while (c->oq_head && !c->dead) {
		struct outpkt *p = c->oq_head;
		ssize_t n = hl_send_packet(c->fd, p->buf, p->len, p->fd, true);

		if (n == -EAGAIN) {
			client_arm(c, true);
			return;
		}
		if (n < 0) {
			LOGD("client pid %d: send failed: %s", (int)c->pid, strerror((int)-n));
			client_drop(c);
			return;
		}
		c->oq_head = p->next;
		if (!c->oq_head)
			c->oq_tail = NULL;
		c->oq_bytes -= p->len;
		if (p->fd >= 0)
			closer_close(p->fd);
		free(p->buf);
		free(p);
	}
	client_arm(c, false);
}

void client_send(struct client *c, struct json_object *obj, int fd)
{
	struct outpkt *p;
	size_t len;
	char *s;

	if (!c || c->dead) {
		json_object_put(obj);
		if (fd >= 0)
			closer_close(fd);
		return;
	}
	s = hl_json_dump(obj, &len);
	if (s && len > HL_MAX_MSG && fd < 0) {
		/* a bug in a handler, not the client's fault: say so instead of dropping */
		struct json_object *e = hl_reply_err(hl_jint(obj, "id", -1), EMSGSIZE,
						     "reply of %zu bytes exceeds the %d-byte message limit", len, HL_MAX_MSG);

		LOGE("reply of %zu bytes to pid %d exceeds the message limit", len, (int)c->pid);
		free(s);
		s = hl_json_dump(e, &len);
		json_object_put(e);
	}
	json_object_put(obj);
	p = calloc(1, sizeof(*p));
	if (!s || !p || len > HL_MAX_MSG) {
		free(s);
		free(p);
		if (fd >= 0)
			closer_close(fd);
		LOGE("client pid %d: cannot queue reply, dropping", (int)c->pid);
		client_drop(c);
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
		LOGE("client pid %d uid %u does not read its replies; dropping", (int)c->pid, (unsigned)c->uid);
		client_drop(c);
		return;
	}
	client_flush(c);
}

void client_drop(struct client *c)
{
	struct server *srv = c->srv;

	if (c->dead)
		return;
	c->dead = true;
	epoll_ctl(srv->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (srv->ops && srv->ops->gone)
		srv->ops->gone(srv->ctx, c);
}

static void client_free(struct client *c)
{
	while (c->oq_head) {
		struct outpkt *p = c->oq_head;

		c->oq_head = p->next;
		closer_close(p->fd);
		free(p->buf);
		free(p);
	}
	/* its receive queue may hold fds in flight: their release must not run here */
	closer_close(c->fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c);
}

static void reap_clients(struct server *srv)
{
	struct client **pp = &srv->clients;

	while (*pp) {
		struct client *c = *pp;

		if (c->dead) {
			*pp = c->next;
			srv->nclients--;
			client_free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Send an error reply without queueing and drop the client (protocol violation). */
static void client_fatal(struct client *c, int64_t id, int code, const char *msg)
{
	struct json_object *o = hl_reply_err(id, code, "%s", msg);
	size_t len;
	char *s = hl_json_dump(o, &len);

	json_object_put(o);
	LOGI("client pid %d uid %u: %s (%s); dropping connection", (int)c->pid, (unsigned)c->uid,
	     msg, hl_errno_name(code));
	if (s) {
		/* queued replies first, best effort, never blocking */
		client_flush(c);
		if (!c->dead)
			hl_send_packet(c->fd, s, len, -1, true);
	}
	free(s);
	client_drop(c);
}

/* ---- client input ----------------------------------------------------- */

static void client_readable(struct client *c)
{
	static char buf[HL_MAX_MSG + 1];
	struct server *srv = c->srv;

	/* Bounded work per wakeup so that one chatty client cannot starve others. */
	for (int i = 0; i < 16 && !c->dead; i++) {
		int fds[HL_SCM_MAX_FD], nfds = 0, fd;
		bool trunc = false;
		ssize_t n = hl_recv_packet_fds(c->fd, buf, sizeof(buf), fds, HL_SCM_MAX_FD, &nfds, &trunc, true);
		struct hl_req req;
		char err[256];
		int rc;

		/* Extra fds are never closed here: see closer.h. */
		for (int k = 1; k < nfds; k++)
			closer_close(fds[k]);
		fd = nfds > 0 ? fds[0] : -1;
		if (n == -EAGAIN)
			return;
		c->last_active_ms = hl_now_ms();
		if (n <= 0) {
			closer_close(fd);
			LOGD("client pid %d disconnected", (int)c->pid);
			client_drop(c);
			return;
		}
		if (trunc || (size_t)n > HL_MAX_MSG) {
			closer_close(fd);
			client_fatal(c, -1, EMSGSIZE, "message too large or too many fds");
			return;
		}
		if (nfds > HL_MAX_FDS_PER_MSG) {
			closer_close(fd);
			client_fatal(c, -1, EINVAL, "more than one fd in a message");
			return;
		}
		rc = hl_req_parse(buf, (size_t)n, &req, err, sizeof(err));
		if (rc == EOPNOTSUPP) {
			closer_close(fd);
			client_send(c, hl_reply_err(req.id, EOPNOTSUPP, "unknown op"), -1);
			continue;
		}
		if (rc) {
			closer_close(fd);
			client_fatal(c, req.id, rc, err);
			return;
		}
		if (fd >= 0 && !hl_op_takes_fd(req.op)) {
			closer_close(fd);
			hl_req_free(&req);
			client_fatal(c, req.id, EINVAL, "fd attached to a message that takes none");
			return;
		}
		srv->ops->request(srv->ctx, c, &req, fd);
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

/*
 * May a new connection of uid stay? HL_ROOT_RESERVED_CLIENTS of the
 * HL_MAX_CLIENTS slots are root's alone, and no other uid holds more than
 * HL_MAX_CLIENTS_PER_UID: one user's idle connections cannot lock out root
 * (status, update) or the other users.
 */
static int admit(struct server *srv, uid_t uid, char *why, size_t len)
{
	int mine = 0;

	if (srv->nclients >= HL_MAX_CLIENTS) {
		snprintf(why, len, "too many clients (%d)", HL_MAX_CLIENTS);
		return -EAGAIN;
	}
	if (uid == 0)
		return 0;
	if (srv->nclients >= HL_MAX_CLIENTS - HL_ROOT_RESERVED_CLIENTS) {
		snprintf(why, len, "too many clients (%d; the last %d are reserved for root)",
			 HL_MAX_CLIENTS - HL_ROOT_RESERVED_CLIENTS, HL_ROOT_RESERVED_CLIENTS);
		return -EAGAIN;
	}
	server_for_each_client(srv, k)
		mine += !k->dead && k->uid == uid;
	if (mine >= HL_MAX_CLIENTS_PER_UID) {
		snprintf(why, len, "too many connections from uid %u (%d)", (unsigned)uid, HL_MAX_CLIENTS_PER_UID);
		return -EAGAIN;
	}
	return 0;
}

/*
 * Read and discard what a refused client sent already: closing a socket with
 * unread data resets the peer, which would then not see the error reply.
 */
static void drain(int fd)
{
	char buf[512];

	for (int i = 0; i < 16; i++) {
		int fds[HL_SCM_MAX_FD], nfds = 0;
		bool trunc;
		ssize_t n = hl_recv_packet_fds(fd, buf, sizeof(buf), fds, HL_SCM_MAX_FD, &nfds, &trunc, true);

		for (int k = 0; k < nfds; k++)
			closer_close(fds[k]);
		if (n <= 0)
			return;
	}
}

static bool idle_applies(const struct server *srv, const struct client *c)
{
	return srv->idle_timeout_ms > 0 && !c->dead && !c->subscribed && c->uid != 0;
}

/* Drop idle clients; returns the next idle deadline (ms) or -1. */
static int64_t idle_check(struct server *srv, int64_t now)
{
	int64_t next = -1;

	server_for_each_client(srv, c) {
		int64_t dl;

		if (!idle_applies(srv, c))
			continue;
		dl = c->last_active_ms + srv->idle_timeout_ms;
		if (now >= dl) {
			char msg[96];

			snprintf(msg, sizeof(msg), "idle for %lld s without a request; closing",
				 (long long)(srv->idle_timeout_ms / 1000));
			client_fatal(c, -1, ETIMEDOUT, msg);
		} else if (next < 0 || dl < next) {
			next = dl;
		}
	}
	return next;
}

/*
 * Out of fds (or memory): the pending connection stays in the backlog and
 * the listening socket stays readable, so retrying at once would spin.
 * Take it out of the epoll set for a while (100 ms, doubling up to 1 s).
 */
static void accept_pause(struct server *srv, int err)
{
	srv->accept_backoff_ms = srv->accept_backoff_ms ? srv->accept_backoff_ms * 2 : 100;
	if (srv->accept_backoff_ms > 1000)
		srv->accept_backoff_ms = 1000;
	srv->accept_resume_ms = hl_now_ms() + srv->accept_backoff_ms;
	epoll_ctl(srv->ep, EPOLL_CTL_DEL, srv->listen_fd, NULL);
	LOGE("accept: %s (%d clients connected); not accepting for %lld ms", strerror(err), srv->nclients,
	     (long long)srv->accept_backoff_ms);
}

static void accept_resume(struct server *srv, int64_t now)
{
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &listen_tag };

	if (!srv->accept_resume_ms || now < srv->accept_resume_ms)
		return;
	srv->accept_resume_ms = 0;
	if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &lev) < 0)
		LOGE("cannot watch the listening socket again: %s", strerror(errno));
}

/*
 * The peer's pidfd: SO_PEERPIDFD (Linux 6.5) names the process that
 * connected; on older kernels pidfd_open() right away, which is as good
 * unless that process already died and its pid was reused in between.
 */
static int peer_pidfd(int fd, pid_t pid)
{
	int pfd = -1;
	socklen_t l = sizeof(pfd);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &l) == 0 && pfd >= 0) {
		hl_set_cloexec(pfd, true);
		return pfd;
	}
	pfd = pidfd_open(pid, 0);
	if (pfd >= 0)
		hl_set_cloexec(pfd, true);
	return pfd;
}

int client_has_cap_sys_boot(const struct client *c, char *why, size_t len)
{
	char path[64], *st, *p, ns_self[64] = "", ns_peer[64] = "";
	unsigned long long eff;
	int peer_err, self_err;
	ssize_t n;

	if (c->pidfd < 0) {
		snprintf(why, len, "the agent could not identify the peer process");
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
	st = hl_read_file(path, 8192, NULL);
	p = st ? strstr(st, "\nCapEff:") : NULL;
	if (!p || sscanf(p + 8, "%llx", &eff) != 1) {
		free(st);
		snprintf(why, len, "cannot read the capabilities of pid %d", (int)c->pid);
		return 0;
	}
	free(st);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)c->pid);
	n = readlink(path, ns_peer, sizeof(ns_peer) - 1);
	peer_err = n > 0 ? 0 : errno;
	ns_peer[n > 0 ? n : 0] = '\0';
	n = readlink("/proc/self/ns/user", ns_self, sizeof(ns_self) - 1);
	self_err = n > 0 ? 0 : errno;
	ns_self[n > 0 ? n : 0] = '\0';
	/*
	 * A kernel without CONFIG_USER_NS has no ns/user links at all: there
	 * is only the initial user namespace, so the peer shares the agent's.
	 */
	if (peer_err == ENOENT && self_err == ENOENT)
		strcpy(ns_peer, strcpy(ns_self, "user:[initial]"));
	/* the pidfd still names a live process: the /proc reads were about it, not a reused pid */
	if (pidfd_send_signal(c->pidfd, 0, NULL, 0) < 0) {
		snprintf(why, len, "the requesting process (pid %d) is gone", (int)c->pid);
		return 0;
	}
	if (!ns_peer[0] || strcmp(ns_peer, ns_self)) {
		snprintf(why, len, "pid %d is in another user namespace", (int)c->pid);
		return 0;
	}
	if (!(eff & (1ULL << HL_CAP_SYS_BOOT))) {
		snprintf(why, len, "pid %d lacks CAP_SYS_BOOT", (int)c->pid);
		return 0;
	}
	return 1;
}

static void accept_clients(struct server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), rc;
		char why[128];
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		struct client *c;
		struct epoll_event ev;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_pause(srv, errno);
			return;
		}
		srv->accept_backoff_ms = 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
			closer_close(fd);
			continue;
		}
		if ((rc = admit(srv, cr.uid, why, sizeof(why))) < 0) {
			struct json_object *o = hl_reply_err(-1, -rc, "%s", why);
			char *s = hl_json_dump(o, NULL);

			json_object_put(o);
			if (s)
				hl_send_packet(fd, s, strlen(s), -1, true);
			free(s);
			drain(fd);
			closer_close(fd);
			LOGE("refusing client pid %d uid %u: %s", (int)cr.pid, (unsigned)cr.uid, why);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			closer_close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		c->pidfd = peer_pidfd(fd, cr.pid);
		c->uid = cr.uid;
		c->gid = cr.gid;
		c->pid = cr.pid;
		c->last_active_ms = hl_now_ms();
		client_name_from_proc(c);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			closer_close(fd);
			if (c->pidfd >= 0)
				close(c->pidfd);
			free(c);
			continue;
		}
		c->next = srv->clients;
		srv->clients = c;
		srv->nclients++;
		LOGD("client pid %d uid %u connected", (int)c->pid, (unsigned)c->uid);
	}
}

/* ---- setup and loop --------------------------------------------------- */

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

int server_listen(struct server *srv, int inherited)
{
	char dir[sizeof(srv->sock_path)];
	char *slash;
	int fd, rc;
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &listen_tag };

	if (inherited >= 0) {
		srv->listen_fd = inherited;
		hl_set_nonblock(inherited, true);
		hl_set_cloexec(inherited, true);
	} else {
		snprintf(dir, sizeof(dir), "%s", srv->sock_path);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if ((rc = mkdir_p(dir, 0755)) < 0) {
				LOGE("cannot create %s: %s", dir, strerror(-rc));
				return rc;
			}
		}
		fd = hl_listen_unix(srv->sock_path, srv->sock_mode, 64, true);
		if (fd < 0) {
			LOGE("cannot listen on %s: %s", srv->sock_path, strerror(-fd));
			return fd;
		}
		srv->listen_fd = fd;
		srv->bound_socket = true;
	}
	srv->ep = epoll_create1(EPOLL_CLOEXEC);
	if (srv->ep < 0 || epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &lev) < 0)
		return -errno;
	return 0;
}

int server_watch(struct server *srv, int fd, void (*cb)(void *ctx, int fd), void *ctx)
{
	for (int i = 0; i < SERVER_MAX_WATCH; i++) {
		struct server_watch *w = &srv->watch[i];
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = w };

		if (w->fd >= 0)
			continue;
		if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		w->fd = fd;
		w->cb = cb;
		w->ctx = ctx;
		return 0;
	}
	return -ENOSPC;
}

void server_unwatch(struct server *srv, int fd)
{
	for (int i = 0; i < SERVER_MAX_WATCH; i++)
		if (srv->watch[i].fd == fd && fd >= 0) {
			epoll_ctl(srv->ep, EPOLL_CTL_DEL, fd, NULL);
			srv->watch[i].fd = -1;
		}
}

static struct server_watch *as_watch(struct server *srv, void *ptr)
{
	for (int i = 0; i < SERVER_MAX_WATCH; i++)
		if (ptr == &srv->watch[i])
			return &srv->watch[i];
	return NULL;
}

int server_run(struct server *srv)
{
	while (!srv->quit) {
		struct epoll_event evs[32];
		int64_t dl = srv->ops->next_deadline ? srv->ops->next_deadline(srv->ctx) : -1;
		int64_t now = hl_now_ms(), idl;
		int timeout = -1, n;

		accept_resume(srv, now);
		idl = idle_check(srv, now);
		if (idl >= 0 && (dl < 0 || idl < dl))
			dl = idl;
		if (srv->accept_resume_ms && (dl < 0 || srv->accept_resume_ms < dl))
			dl = srv->accept_resume_ms;
		if (dl >= 0) {
			int64_t d = dl - hl_now_ms();

			timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		n = epoll_pwait(srv->ep, evs, 32, timeout, &srv->run_mask);
		if (n < 0 && errno != EINTR) {
			int e = errno;

			LOGE("epoll_wait: %s", strerror(e));
			return -e;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &listen_tag) {
				accept_clients(srv);
				continue;
			}
			struct server_watch *w = as_watch(srv, evs[i].data.ptr);

			if (w) {
				if (w->fd >= 0)
					w->cb(w->ctx, w->fd);
				continue;
			}
			struct client *c = evs[i].data.ptr;

			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				client_flush(c);
			if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				client_readable(c);
		}
		if (srv->ops->tick)
			srv->ops->tick(srv->ctx);
		reap_clients(srv);
		closer_flush();
	}
	return 0;
}

void server_shutdown(struct server *srv)
{
	server_for_each_client(srv, c)
		client_flush(c);
	if (srv->bound_socket)
		unlink(srv->sock_path);
}
