/* SPDX-License-Identifier: MIT */
/*
 * Crash safety before the update. LUO unpreserves a session when its last
 * fd closes, so the fds must outlive the agent process:
 *  - under systemd: the service FD store (FDSTORE=1 + FDNAME=tag); on
 *    restart sd_listen_fds_with_names() hands them back;
 *  - otherwise: "hugelived --keeper", a tiny detached process spawned at the
 *    agent's first start that holds a copy of /dev/liveupdate, the agent's
 *    own session and state memfd, and every client session fd. A restarted
 *    agent connects to its private socket (0600, peer uid checked both ways)
 *    and gets them back by SCM_RIGHTS.
 * Tags: "dev", "hs"/"hs1" (own session, state copy 0/1), "st"/"st1" (its
 * state memfd), "so-<hex kname>" /
 * "si-<hex kname>" (outgoing / incoming client sessions).
 */
#include "fdstore.h"
#include "log.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

/* ---- tagged fd lists -------------------------------------------------- */

static struct fdtag *tl_find(struct fdtag_list *l, const char *tag)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].tag, tag))
			return &l->v[i];
	return NULL;
}

/* Set tag -> fd. The old fd of the tag is returned (caller closes it if owned), or -1. */
static int tl_set(struct fdtag_list *l, const char *tag, int fd)
{
	struct fdtag *e = tl_find(l, tag);

	if (e) {
		int old = e->fd;

		e->fd = fd;
		return old;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct fdtag *n = realloc(l->v, nc * sizeof(*n));

		if (!n)
			return -2;
		l->v = n;
		l->cap = nc;
	}
	snprintf(l->v[l->n].tag, sizeof(l->v[0].tag), "%.*s", HL_FDTAG_MAX - 1, tag);
	l->v[l->n++].fd = fd;
	return -1;
}

/* Remove tag; returns its fd or -1. */
static int tl_del(struct fdtag_list *l, const char *tag)
{
	struct fdtag *e = tl_find(l, tag);
	int fd;

	if (!e)
		return -1;
	fd = e->fd;
	*e = l->v[--l->n];
	return fd;
}

static void tl_free(struct fdtag_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* ---- keeper process --------------------------------------------------- */

static struct fdtag_list kents;

static void k_put(const char *tag, int fd)
{
	int old = tl_set(&kents, tag, fd);

	if (old >= 0)
		close(old);
	else if (old == -2)
		close(fd);
}

static void k_drop(const char *tag)
{
	int fd = tl_del(&kents, tag);

	if (fd >= 0)
		close(fd);
}

static bool peer_ok(int fd)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return false;
	return cr.uid == 0 || cr.uid == getuid();
}

int keeper_main(const char *path)
{
	int ls;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	ls = hl_listen_unix(path, 0600, 4, false);
	if (ls < 0) {
		fprintf(stderr, "hugelived keeper: cannot bind %s: %s\n", path, strerror(-ls));
		return 1;
	}
	fprintf(stderr, "hugelived keeper[%d]: holding session fds at %s\n", (int)getpid(), path);
	for (;;) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (!peer_ok(c)) {
			close(c);
			continue;
		}
		for (;;) {
			char buf[256];
			int fd = -1;
			bool trunc;
			ssize_t n = hl_recv_packet(c, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);

			if (n <= 0) {
				if (fd >= 0)
					close(fd);
				break; /* agent gone: keep everything, wait for the next one */
			}
			buf[n] = '\0';
			if (!strncmp(buf, "PUT ", 4) && fd >= 0) {
				k_put(buf + 4, fd);
				hl_send_packet(c, "0", 1, -1, false);
			} else if (!strncmp(buf, "DROP ", 5)) {
				if (fd >= 0)
					close(fd);
				k_drop(buf + 5);
				hl_send_packet(c, "0", 1, -1, false);
			} else if (!strcmp(buf, "GETALL")) {
				for (size_t i = 0; i < kents.n; i++) {
					char m[200];
					int l = snprintf(m, sizeof(m), "FD %s", kents.v[i].tag);

					hl_send_packet(c, m, (size_t)l, kents.v[i].fd, false);
				}
				hl_send_packet(c, "END", 3, -1, false);
			} else if (!strcmp(buf, "EXIT")) {
				hl_send_packet(c, "0", 1, -1, false);
				for (size_t i = 0; i < kents.n; i++)
					close(kents.v[i].fd);
				tl_free(&kents);
				unlink(path);
				return 0;
			} else {
				if (fd >= 0)
					close(fd);
				hl_send_packet(c, "-22", 3, -1, false);
			}
		}
		close(c);
	}
}

