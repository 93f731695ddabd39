/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the host integration tests: a private work directory,
 * the hugelive-fakeluo server, the agent (daemonized, keeper fd store),
 * uid switching, hugelivectl, fault injection.
 */
#ifndef HL_TEST_HARNESS_H
#define HL_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NOBODY 65534

struct json_object;

extern char h_dir[64], h_luo[96], h_sock[96], h_keeper[96], h_alog[96], h_faults[96];
extern const char *h_bindir;
/* h_fresh_kernel() starts a fake kernel that can preserve hugetlb files */
extern bool h_fake_hugetlb;

/* A test's main: check the usage (BINDIR) and root (else a TAP skip), then
 * h_init. Returns -1 to go on, else main's exit code. */
int h_main_init(int argc, char **argv, const char *name, const char *tag);
/* A test's end: stop everything, then h_logs_clean(). (The ok() is the
 * caller's: tap.h keeps its counters per translation unit.) */
bool h_finish(void);
/* main's exit code tap_rc (tap_done()); h_cleanup when it is 0. */
int h_exit(int tap_rc);
/* Set up the work dir (mkdtemp), raise RLIMIT_NOFILE. Returns 0 or -1. */
int h_init(const char *bindir, const char *tag);
/* Stop agent, keepers and fakeluo; start a fresh fakeluo (empty "kernel"). */
void h_fresh_kernel(void);
void h_stop_all(void);
/* Start the agent (daemonized; returns the system() status, 0 once ready). */
int h_agent_start(const char *extra);
int64_t h_agent_pid(void);
/* Like h_agent_start, after shell commands pre (NULL: none). */
int h_agent_start_pre(const char *pre, const char *extra);
/* SIGTERM the agent (found by its status, retried for 2 s) and wait for it. */
bool h_stop_agent(void);
bool h_kill9_agent(void);
/* kill(2) that never signals pid <= 1 (kill(-1, ...) would hit every process): -1/ESRCH. */
int h_safe_kill(pid_t pid, int sig);
bool h_wait_gone(pid_t pid, int ms);
/* The fakeluo listing (sessions, files, loaded kernel); static buffer. */
const char *h_fake_dump(void);
/* status reply (caller puts it), or NULL */
struct json_object *h_status(void);
/* Drop supplementary groups and switch to uid/gid uid; 0 or -1. */
int h_become(uid_t uid);
/* Run fn in a child with uid/gid uid (NOBODY); returns the child's exit status. */
int h_as_uid(uid_t uid, int (*fn)(void));
int h_as_nobody(int (*fn)(void));
/* Raw SEQPACKET connection to the agent (5 s receive timeout); flags: extra
 * socket(2) type flags such as SOCK_NONBLOCK. Returns the socket or -1. */
int h_raw_connect(int flags);
/* Send m with the two fds attached (a protocol violation); sendmsg's result. */
ssize_t h_send_two_fds(int s, const char *m, size_t len, const int fds[2], int flags);
/* Receive one reply: its error code (0 ok, -1 EOF/none, -2 not JSON), and its
 * error message into msg (if msg is not NULL). */
int h_raw_reply_msg(int s, char *msg, size_t len);
int h_raw_reply(int s);
/* Did the peer close the connection (next recv returns 0)? */
bool h_is_eof(int s);
/* hugelivectl ARGS; returns its exit status. */
int h_tool(const char *args);
/* Replace the fault-injection file (NULL or "": no faults). */
void h_set_faults(const char *content);
/* Does the agent log match this extended regex? */
bool h_log_has(const char *ere);
/* pid of the newest keeper announced in the agent log, or -1 */
pid_t h_keeper_pid(void);
int h_make_memfd(const char *content);
bool h_memfd_has(int fd, const char *content);
/* root update request over libhugelive; returns 0/-errno, error text in err */
int h_update(const char *kernel, int timeout_ms, char *err, size_t errlen);
/* path of the fake kernel image */
const char *h_kernel(void);
/* No sanitizer report in any log of the work dir. */
bool h_logs_clean(void);
/* Remove the work dir unless HUGELIVE_KEEP_TEST_DIR is set. */
void h_cleanup(void);

#endif
