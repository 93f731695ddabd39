/* SPDX-License-Identifier: MIT */
/*
 * Fake backend (tests only, selected with --fake-luo SOCKET): forwards every
 * device call to the hugelive-fakeluo server over AF_UNIX SOCK_SEQPACKET.
 * The "device fd" and each "session fd" are socket connections to the
 * server, so closing the last copy of a session fd unpreserves it on the
 * server exactly like closing a LUO session fd does in the kernel.
 */
#include "backend.h"
#include "../common/sessfd.h"
#include "../common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* One request/response. Returns server rc (>= 0 or -errno); *fd_out gets a passed fd. */
static int fake_call(int sock, int fd_in, int *fd_out, char *text, size_t textlen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int fake_call(int sock, int fd_in, int *fd_out, char *text, size_t textlen, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	ssize_t n;
	int fd = -1, rc;
	bool trunc;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	n = hl_send_packet(sock, buf, (size_t)n, fd_in, false);
	if (n < 0)
		return (int)n;
	n = hl_recv_packet(sock, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);
	if (n <= 0)
		return n == 0 ? -EIO : (int)n;
	buf[n] = '\0';
	rc = atoi(buf);
	if (text && textlen) {
		const char *sp = strchr(buf, ' ');

		snprintf(text, textlen, "%s", sp ? sp + 1 : "");
	}
	if (fd_out)
		*fd_out = fd;
	else if (fd >= 0)
		close(fd);
	return rc;
}

static int fake_open_dev(struct hl_backend *be)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int rc;

	if (s < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", be->path);
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = errno == ECONNREFUSED || errno == ENOENT ? -ENOENT : -errno;
		close(s);
		return rc;
	}
	rc = fake_call(s, -1, NULL, NULL, 0, "OPEN");
	if (rc < 0) {
		close(s);
		return rc;
	}
	return s;
}

static int fake_sess(int dev, const char *verb, const char *name)
{
	int fd = -1;
	int rc = fake_call(dev, -1, &fd, NULL, 0, "%s %s", verb, name);

	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	return fd >= 0 ? fd : -EIO;
}

static int fake_create(struct hl_backend *be, int dev, const char *name)
{
	(void)be;
	if (strlen(name) >= HL_KNAME_MAX)
		return -ENAMETOOLONG;
	return fake_sess(dev, "CREATE", name);
}

static int fake_retrieve(struct hl_backend *be, int dev, const char *name)
{
	(void)be;
	if (strlen(name) >= HL_KNAME_MAX)
		return -ENAMETOOLONG;
	return fake_sess(dev, "RETRIEVE", name);
}

static int fake_preserve(struct hl_backend *be, int sfd, int fd, uint64_t token)
{
	(void)be;
	return fake_call(sfd, fd, NULL, NULL, 0, "PRESERVE %" PRIu64, token);
}

static int fake_retrieve_fd(struct hl_backend *be, int sfd, uint64_t token)
{
	(void)be;
	return hl_fake_retrieve_fd(sfd, token);
}

static int fake_finish(struct hl_backend *be, int sfd)
{
	(void)be;
	return fake_call(sfd, -1, NULL, NULL, 0, "FINISH");
}

static int fake_get_name(struct hl_backend *be, int sfd, char name[HL_KNAME_MAX])
{
	(void)be;
	return fake_call(sfd, -1, NULL, name, HL_KNAME_MAX, "GETNAME");
}

static int fake_kexec_load(struct hl_backend *be, int dev, int kfd, int ifd, const char *cmdline)
{
	(void)be;
	(void)ifd;
	return fake_call(dev, kfd, NULL, NULL, 0, "KLOAD %s", cmdline);
}

static int fake_kexec_unload(struct hl_backend *be, int dev)
{
	(void)be;
	return fake_call(dev, -1, NULL, NULL, 0, "KUNLOAD");
}

static int fake_hugetlb(struct hl_backend *be, int dev)
{
	const char *env = getenv("HUGELIVE_HUGETLB_SUPPORT");

	(void)be;
	if (env && (!strcmp(env, "0") || !strcmp(env, "1")))
		return *env == '1';
	return fake_call(dev, -1, NULL, NULL, 0, "HUGETLB");
}

/*
 * Fault injection for the host tests: $HUGELIVE_FAKE_FAULTS names a file of
 * lines "POINT ERRNO" (fail with -ERRNO) or "POINT crash" (SIGKILL the agent
 * right there). Read at every call, so a test can change it at any time.
 */
static int fake_fault(struct hl_backend *be, const char *point)
{
	const char *path = getenv("HUGELIVE_FAKE_FAULTS");
	char line[256], p[128], act[32];
	int rc = 0;
	FILE *f;

	(void)be;
	if (!path || !*path || !(f = fopen(path, "re")))
		return 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%127s %31s", p, act) != 2 || strcmp(p, point))
			continue;
		if (!strcmp(act, "crash")) {
			fprintf(stderr, "hugelived: fault injection: crash at %s\n", point);
			kill(getpid(), SIGKILL);
		}
		rc = -atoi(act);
	}
	fclose(f);
	return rc;
}

static int fake_kexec_reboot(struct hl_backend *be, int dev)
{
	int rc = fake_fault(be, "kexec-reboot");

	if (rc < 0)
		return rc;
	return fake_call(dev, -1, NULL, NULL, 0, "KEXEC");
}

void hl_backend_fake_init(struct hl_backend *be, const char *sockpath)
{
	memset(be, 0, sizeof(*be));
	be->name = "fake";
	be->fake = true;
	snprintf(be->path, sizeof(be->path), "%s", sockpath);
	be->open_dev = fake_open_dev;
	be->create_session = fake_create;
	be->retrieve_session = fake_retrieve;
	be->preserve_fd = fake_preserve;
	be->retrieve_fd = fake_retrieve_fd;
	be->finish = fake_finish;
	be->get_name = fake_get_name;
	be->kexec_load = fake_kexec_load;
	be->kexec_unload = fake_kexec_unload;
	be->kexec_reboot = fake_kexec_reboot;
	be->hugetlb_supported = fake_hugetlb;
	be->fault = fake_fault;
}