/* ---- agent side ------------------------------------------------------- */

int fdstore_parse_mode(const char *s, enum fdstore_mode *out)
{
	if (!strcmp(s, "auto"))
		*out = getenv("NOTIFY_SOCKET") ? FDSTORE_SYSTEMD : FDSTORE_KEEPER;
	else if (!strcmp(s, "systemd"))
		*out = FDSTORE_SYSTEMD;
	else if (!strcmp(s, "keeper"))
		*out = FDSTORE_KEEPER;
	else if (!strcmp(s, "none"))
		*out = FDSTORE_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *fdstore_mode_name(const struct fdstore *fs)
{
	switch (fs->mode) {
	case FDSTORE_SYSTEMD: return "systemd";
	case FDSTORE_KEEPER: return fs->keeper_fd >= 0 ? "keeper" : "keeper (not connected)";
	default: return "none";
	}
}

void fdstore_init(struct fdstore *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->keeper_fd = -1;
	snprintf(fs->keeper_path, sizeof(fs->keeper_path), "/run/hugelive/keeper.sock");
}

static int keeper_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(s);
		return -e;
	}
	if (!peer_ok(s)) {
		close(s);
		return -EPERM;
	}
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return s;
}

static int keeper_spawn(struct fdstore *fs)
{
	char dir[sizeof(fs->keeper_path)], *sl;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s", fs->keeper_path);
	sl = strrchr(dir, '/');
	if (sl && sl != dir) {
		*sl = '\0';
		mkdir(dir, 0755);
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		setsid();
		if (fork() == 0) {
			int nul = open("/dev/null", O_RDWR);
			sigset_t none;

			/* the agent blocks SIGTERM outside its event loop; the keeper must not */
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);

			if (nul >= 0) {
				dup2(nul, 0);
				dup2(nul, 1);
			}
			execl("/proc/self/exe", "hugelived", "--keeper", "--keeper-socket", fs->keeper_path,
			      (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	for (int i = 0; i < 300; i++) {
		int s = keeper_connect(fs->keeper_path);

		if (s >= 0)
			return s;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static void keeper_set_fd(struct fdstore *fs, int fd)
{
	int old = fs->keeper_fd;

	if (old == fd)
		return;
	if (fs->keeper_changed)
		fs->keeper_changed(fs->hook_ctx, old, fd);
	fs->keeper_fd = fd;
	if (old >= 0)
		close(old);
}

static int keeper_cmd(struct fdstore *fs, const char *cmd, int fd)
{
	char buf[64];
	int rfd = -1;
	bool trunc;
	ssize_t n;

	if (fs->keeper_fd < 0)
		return -ENOTCONN;
	n = hl_send_packet(fs->keeper_fd, cmd, strlen(cmd), fd, false);
	if (n >= 0)
		n = hl_recv_packet(fs->keeper_fd, buf, sizeof(buf) - 1, &rfd, NULL, &trunc, false);
	if (rfd >= 0)
		close(rfd);
	if (n <= 0) {
		LOGE("lost the fd keeper (%s)", n == 0 ? "EOF" : strerror((int)-n));
		keeper_set_fd(fs, -1);
		return n == 0 ? -EPIPE : (int)n;
	}
	buf[n] = '\0';
	return atoi(buf);
}

static int keeper_put(struct fdstore *fs, const char *tag, int fd)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "PUT %s", tag);
	return keeper_cmd(fs, cmd, fd);
}

/* The next try of a keeper re-creation that failed: 1 s, doubling to 30 s. */
static void keeper_retry_later(struct fdstore *fs)
{
	int d = fs->keeper_retry_delay_ms ? fs->keeper_retry_delay_ms : 1000;

	fs->keeper_retry_ms = hl_now_ms() + d;
	fs->keeper_retry_delay_ms = d >= 15000 ? 30000 : 2 * d;
	LOGE("will try again to re-create the fd keeper in %d ms", d);
}

/* Keeper died: start a new one and give it everything the store held. */
static int keeper_resync(struct fdstore *fs)
{
	int s = keeper_spawn(fs), rc = 0;

	if (s < 0) {
		LOGE("cannot respawn the fd keeper: %s; session fds now live only in the agent", strerror(-s));
		keeper_retry_later(fs);
		return s;
	}
	keeper_set_fd(fs, s);
	fs->keeper_restarts++;
	for (size_t i = 0; i < fs->held.n && rc >= 0; i++)
		rc = keeper_put(fs, fs->held.v[i].tag, fs->held.v[i].fd);
	if (rc < 0) {
		LOGE("the new fd keeper failed while taking back %zu fd(s): %s", fs->held.n, strerror(-rc));
		if (fs->keeper_fd < 0)
			keeper_retry_later(fs);
		return rc;
	}
	fs->keeper_retry_ms = 0;
	fs->keeper_retry_delay_ms = 0;
	LOGI("fd keeper re-created and re-filled with %zu fd(s) (restart %u)", fs->held.n, fs->keeper_restarts);
	return 0;
}

void fdstore_tick(struct fdstore *fs, int64_t now)
{
	if (fs->mode != FDSTORE_KEEPER || !fs->keeper_retry_ms || now < fs->keeper_retry_ms)
		return;
	fs->keeper_retry_ms = 0;
	if (fs->keeper_fd >= 0)
		return;
	LOGI("re-creating the fd keeper (%zu fd(s) held only by the agent)", fs->held.n);
	keeper_resync(fs);
}

int64_t fdstore_deadline(const struct fdstore *fs)
{
	return fs->mode == FDSTORE_KEEPER && fs->keeper_retry_ms ? fs->keeper_retry_ms : -1;
}

int fdstore_keeper_event(struct fdstore *fs)
{
	char b;
	ssize_t n;

	if (fs->mode != FDSTORE_KEEPER)
		return 0;
	if (fs->keeper_fd >= 0) {
		n = recv(fs->keeper_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0; /* spurious wakeup: still connected */
		LOGE("the fd keeper hung up (%s); re-creating it", n == 0 ? "EOF" : n < 0 ? strerror(errno) :
		     "unexpected data");
		keeper_set_fd(fs, -1);
	}
	return keeper_resync(fs);
}

static bool our_tag(const char *t)
{
	return !strcmp(t, "dev") || !strcmp(t, "hs") || !strcmp(t, "st") || !strcmp(t, "hs1") || !strcmp(t, "st1") ||
	       !strncmp(t, "so-", 3) || !strncmp(t, "si-", 3);
}

static void add_restored(struct fdstore *fs, const char *tag, int fd)
{
	int old;

	hl_set_cloexec(fd, true);
	old = tl_set(&fs->restored, tag, fd);
	if (old >= 0)
		close(old);
	else if (old == -2)
		close(fd);
}

int fdstore_setup(struct fdstore *fs)
{
	int n_restored = 0;

	if (fs->mode == FDSTORE_SYSTEMD) {
		char **names = NULL;
		int n = sd_listen_fds_with_names(1, &names);

		for (int i = 0; i < n; i++) {
			int fd = SD_LISTEN_FDS_START + i;

			if (names && names[i] && our_tag(names[i])) {
				add_restored(fs, names[i], fd);
				n_restored++;
			}
			if (names)
				free(names[i]);
		}
		free(names);
	} else if (fs->mode == FDSTORE_KEEPER) {
		int s = keeper_connect(fs->keeper_path);

		if (s >= 0) {
			keeper_set_fd(fs, s);
			if (hl_send_packet(s, "GETALL", 6, -1, false) < 0)
				return -1;
			for (;;) {
				char buf[256];
				int fd = -1;
				bool trunc;
				ssize_t n = hl_recv_packet(s, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);

				if (n <= 0) {
					LOGE("fd keeper hung up during GETALL");
					return -1;
				}
				buf[n] = '\0';
				if (!strcmp(buf, "END"))
					break;
				if (!strncmp(buf, "FD ", 3) && fd >= 0 && our_tag(buf + 3)) {
					add_restored(fs, buf + 3, fd);
					n_restored++;
				} else if (fd >= 0) {
					close(fd);
				}
			}
			LOGI("fd keeper at %s handed back %d fd(s)", fs->keeper_path, n_restored);
		} else {
			s = keeper_spawn(fs);
			if (s < 0)
				LOGE("cannot start the fd keeper: %s; continuing without crash safety", strerror(-s));
			else
				keeper_set_fd(fs, s);
		}
	}
	return n_restored;
}

int fdstore_take(struct fdstore *fs, const char *tag)
{
	int fd = tl_del(&fs->restored, tag);

	/* still in the store: mirrored so that a keeper respawn re-deposits it */
	if (fd >= 0 && fs->mode != FDSTORE_NONE)
		tl_set(&fs->held, tag, fd);
	return fd;
}

int fdstore_take_prefix(struct fdstore *fs, const char *prefix, char *tag, size_t len)
{
	for (size_t i = 0; i < fs->restored.n; i++)
		if (!strncmp(fs->restored.v[i].tag, prefix, strlen(prefix))) {
			snprintf(tag, len, "%s", fs->restored.v[i].tag);
			return fdstore_take(fs, tag);
		}
	return -1;
}

void fdstore_close_unused(struct fdstore *fs)
{
	for (size_t i = 0; i < fs->restored.n; i++) {
		LOGE("unused fd store entry %s; closing", fs->restored.v[i].tag);
		close(fs->restored.v[i].fd);
	}
	tl_free(&fs->restored);
}

int fdstore_put(struct fdstore *fs, const char *tag, int fd)
{
	char cmd[200];
	int rc;

	if (fs->mode == FDSTORE_NONE)
		return 0;
	tl_set(&fs->held, tag, fd);
	if (fs->mode == FDSTORE_SYSTEMD) {
		snprintf(cmd, sizeof(cmd), "FDSTORE=1\nFDNAME=%s", tag);
		rc = sd_pid_notify_with_fds(0, 0, cmd, &fd, 1);
		if (rc <= 0)
			LOGE("FD store: cannot store %s: %s", tag, rc < 0 ? strerror(-rc) : "no NOTIFY_SOCKET");
		return rc < 0 ? rc : 0;
	}
	rc = keeper_put(fs, tag, fd);
	if (rc < 0 && fs->keeper_fd < 0)
		rc = keeper_resync(fs); /* includes this fd: it is in fs->held */
	if (rc < 0)
		tl_del(&fs->held, tag);
	return rc;
}

int fdstore_drop(struct fdstore *fs, const char *tag)
{
	char cmd[200];

	if (fs->mode == FDSTORE_NONE)
		return 0;
	tl_del(&fs->held, tag);
	if (fs->mode == FDSTORE_SYSTEMD) {
		snprintf(cmd, sizeof(cmd), "FDSTOREREMOVE=1\nFDNAME=%s", tag);
		return sd_notify(0, cmd);
	}
	snprintf(cmd, sizeof(cmd), "DROP %s", tag);
	return keeper_cmd(fs, cmd, -1);
}

void fdstore_exit(struct fdstore *fs)
{
	if (fs->mode == FDSTORE_KEEPER && fs->keeper_fd >= 0)
		keeper_cmd(fs, "EXIT", -1);
	tl_free(&fs->held);
}
