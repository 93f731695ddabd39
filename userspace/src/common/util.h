/* SPDX-License-Identifier: MIT */
/* hugelive: small helpers shared by the agent, the library and the tool. */
#ifndef HL_UTIL_H
#define HL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic milliseconds. */
int64_t hl_now_ms(void);
/* Wall clock seconds. */
int64_t hl_wall_s(void);

/* Symbolic errno name ("EEXIST"), "E?" for unknown. */
const char *hl_errno_name(int err);
/* Parse a symbolic name back; returns 0 if unknown. */
int hl_errno_from_name(const char *name);

/*
 * Send one packet with at most one fd (fd < 0: none). Returns bytes sent or
 * -errno. MSG_NOSIGNAL and MSG_DONTWAIT when nonblock is true.
 */
ssize_t hl_send_packet(int sock, const void *buf, size_t len, int fd, bool nonblock);

/*
 * Receive one packet. *fd_out receives the passed fd (or -1). Extra fds
 * beyond the first are closed and *nfds_out counts all of them. Sets
 * *truncated when the packet (or control data) did not fit. Returns bytes
 * received (0 = EOF) or -errno.
 */
ssize_t hl_recv_packet(int sock, void *buf, size_t cap, int *fd_out, int *nfds_out,
		       bool *truncated, bool nonblock);

/*
 * Listening AF_UNIX SOCK_SEQPACKET socket at path (an old socket file is
 * replaced), created with permissions mode (no window with wider ones).
 * Returns the fd (close-on-exec) or -errno.
 */
int hl_listen_unix(const char *path, unsigned mode, int backlog, bool nonblock);

/*
 * Receive one packet keeping every passed fd (up to maxfds; the control
 * buffer has room for the kernel's maximum, so none is dropped in the
 * kernel). The caller closes them.
 */
#define HL_SCM_MAX_FD 253
ssize_t hl_recv_packet_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds_out,
			   bool *truncated, bool nonblock);

/*
 * Strict decimal number: digits only (no sign, space, suffix or empty
 * string), within [min, max]. Returns 0 or -EINVAL / -ERANGE.
 */
int hl_parse_num(const char *s, long long min, long long max, long long *out);

int hl_set_nonblock(int fd, bool on);
int hl_set_cloexec(int fd, bool on);

/* Session name rule: 1..HL_MAX_NAME chars from [A-Za-z0-9._-], first not '.' or '-'. */
bool hl_name_valid(const char *name);
/* Label rule: printable ASCII (0x20..0x7e) up to HL_MAX_LABEL. */
bool hl_label_valid(const char *label);

/* Read a whole small file (e.g. /proc/cmdline) into a malloc'd NUL-terminated string. */
char *hl_read_file(const char *path, size_t max, size_t *len_out);

/* Does the command line contain the word w (e.g. "kho=on")? */
bool hl_cmdline_has(const char *cmdline, const char *word);

/* Is fd backed by hugetlbfs (including MFD_HUGETLB memfds)? */
bool hl_fd_is_hugetlb(int fd);

#endif
