/* SPDX-License-Identifier: MIT */
/* Kernel capability probes shared by the agent and `hugelivectl check`. */
#ifndef HL_KCHECK_H
#define HL_KCHECK_H

#include <stdbool.h>

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

#endif
