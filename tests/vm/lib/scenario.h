/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hugelive VM scenario support library.
 *
 * A scenario is one static C program, tests/vm/NAME.c, run as
 * /scenarios/NAME by the VM's /init in every generation (a generation is one
 * kernel, reached from the previous one by kexec). Its header comment holds
 * one metadata line read by vm/run-scenario.sh, e.g.
 *
 *   hugelive-scenario: generations=3 mem=1024 timeout=300 cmdline="hugepages=64"
 *
 * The program asks hl_gen() which generation it is in, does that stage's
 * work, reports TAP lines with hl_ok()/hl_errno(), and either calls
 * hl_kexec_next_generation() (keeping its session fds open!) or returns
 * hl_exit() in the last generation.
 *
 * Results go to a dedicated serial port (ttyS1, $HUGELIVE_RESULTS) that
 * kernel printk never writes to, and are echoed on stdout (the console).
 */
#ifndef HUGELIVE_SCENARIO_H
#define HUGELIVE_SCENARIO_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/liveupdate.h>

/* ---- generation and parameters ------------------------------------- */

/* Current generation, 0-based (hugelive.gen= on the kernel cmdline). */
int hl_gen(void);
/* Number of generations the harness expects (hugelive.generations=). */
int hl_generations(void);
/* True in the last generation: no kexec follows. */
bool hl_last_gen(void);
/*
 * Value of "hugelive.KEY=VALUE" on /proc/cmdline, "1" for a bare
 * "hugelive.KEY", NULL when absent. Every hugelive.* option given to the
 * runner (cmdline= metadata, CORRUPT=1, EXTRA_CMDLINE) reaches every
 * generation.
 */
const char *hl_param(const char *key);
long long hl_param_ll(const char *key, long long dflt);
/* Value of CONFIG_SYM in /proc/config.gz ("y", "m", "123"...) or NULL. */
const char *hl_kconfig(const char *sym);
/*
 * Multi-kernel scenarios (metadata kernels="F0 F1 ..."): the kernel flavour
 * generation gen runs ("debug", "vmb", "v0.1", "stock", ...; the last one
 * named for later generations; with kernels_cycle=1 word gen mod N), NULL
 * without kernels=. Its image is
 * /boot/bzImage-FLAVOUR; hl_kexec_next_generation() loads the next one.
 */
const char *hl_flavour(int gen);

/* ---- TAP reporting --------------------------------------------------- */

