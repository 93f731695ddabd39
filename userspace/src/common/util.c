/* SPDX-License-Identifier: MIT */
#include "util.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

int64_t hl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hl_wall_s(void)
{
	return (int64_t)time(NULL);
}

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { EINTR, "EINTR" },
	{ EIO, "EIO" }, { E2BIG, "E2BIG" }, { ENOEXEC, "ENOEXEC" },
	{ EBADF, "EBADF" }, { EAGAIN, "EAGAIN" }, { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" }, { EBUSY, "EBUSY" }, { EEXIST, "EEXIST" },
	{ ENODEV, "ENODEV" }, { EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" },
	{ ENOTTY, "ENOTTY" }, { EFBIG, "EFBIG" }, { ERANGE, "ERANGE" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { ENOSYS, "ENOSYS" },
	{ EPROTO, "EPROTO" }, { EMSGSIZE, "EMSGSIZE" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { ECANCELED, "ECANCELED" },
	{ ETIMEDOUT, "ETIMEDOUT" }, { ECONNREFUSED, "ECONNREFUSED" },
	{ EOVERFLOW, "EOVERFLOW" }, { EDQUOT, "EDQUOT" }, { ESRCH, "ESRCH" },
	{ ENOTCONN, "ENOTCONN" }, { ECONNRESET, "ECONNRESET" },
	{ EPIPE, "EPIPE" }, { EALREADY, "EALREADY" }, { ESTALE, "ESTALE" },
	{ EPROTONOSUPPORT, "EPROTONOSUPPORT" }, { EKEYREJECTED, "EKEYREJECTED" },
};

const char *hl_errno_name(int err)
{
	for (size_t i = 0; i < HL_ARRAY_SIZE(errnames); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "E?";
}

int hl_errno_from_name(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < HL_ARRAY_SIZE(errnames); i++)
		if (!strcmp(errnames[i].name, name))
			return errnames[i].err;
	return 0;
}

ssize_t hl_send_packet(int sock, const void *buf, size_t len, int fd, bool nonblock)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | (nonblock ? MSG_DONTWAIT : 0));
	} while (n < 0 && errno == EINTR && !nonblock);
	return n < 0 ? -errno : n;
}

ssize_t hl_recv_packet_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds_out,
			   bool *truncated, bool nonblock)
{
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	/* Room for every fd the kernel can attach (SCM_MAX_FD). */
	union {
		char buf[CMSG_SPACE(sizeof(int) * HL_SCM_MAX_FD)];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	ssize_t n;
	int nfds = 0;

	*nfds_out = 0;
	*truncated = false;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (nonblock ? MSG_DONTWAIT : 0));
	} while (n < 0 && errno == EINTR && !nonblock);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < maxfds)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	*nfds_out = nfds;
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		*truncated = true;
	return n;
}

ssize_t hl_recv_packet(int sock, void *buf, size_t cap, int *fd_out, int *nfds_out,
		       bool *truncated, bool nonblock)
{
	int fds[HL_SCM_MAX_FD], nfds;
	ssize_t n = hl_recv_packet_fds(sock, buf, cap, fds, HL_SCM_MAX_FD, &nfds, truncated, nonblock);

	*fd_out = nfds > 0 ? fds[0] : -1;
	for (int i = 1; i < nfds; i++)
		close(fds[i]);
	if (nfds_out)
		*nfds_out = nfds;
	return n;
}

int hl_listen_unix(const char *path, unsigned mode, int backlog, bool nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, rc;
	mode_t old;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (s < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	old = umask(~mode & 0777);
	rc = bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, backlog) < 0 ? -errno : 0;
	umask(old);
	if (rc == 0 && chmod(path, mode & 07777) < 0)
		rc = -errno;
	if (rc < 0) {
		close(s);
		return rc;
	}
	return s;
}

int hl_parse_num(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (LLONG_MAX - (*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int hl_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int hl_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

bool hl_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	n = strlen(name);
	if (n == 0 || n > HL_MAX_NAME)
		return false;
	if (name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool hl_label_valid(const char *label)
{
	size_t n;

	if (!label)
		return false;
	n = strlen(label);
	if (n > HL_MAX_LABEL)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x20 || (unsigned char)label[i] > 0x7e)
			return false;
	return true;
}

char *hl_read_file(const char *path, size_t max, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	size_t len = 0;

	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (len < max) {
		ssize_t n = read(fd, buf + len, max - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

bool hl_cmdline_has(const char *cmdline, const char *word)
{
	size_t wl = strlen(word);
	const char *p = cmdline;

	if (!cmdline)
		return false;
	while ((p = strstr(p, word))) {
		bool start = (p == cmdline) || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n';
		char e = p[wl];
		bool end = e == '\0' || e == ' ' || e == '\t' || e == '\n';

		if (start && end)
			return true;
		p += wl;
	}
	return false;
}

bool hl_fd_is_hugetlb(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	return (unsigned long)sf.f_type == (unsigned long)HUGETLBFS_MAGIC;
}
