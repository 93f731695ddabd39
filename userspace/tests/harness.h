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

/* Set up the work dir (mkdtemp), raise RLIMIT_NOFILE. Returns 0 or -1. */
int h_init(const char *bindir, const char *tag);
/* Stop agent, keepers and fakeluo; start a fresh fakeluo (empty "kernel"). */
void h_fresh_kernel(void);
void h_stop_all(void);
/* Start the agent (daemonized; returns the system() status, 0 once ready). */
int h_agent_start(const char *extra);
int64_t h_agent_pid(void);
bool h_kill9_agent(void);
bool h_wait_gone(pid_t pid, int ms);
/* The fakeluo listing (sessions, files, loaded kernel); static buffer. */
const char *h_fake_dump(void);
/* status reply (caller puts it), or NULL */
struct json_object *h_status(void);
/* Run fn in a child with uid/gid NOBODY; returns the child's exit status. */
int h_as_nobody(int (*fn)(void));
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
