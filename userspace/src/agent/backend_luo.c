/* SPDX-License-Identifier: MIT */
/* Real backend: /dev/liveupdate, kexec_file_load(2), reboot(2). */
#include "backend.h"
#include "shutdown.h"
#include "../common/kcheck.h"
#include "../common/sessfd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kexec.h>
#include <linux/liveupdate.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD 0x00000001
#endif
#ifndef KEXEC_FILE_NO_INITRAMFS
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif

static int luo_open_dev(struct hl_backend *be)
{
	int fd = open(be->path, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int luo_session_ioctl(int dev, unsigned long cmd, const char *name)
{
	struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

	/* create and retrieve share the same layout */
	_Static_assert(sizeof(struct liveupdate_ioctl_create_session) ==
		       sizeof(struct liveupdate_ioctl_retrieve_session), "layout");
	if (strlen(name) >= sizeof(a.name))
		return -ENAMETOOLONG;
	strncpy((char *)a.name, name, sizeof(a.name) - 1);
	if (ioctl(dev, cmd, &a) < 0)
		return -errno;
	return a.fd;
}

static int luo_create(struct hl_backend *be, int dev, const char *name)
{
	(void)be;
	return luo_session_ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, name);
}

static int luo_retrieve(struct hl_backend *be, int dev, const char *name)
{
	(void)be;
	return luo_session_ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
}

static int luo_preserve(struct hl_backend *be, int sfd, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };

	(void)be;
	return ioctl(sfd, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0 ? -errno : 0;
}

static int luo_retrieve_fd(struct hl_backend *be, int sfd, uint64_t token)
{
	(void)be;
	return hl_luo_retrieve_fd(sfd, token);
}

static int luo_finish(struct hl_backend *be, int sfd)
{
	struct liveupdate_session_finish a = { .size = sizeof(a) };

	(void)be;
	return ioctl(sfd, LIVEUPDATE_SESSION_FINISH, &a) < 0 ? -errno : 0;
}

static int luo_get_name(struct hl_backend *be, int sfd, char name[HL_KNAME_MAX])
{
	struct liveupdate_session_get_name a = { .size = sizeof(a) };

	(void)be;
	if (ioctl(sfd, LIVEUPDATE_SESSION_GET_NAME, &a) < 0)
		return -errno;
	memcpy(name, a.name, HL_KNAME_MAX);
	name[HL_KNAME_MAX - 1] = '\0';
	return 0;
}

static int luo_kexec_load(struct hl_backend *be, int dev, int kfd, int ifd, const char *cmdline)
{
	unsigned long flags = ifd < 0 ? KEXEC_FILE_NO_INITRAMFS : 0;

	(void)be;
	(void)dev;
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, flags) < 0)
		return -errno;
	return 0;
}

static int luo_kexec_unload(struct hl_backend *be, int dev)
{
	(void)be;
	(void)dev;
	if (syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long)KEXEC_FILE_UNLOAD) < 0)
		return -errno;
	return 0;
}

static int luo_kexec_reboot(struct hl_backend *be, int dev)
{
	(void)be;
	(void)dev;
	/* no init does it for us: sync, unmount or remount read-only, sync */
	shutdown_prepare();
	if (syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		    LINUX_REBOOT_CMD_KEXEC, NULL) < 0)
		return -errno;
	return 0; /* not reached */
}

static int luo_hugetlb(struct hl_backend *be, int dev)
{
	const char *how;
	int r;

	(void)be;
	r = hl_hugetlb_support(dev, &how);
	return r;
}

void hl_backend_luo_init(struct hl_backend *be, const char *devpath)
{
	memset(be, 0, sizeof(*be));
	be->name = "luo";
	snprintf(be->path, sizeof(be->path), "%s", devpath);
	be->open_dev = luo_open_dev;
	be->create_session = luo_create;
	be->retrieve_session = luo_retrieve;
	be->preserve_fd = luo_preserve;
	be->retrieve_fd = luo_retrieve_fd;
	be->finish = luo_finish;
	be->get_name = luo_get_name;
	be->kexec_load = luo_kexec_load;
	be->kexec_unload = luo_kexec_unload;
	be->kexec_reboot = luo_kexec_reboot;
	be->hugetlb_supported = luo_hugetlb;
}
