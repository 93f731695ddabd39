/* SPDX-License-Identifier: MIT */
#include "sessfd.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/liveupdate.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int hl_luo_retrieve_fd(int sfd, uint64_t token)
{
	struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = token };

	if (ioctl(sfd, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0)
		return -errno;
	return a.fd;
}

int hl_fake_retrieve_fd(int sfd, uint64_t token)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "RETRIEVEFD %" PRIu64, token), fd = -1, rc;
	bool trunc;
	ssize_t r;

	if (hl_send_packet(sfd, buf, (size_t)n, -1, false) < 0)
		return -EIO;
	r = hl_recv_packet(sfd, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);
	if (r <= 0) {
		if (fd >= 0)
			close(fd);
		return r == 0 ? -EIO : (int)r;
	}
	buf[r] = '\0';
	rc = atoi(buf);
	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd >= 0 ? fd : -EIO;
}
