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
 * Tags: "dev", "hs" (own session), "st" (state memfd), "so-<hex kname>" /
 * "si-<hex kname>" (outgoing / incoming client sessions).
 */
#include "agent.h"
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

/* ---- keeper process --------------------------------------------------- */

struct kentry {
	char tag[160];
	int fd;
};

static struct kentry *kents;
static size_t nkents, capkents;

static void k_put(const char *tag, int fd)
{
	for (size_t i = 0; i < nkents; i++)
		if (!strcmp(kents[i].tag, tag)) {
			close(kents[i].fd);
			kents[i].fd = fd;
			return;
		}
	if (nkents == capkents) {
		size_t nc = capkents ? capkents * 2 : 64;
		struct kentry *n = realloc(kents, nc * sizeof(*n));

		if (!n) {
			close(fd);
			return;
		}
		kents = n;
		capkents = nc;
	}
	snprintf(kents[nkents].tag, sizeof(kents[0].tag), "%.159s", tag);
	kents[nkents++].fd = fd;
}

static void k_drop(const char *tag)
{
	for (size_t i = 0; i < nkents; i++)
		if (!strcmp(kents[i].tag, tag)) {
			close(kents[i].fd);
			kents[i] = kents[--nkents];
			return;
		}
}

static int bind_private(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	mode_t old;

	if (s < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	old = umask(077);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0) {
		umask(old);
		close(s);
		return -1;
	}
	umask(old);
	chmod(path, 0600);
	return s;
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
	ls = bind_private(path);
	if (ls < 0) {
		fprintf(stderr, "hugelived keeper: cannot bind %s: %s\n", path, strerror(errno));
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
				for (size_t i = 0; i < nkents; i++) {
					char m[200];
					int l = snprintf(m, sizeof(m), "FD %s", kents[i].tag);

					hl_send_packet(c, m, (size_t)l, kents[i].fd, false);
				}
				hl_send_packet(c, "END", 3, -1, false);
			} else if (!strcmp(buf, "EXIT")) {
				hl_send_packet(c, "0", 1, -1, false);
				for (size_t i = 0; i < nkents; i++)
					close(kents[i].fd);
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

static int keeper_spawn(struct agent *a)
{
	char dir[sizeof(a->keeper_path)], *sl;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s", a->keeper_path);
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

			if (nul >= 0) {
				dup2(nul, 0);
				dup2(nul, 1);
			}
			execl("/proc/self/exe", "hugelived", "--keeper", "--keeper-socket", a->keeper_path,
			      (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	for (int i = 0; i < 300; i++) {
		int s = keeper_connect(a->keeper_path);

		if (s >= 0)
			return s;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int keeper_cmd(struct agent *a, const char *cmd, int fd)
{
	char buf[64];
	int rfd = -1;
	bool trunc;
	ssize_t n;

	if (a->keeper_fd < 0)
		return -ENOTCONN;
	n = hl_send_packet(a->keeper_fd, cmd, strlen(cmd), fd, false);
	if (n >= 0)
		n = hl_recv_packet(a->keeper_fd, buf, sizeof(buf) - 1, &rfd, NULL, &trunc, false);
	if (rfd >= 0)
		close(rfd);
	if (n <= 0) {
		LOGE(a, "lost the fd keeper (%s)", n == 0 ? "EOF" : strerror((int)-n));
		close(a->keeper_fd);
		a->keeper_fd = -1;
		return n == 0 ? -EPIPE : (int)n;
	}
	buf[n] = '\0';
	return atoi(buf);
}

/* Keeper died: start a new one and give it everything we hold. */
static void keeper_resync(struct agent *a)
{
	char tag[160];
	int s = keeper_spawn(a);

	if (s < 0) {
		LOGE(a, "cannot respawn the fd keeper: %s", strerror(-s));
		return;
	}
	a->keeper_fd = s;
	keeper_cmd(a, "PUT dev", a->dev);
	if (a->state_sess >= 0)
		keeper_cmd(a, "PUT hs", a->state_sess);
	if (a->state_mfd >= 0)
		keeper_cmd(a, "PUT st", a->state_mfd);
	for (struct session *x = a->sessions; x; x = x->next) {
		char cmd[200];

		session_tag(tag, sizeof(tag), x);
		snprintf(cmd, sizeof(cmd), "PUT %s", tag);
		keeper_cmd(a, cmd, x->fd);
	}
	LOGI(a, "fd keeper respawned and resynchronised");
}

static void add_restored(struct agent *a, const char *tag, int fd)
{
	struct tagged_fd *n = realloc(a->restored, (size_t)(a->nrestored + 1) * sizeof(*n));

	if (!n) {
		close(fd);
		return;
	}
	a->restored = n;
	hl_set_cloexec(fd, true);
	if (!strcmp(tag, "dev")) {
		if (a->dev >= 0)
			close(a->dev);
		a->dev = fd;
		return;
	}
	snprintf(n[a->nrestored].tag, sizeof(n[0].tag), "%.159s", tag);
	n[a->nrestored++].fd = fd;
}

static bool our_tag(const char *t)
{
	return !strcmp(t, "dev") || !strcmp(t, "hs") || !strcmp(t, "st") ||
	       !strncmp(t, "so-", 3) || !strncmp(t, "si-", 3);
}

int fdstore_setup(struct agent *a, int *n_restored)
{
	*n_restored = 0;
	if (a->fdstore == FDSTORE_SYSTEMD) {
		char **names = NULL;
		int n = sd_listen_fds_with_names(1, &names);

		for (int i = 0; i < n; i++) {
			int fd = SD_LISTEN_FDS_START + i;

			if (names && names[i] && our_tag(names[i])) {
				add_restored(a, names[i], fd);
				(*n_restored)++;
			}
			if (names)
				free(names[i]);
		}
		free(names);
	} else if (a->fdstore == FDSTORE_KEEPER) {
		int s = keeper_connect(a->keeper_path);

		if (s >= 0) {
			a->keeper_fd = s;
			if (hl_send_packet(s, "GETALL", 6, -1, false) < 0)
				return -1;
			for (;;) {
				char buf[256];
				int fd = -1;
				bool trunc;
				ssize_t n = hl_recv_packet(s, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);

				if (n <= 0) {
					LOGE(a, "fd keeper hung up during GETALL");
					return -1;
				}
				buf[n] = '\0';
				if (!strcmp(buf, "END"))
					break;
				if (!strncmp(buf, "FD ", 3) && fd >= 0 && our_tag(buf + 3)) {
					add_restored(a, buf + 3, fd);
					(*n_restored)++;
				} else if (fd >= 0) {
					close(fd);
				}
			}
			LOGI(a, "fd keeper at %s handed back %d fd(s)", a->keeper_path, *n_restored);
		} else {
			s = keeper_spawn(a);
			if (s < 0) {
				LOGE(a, "cannot start the fd keeper: %s; continuing without crash safety",
				     strerror(-s));
			} else {
				a->keeper_fd = s;
			}
		}
	}
	if (a->dev >= 0)
		a->boot = BOOT_RESTARTED;
	return 0;
}

int fdstore_put(struct agent *a, const char *tag, int fd)
{
	char cmd[200];
	int rc;

	if (a->fdstore == FDSTORE_SYSTEMD) {
		snprintf(cmd, sizeof(cmd), "FDSTORE=1\nFDNAME=%s", tag);
		rc = sd_pid_notify_with_fds(0, 0, cmd, &fd, 1);
		if (rc <= 0)
			LOGE(a, "FD store: cannot store %s: %s", tag, rc < 0 ? strerror(-rc) : "no NOTIFY_SOCKET");
		return rc < 0 ? rc : 0;
	}
	if (a->fdstore != FDSTORE_KEEPER)
		return 0;
	snprintf(cmd, sizeof(cmd), "PUT %s", tag);
	rc = keeper_cmd(a, cmd, fd);
	if (rc < 0 && a->keeper_fd < 0)
		keeper_resync(a); /* includes this fd if it is already recorded */
	return rc;
}

int fdstore_drop(struct agent *a, const char *tag)
{
	char cmd[200];

	if (a->fdstore == FDSTORE_SYSTEMD) {
		snprintf(cmd, sizeof(cmd), "FDSTOREREMOVE=1\nFDNAME=%s", tag);
		return sd_notify(0, cmd);
	}
	if (a->fdstore != FDSTORE_KEEPER)
		return 0;
	snprintf(cmd, sizeof(cmd), "DROP %s", tag);
	return keeper_cmd(a, cmd, -1);
}

void fdstore_exit(struct agent *a)
{
	if (a->fdstore == FDSTORE_KEEPER && a->keeper_fd >= 0)
		keeper_cmd(a, "EXIT", -1);
}
