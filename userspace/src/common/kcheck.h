/* SPDX-License-Identifier: MIT */
/* Kernel capability probes shared by the agent and `hugelivectl check`. */
#ifndef HL_KCHECK_H
#define HL_KCHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Look up CONFIG_<sym> in /proc/config.gz or /boot/config-$(uname -r).
 * Returns 'y', 'm', 'n' (explicitly unset), or 0 when no config is readable.
 */
int hl_kconfig(const char *sym);

/*
 * Look up CONFIG_<sym> in one config file, plain or gzip-compressed (zlib
 * reads both). Returns 'y', 'm', 'n' (unset or absent), or -1 when the file
 * cannot be opened or is a damaged gzip stream.
 */
int hl_kconfig_file(const char *path, const char *sym);

/*
 * Effective value of a boot parameter (last occurrence wins, as in the
 * kernel's parser). Returns a malloc'd string or NULL if absent.
 */
char *hl_cmdline_param(const char *cmdline, const char *key);

/* kho=on (or 1/y) and liveupdate=on (or 1/y) both in effect. */
bool hl_param_on(const char *cmdline, const char *key);

/*
 * Can the running kernel preserve hugetlb files through LUO?
 * Returns 1 yes, 0 no, -1 unknown; *how (static string) names the evidence.
 * Order: $HUGELIVE_HUGETLB_SUPPORT (0/1, for tests), a probe on dev_fd
 * (an open /dev/liveupdate, or -1): preserving an empty MFD_HUGETLB memfd
 * in a throw-away session fails with ENOENT when no handler accepts
 * hugetlb files (only a clear answer counts, see hl_probe_verdict); then
 * CONFIG_LIVEUPDATE_HUGETLB from the kernel config.
 */
int hl_hugetlb_support(int dev_fd, const char **how);

/*
 * Verdict of the probe's PRESERVE_FD (rc, errno): 1 accepted, 0 a clear
 * "no handler" (ENOENT, EOPNOTSUPP), -1 anything else (unknown: another
 * errno says nothing about support).
 */
int hl_probe_verdict(int rc, int err);

/*
 * Which processes hold path open (the LUO device has one opener): scans
 * /proc/PID/fd for the same file (device and inode; st_rdev for device
 * nodes). Writes "pid N (comm), ..." into out (empty when none was found;
 * fds of processes the caller may not inspect are not seen) and sets
 * *systemd when one of them is the service manager (pid 1, or a process
 * named "systemd"): systemd v261+ keeps its FD store across live updates
 * through /dev/liveupdate and owns the device then. Returns the number of
 * holders found, or -errno if path cannot be stat'ed.
 */
int hl_dev_holders(const char *path, char *out, size_t len, bool *systemd);

/* The advice that goes with a device held by systemd. */
#define HL_SYSTEMD_OWNS "systemd owns live update on this host (its file descriptor store, " \
	"FileDescriptorStorePreserve=); hugelived cannot run beside it: hand the memfds to systemd's " \
	"FD store instead, or disable that and let hugelived own the device (docs/systemd.md)"

#endif
