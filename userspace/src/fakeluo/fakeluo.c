/* SPDX-License-Identifier: MIT */
/*
 * hugelive-fakeluo: a user-space stand-in for the kernel's /dev/liveupdate,
 * used only by the host tests (the agent's --fake-luo backend talks to it).
 *
 * It mimics LUO's observable rules and errnos (Linux 7.3 luo_core.c,
 * luo_session.c, luo_file.c):
 *  - one opener of the device at a time (EBUSY);
 *  - CREATE: EEXIST for a duplicate outgoing name, EINVAL for bad names;
 *  - RETRIEVE: only sessions from the "previous kernel", ENOENT unknown,
 *    EINVAL when already retrieved;
 *  - PRESERVE: only on outgoing sessions (EINVAL), EEXIST duplicate token,
 *    EBADF no fd, ENOENT no handler (not a memfd; hugetlb unless --hugetlb),
 *    EBUSY when the same file is already preserved;
 *  - RETRIEVE_FD / FINISH only on incoming sessions (EINVAL), ENOENT token;
 *  - closing the last copy of an outgoing session fd unpreserves its files;
 *    closing a retrieved session finishes it;
 *  - KEXEC: needs a loaded kernel (EINVAL); outgoing sessions become the
 *    incoming sessions of the "next kernel", unretrieved incoming ones are
 *    dropped, the device is released.
 * A connection whose first packet is "DUMP" gets a text listing (tests).
 */
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXCONN 512
#define MAXSESS 512
#define MAXFILES 256

struct ffile {
	uint64_t token;
	int fd;
	bool retrieved;
};

struct fsess {
	bool used;
	char name[64];
	bool incoming;
	bool retrieved;
	bool finished;
	int conn;		/* index into conns, -1: none */
	struct ffile files[MAXFILES];
	int nfiles;
};

enum { C_FREE, C_NEW, C_DEV, C_SESS };

struct conn {
	int kind;
	int fd;
	int sess;
};

static struct conn conns[MAXCONN];
static struct fsess sess[MAXSESS];
static int dev_in_use;
static bool loaded;
static bool hugetlb_ok;
static unsigned generation;

static void reply(int fd, int rc, int pass_fd, const char *text)
{
	char buf[4096];
	int n = text ? snprintf(buf, sizeof(buf), "%d %s", rc, text) : snprintf(buf, sizeof(buf), "%d", rc);

	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	hl_send_packet(fd, buf, (size_t)n, pass_fd, false);
}

static void sess_drop_files(struct fsess *s)
{
	for (int i = 0; i < s->nfiles; i++)
		close(s->files[i].fd);
	s->nfiles = 0;
}

static void conn_close(int ci)
{
	if (conns[ci].kind == C_FREE)
		return;
	close(conns[ci].fd);
	conns[ci].kind = C_FREE;
	conns[ci].fd = -1;
}

static int conn_add(int fd, int kind, int si)
{
	for (int i = 0; i < MAXCONN; i++)
		if (conns[i].kind == C_FREE) {
			conns[i] = (struct conn){ .kind = kind, .fd = fd, .sess = si };
			return i;
		}
	return -1;
}

static struct fsess *find_sess(const char *name, bool incoming)
{
	for (int i = 0; i < MAXSESS; i++)
		if (sess[i].used && sess[i].incoming == incoming && !strcmp(sess[i].name, name))
			return &sess[i];
	return NULL;
}

static int give_session(int devfd, int si)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int ci = conn_add(sv[0], C_SESS, si);

	if (ci < 0) {
		close(sv[0]);
		close(sv[1]);
		return -EMFILE;
	}
	sess[si].conn = ci;
	reply(devfd, 0, sv[1], NULL);
	close(sv[1]);
	return 0;
}

