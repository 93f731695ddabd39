/* SPDX-License-Identifier: MIT */
/*
 * Device backend of the agent: everything that talks to the kernel's live
 * update machinery. Two implementations: the real one (/dev/liveupdate
 * ioctls, kexec_file_load, reboot) and a fake used by the host tests, which
 * forwards every call to the hugelive-fakeluo test server (a process that
 * mimics LUO's semantics and errnos, see src/fakeluo/fakeluo.c).
 *
 * All functions return >= 0 on success (an fd where one is produced) or
 * -errno.
 */
#ifndef HL_BACKEND_H
#define HL_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#define HL_KNAME_MAX 64 /* LIVEUPDATE_SESSION_NAME_LENGTH, including NUL */

struct hl_backend {
	const char *name;
	bool fake;
	char path[256];
	int (*open_dev)(struct hl_backend *be);
	int (*create_session)(struct hl_backend *be, int dev, const char *name);
	int (*retrieve_session)(struct hl_backend *be, int dev, const char *name);
	int (*preserve_fd)(struct hl_backend *be, int sfd, int fd, uint64_t token);
	int (*retrieve_fd)(struct hl_backend *be, int sfd, uint64_t token);
	int (*finish)(struct hl_backend *be, int sfd);
	int (*get_name)(struct hl_backend *be, int sfd, char name[HL_KNAME_MAX]);
	/* kernel_fd/initrd_fd: open files (initrd_fd < 0: none). */
	int (*kexec_load)(struct hl_backend *be, int dev, int kernel_fd, int initrd_fd,
			  const char *cmdline);
	int (*kexec_unload)(struct hl_backend *be, int dev);
	/* Real: does not return on success. Fake: returns 0, caller exits. */
	int (*kexec_reboot)(struct hl_backend *be, int dev);
	/* 1 when the running kernel can preserve hugetlb files, 0 if not. */
	int (*hugetlb_supported)(struct hl_backend *be, int dev);
	/*
	 * Tests only (NULL in the real backend): fault injection at a named
	 * point of the agent ("state:<reason>", "kexec-reboot"). Returns 0 or
	 * the -errno to fail with; may kill the agent to simulate a crash.
	 */
	int (*fault)(struct hl_backend *be, const char *point);
};

void hl_backend_luo_init(struct hl_backend *be, const char *devpath);
void hl_backend_fake_init(struct hl_backend *be, const char *sockpath);

/*
 * Kernel support for preserving hugetlb files (CONFIG_LIVEUPDATE_HUGETLB).
 * Returns 1 yes, 0 no, -1 unknown. *how describes the evidence. Kept in one
 * place so that it is easy to adjust to what the kernel patch exposes.
 */
int hl_kernel_hugetlb_support(const char **how);

#endif