/* "ok N - [genG] DESC" or "not ok N - [genG] DESC"; returns cond. */
bool hl_ok(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Assert that a call failed with errno err, e.g.
 *   hl_errno(ioctl(...), errno, EBUSY, "second open");
 * The TAP line names the expected and actual result. These are macros: the
 * call is evaluated first and errno read right after it (as function
 * arguments the order would be unspecified and errno could be stale); the
 * second argument is only there to read naturally and is not evaluated.
 */
bool hl_errno_(long ret, int actual_errno, int expected_errno,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define hl_errno(call, errno_unused, expected, ...) __extension__ ({	\
	long hl_r_ = (long)(call);					\
	int hl_e_ = errno;						\
	hl_errno_(hl_r_, hl_e_, (expected), __VA_ARGS__);		\
})
/* Assert success (ret >= 0); on failure the line names errno. */
bool hl_success_(long ret, int actual_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define hl_success(call, errno_unused, ...) __extension__ ({		\
	long hl_r_ = (long)(call);					\
	int hl_e_ = errno;						\
	hl_success_(hl_r_, hl_e_, __VA_ARGS__);				\
})
/* "# ..." diagnostic line. */
void hl_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "report: ..." line; the demo prints these as its report. */
void hl_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Emit "not ok" with the message and exit(1). */
void hl_bail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* Failures so far in this generation. */
int hl_failures(void);
/* Exit status for main(): 0 when no failure, 1 otherwise. */
int hl_exit(void);
/* main() of a two-stage scenario: gen0() in generation 0, gen1() in any
 * later one, then hl_exit(). */
int hl_run_gens(void (*gen0)(void), void (*gen1)(void));

/* ---- /dev/liveupdate (LUO) ------------------------------------------- */
/* All return -1 with errno set on failure, like the ioctls themselves. */

int hl_luo_open(void);                       /* O_RDWR /dev/liveupdate */
int hl_luo_create_session(int luo_fd, const char *name);    /* -> fd */
int hl_luo_retrieve_session(int luo_fd, const char *name);  /* -> fd */
/* Raw name buffer variants for bad-name tests (exactly 64 bytes used). */
int hl_luo_create_session_raw(int luo_fd, const uint8_t name[64]);
int hl_luo_preserve_fd(int session_fd, int fd, uint64_t token);
int hl_luo_retrieve_fd(int session_fd, uint64_t token);     /* -> fd */
int hl_luo_finish(int session_fd);
int hl_luo_get_name(int session_fd, char name[64]);

/* ---- memory helpers --------------------------------------------------- */

/* memfd_create(name, flags) + ftruncate(size); -1 on failure. */
int hl_memfd(const char *name, size_t size, unsigned int flags);
/* Shared RW mapping of the whole fd; NULL (not MAP_FAILED) on failure. */
void *hl_map(int fd, size_t size);
/* Size of an fd from fstat, or -1. */
long long hl_fd_size(int fd);

/*
 * Pattern: each 64-bit word depends on its byte offset in the object and a
 * seed, so any misplaced, stale or zeroed page is detected. base_off is the
 * offset of buf within the object (multiple of 8).
 */
uint64_t hl_pattern_word(uint64_t offset, uint64_t seed);
void hl_pattern_fill(void *buf, size_t len, uint64_t base_off, uint64_t seed);

struct hl_mismatch {
	uint64_t bad_words;  /* number of words that differ */
	uint64_t offset;     /* first bad byte offset (object offset) */
	uint64_t expected;
	uint64_t actual;
};
/* true when every word matches; otherwise fills *m (may be NULL). */
bool hl_pattern_verify(const void *buf, size_t len, uint64_t base_off,
		       uint64_t seed, struct hl_mismatch *m);

/* ---- time ------------------------------------------------------------- */

/*
 * A timestamp that can be compared across kexec. CLOCK_MONOTONIC restarts
 * at every boot; the TSC does not (kexec does not reset the CPU), and
 * CLOCK_REALTIME is re-read from the RTC (1 s resolution) at boot.
 */
struct hl_stamp {
	uint64_t magic;        /* HL_STAMP_MAGIC once written */
	uint64_t tsc;
	uint64_t realtime_ns;
	uint64_t gen;
};
#define HL_STAMP_MAGIC 0x504d415453484cULL /* "HLSTAMP" */

void hl_stamp_now(struct hl_stamp *s);
uint64_t hl_now_ns(int clockid);
/* TSC frequency in Hz, calibrated once against CLOCK_MONOTONIC_RAW. */
double hl_tsc_hz(void);
/* Elapsed from an earlier stamp (maybe from a previous kernel) to now. */
struct hl_elapsed {
	double tsc_ms;       /* from the TSC; the precise one */
	double realtime_ms;  /* from CLOCK_REALTIME; +-1 s across a boot */
};
void hl_elapsed_since(const struct hl_stamp *then, const struct hl_stamp *now,
		      struct hl_elapsed *out);

/* ---- kexec ------------------------------------------------------------ */

/*
 * kexec_file_load(/boot/bzImage, $HUGELIVE_NEXT_INITRD, this cmdline with
 * hugelive.gen=N+1) and reboot(LINUX_REBOOT_CMD_KEXEC). Session fds must
 * still be open. If stamp is not NULL (e.g. points into a preserved memfd)
 * the time of the reboot call is written there just before it; the stamp is
 * also logged. Returns only on failure (-1, errno set, a "not ok" emitted).
 */
int hl_kexec_next_generation(struct hl_stamp *stamp);
/*
 * The same, with append added at the end of the next generation's cmdline
 * (e.g. "liveupdate=off"; for most options the last occurrence wins, so a
 * later generation can append the opposite again).
 */
int hl_kexec_next_generation_with(struct hl_stamp *stamp, const char *append);

#endif