static bool already_preserved(int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return false;
	for (int i = 0; i < MAXSESS; i++) {
		if (!sess[i].used || sess[i].incoming)
			continue;
		for (int j = 0; j < sess[i].nfiles; j++)
			if (fstat(sess[i].files[j].fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
				return true;
	}
	return false;
}

static void do_kexec(void)
{
	for (int i = 0; i < MAXSESS; i++) {
		struct fsess *s = &sess[i];

		if (!s->used)
			continue;
		if (s->conn >= 0)
			conn_close(s->conn);
		s->conn = -1;
		if (s->incoming) {
			sess_drop_files(s);
			s->used = false;
			continue;
		}
		s->incoming = true;
		s->retrieved = false;
		s->finished = false;
		for (int j = 0; j < s->nfiles; j++)
			s->files[j].retrieved = false;
	}
	for (int i = 0; i < MAXCONN; i++)
		if (conns[i].kind == C_DEV || conns[i].kind == C_NEW)
			conn_close(i);
	dev_in_use = 0;
	loaded = false;
	generation++;
	fprintf(stderr, "fakeluo: kexec, generation %u\n", generation);
}

static void dump(int fd)
{
	char buf[60000];
	size_t off = 0;

	off += (size_t)snprintf(buf + off, sizeof(buf) - off, "generation %u dev %d loaded %d\n",
				generation, dev_in_use, loaded);
	for (int i = 0; i < MAXSESS && off < sizeof(buf) - 200; i++) {
		struct fsess *s = &sess[i];

		if (!s->used)
			continue;
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "session %s %s%s files",
					s->name, s->incoming ? "in" : "out",
					s->retrieved ? " retrieved" : "");
		for (int j = 0; j < s->nfiles && off < sizeof(buf) - 100; j++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, " %" PRIu64, s->files[j].token);
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "\n");
	}
	hl_send_packet(fd, buf, off, -1, false);
}

static void handle_dev(int ci, char *cmd, int fd)
{
	int cfd = conns[ci].fd;
	char *arg = strchr(cmd, ' ');

	if (arg)
		*arg++ = '\0';
	if (!strcmp(cmd, "CREATE") || !strcmp(cmd, "RETRIEVE")) {
		bool create = cmd[0] == 'C';

		if (!arg || !*arg || strlen(arg) >= 64) {
			reply(cfd, -EINVAL, -1, NULL);
		} else if (create) {
			int si = -1;

			if (find_sess(arg, false)) {
				reply(cfd, -EEXIST, -1, NULL);
				goto out;
			}
			for (int i = 0; i < MAXSESS; i++)
				if (!sess[i].used) {
					si = i;
					break;
				}
			if (si < 0) {
				reply(cfd, -ENOSPC, -1, NULL);
				goto out;
			}
			memset(&sess[si], 0, sizeof(sess[si]));
			sess[si].used = true;
			snprintf(sess[si].name, sizeof(sess[si].name), "%s", arg);
			int rc = give_session(cfd, si);

			if (rc < 0) {
				sess[si].used = false;
				reply(cfd, rc, -1, NULL);
			}
		} else {
			struct fsess *s = find_sess(arg, true);

			if (!s) {
				reply(cfd, -ENOENT, -1, NULL);
			} else if (s->retrieved) {
				reply(cfd, -EINVAL, -1, NULL);
			} else {
				int rc = give_session(cfd, (int)(s - sess));

				if (rc < 0)
					reply(cfd, rc, -1, NULL);
				else
					s->retrieved = true;
			}
		}
	} else if (!strcmp(cmd, "KLOAD")) {
		char magic[3] = { 0 };

		if (fd < 0) {
			reply(cfd, -EBADF, -1, NULL);
		} else if (pread(fd, magic, 3, 0) != 3 || !memcmp(magic, "BAD", 3)) {
			reply(cfd, -ENOEXEC, -1, NULL);
		} else {
			loaded = true;
			reply(cfd, 0, -1, NULL);
		}
	} else if (!strcmp(cmd, "KUNLOAD")) {
		loaded = false;
		reply(cfd, 0, -1, NULL);
	} else if (!strcmp(cmd, "KEXEC")) {
		if (!loaded) {
			reply(cfd, -EINVAL, -1, NULL);
		} else {
			reply(cfd, 0, -1, NULL);
			do_kexec();
		}
	} else if (!strcmp(cmd, "HUGETLB")) {
		reply(cfd, hugetlb_ok ? 1 : 0, -1, NULL);
	} else {
		reply(cfd, -ENOTTY, -1, NULL);
	}
out:
	if (fd >= 0)
		close(fd);
}

static void handle_sess(int ci, char *cmd, int fd)
{
	int cfd = conns[ci].fd;
	struct fsess *s = &sess[conns[ci].sess];
	char *arg = strchr(cmd, ' ');
	uint64_t token = 0;

	if (arg) {
		*arg++ = '\0';
		token = strtoull(arg, NULL, 10);
	}
	if (!strcmp(cmd, "PRESERVE")) {
		if (s->incoming) {
			reply(cfd, -EINVAL, -1, NULL);
			goto out;
		}
		for (int i = 0; i < s->nfiles; i++)
			if (s->files[i].token == token) {
				reply(cfd, -EEXIST, -1, NULL);
				goto out;
			}
		if (s->nfiles >= MAXFILES) {
			reply(cfd, -ENOSPC, -1, NULL);
			goto out;
		}
		if (fd < 0) {
			reply(cfd, -EBADF, -1, NULL);
			goto out;
		}
		if (fcntl(fd, F_GET_SEALS) < 0 || (hl_fd_is_hugetlb(fd) && !hugetlb_ok)) {
			reply(cfd, -ENOENT, -1, NULL);
			goto out;
		}
		if (already_preserved(fd)) {
			reply(cfd, -EBUSY, -1, NULL);
			goto out;
		}
		s->files[s->nfiles++] = (struct ffile){ .token = token, .fd = fd };
		fd = -1;
		reply(cfd, 0, -1, NULL);
	} else if (!strcmp(cmd, "RETRIEVEFD")) {
		if (!s->incoming) {
			reply(cfd, -EINVAL, -1, NULL);
			goto out;
		}
		for (int i = 0; i < s->nfiles; i++)
			if (s->files[i].token == token) {
				s->files[i].retrieved = true;
				reply(cfd, 0, s->files[i].fd, NULL);
				goto out;
			}
		reply(cfd, -ENOENT, -1, NULL);
	} else if (!strcmp(cmd, "FINISH")) {
		if (!s->incoming) {
			reply(cfd, -EINVAL, -1, NULL);
			goto out;
		}
		s->finished = true;
		reply(cfd, 0, -1, NULL);
	} else if (!strcmp(cmd, "GETNAME")) {
		reply(cfd, 0, -1, s->name);
	} else {
		reply(cfd, -ENOTTY, -1, NULL);
	}
out:
	if (fd >= 0)
		close(fd);
}

static void conn_eof(int ci)
{
	if (conns[ci].kind == C_DEV) {
		dev_in_use = 0;
	} else if (conns[ci].kind == C_SESS) {
		struct fsess *s = &sess[conns[ci].sess];

		/* outgoing: unpreserve; incoming: finish. Either way it is gone. */
		sess_drop_files(s);
		s->used = false;
		s->conn = -1;
	}
	conn_close(ci);
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	int ls;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--hugetlb"))
			hugetlb_ok = true;
		else {
			fprintf(stderr, "usage: %s --socket PATH [--hugetlb]\n", argv[0]);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: %s --socket PATH [--hugetlb]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ls = hl_listen_unix(path, 0666, 64, false);
	if (ls < 0) {
		fprintf(stderr, "fakeluo: cannot listen on %s: %s\n", path, strerror(-ls));
		return 1;
	}
	for (int i = 0; i < MAXCONN; i++)
		conns[i].kind = C_FREE;
	for (;;) {
		struct pollfd pfd[MAXCONN + 1];
		int map[MAXCONN + 1];
		int n = 0;

		pfd[n].fd = ls;
		pfd[n].events = POLLIN;
		map[n++] = -1;
		for (int i = 0; i < MAXCONN; i++)
			if (conns[i].kind != C_FREE) {
				pfd[n].fd = conns[i].fd;
				pfd[n].events = POLLIN;
				map[n++] = i;
			}
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			if (map[k] < 0) {
				int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);

				if (c >= 0 && conn_add(c, C_NEW, -1) < 0)
					close(c);
				continue;
			}
			int ci = map[k];

			if (conns[ci].kind == C_FREE || conns[ci].fd != pfd[k].fd)
				continue; /* closed meanwhile (kexec) */
			char buf[4096];
			int fd = -1;
			bool trunc;
			ssize_t r = hl_recv_packet(conns[ci].fd, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);

			if (r <= 0) {
				if (fd >= 0)
					close(fd);
				conn_eof(ci);
				continue;
			}
			buf[r] = '\0';
			if (conns[ci].kind == C_NEW) {
				if (!strcmp(buf, "OPEN")) {
					if (dev_in_use) {
						reply(conns[ci].fd, -EBUSY, -1, NULL);
						conn_close(ci);
					} else {
						dev_in_use = 1;
						conns[ci].kind = C_DEV;
						reply(conns[ci].fd, 0, -1, NULL);
					}
				} else if (!strcmp(buf, "DUMP")) {
					dump(conns[ci].fd);
					conn_close(ci);
				} else {
					conn_close(ci);
				}
				if (fd >= 0)
					close(fd);
			} else if (conns[ci].kind == C_DEV) {
				handle_dev(ci, buf, fd);
			} else {
				handle_sess(ci, buf, fd);
			}
		}
	}
}
