// SPDX-License-Identifier: GPL-2.0
/* hugelive VM scenario support library; see scenario.h. */
#include "scenario.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

/* ---- parameters ------------------------------------------------------- */

static char cmdline[4096];
static bool cmdline_read;

static const char *get_cmdline(void)
{
	if (!cmdline_read) {
		int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

		cmdline_read = true;
		if (fd >= 0) {
			ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);

			if (n > 0)
				cmdline[n] = 0;
			close(fd);
		}
		cmdline[strcspn(cmdline, "\n")] = 0;
	}
	return cmdline;
}

const char *hl_param(const char *key)
{
	static char vals[16][256];
	static int next;
	const char *p = get_cmdline();
	size_t klen = strlen(key);
	const char *found = NULL;

	/* The last occurrence wins, like the kernel's own parsing. */
	while (*p) {
		size_t wlen;

		while (*p == ' ')
			p++;
		wlen = strcspn(p, " ");
		if (wlen > 9 && !strncmp(p, "hugelive.", 9) &&
		    wlen >= 9 + klen && !strncmp(p + 9, key, klen)) {
			const char *rest = p + 9 + klen;

			if (rest == p + wlen) {
				found = "1";
			} else if (*rest == '=') {
				char *v = vals[next++ % 16];
				size_t vl = wlen - 9 - klen - 1;

				if (vl > 255)
					vl = 255;
				memcpy(v, rest + 1, vl);
				v[vl] = 0;
				found = v;
			}
		}
		p += wlen;
	}
	return found;
}

long long hl_param_ll(const char *key, long long dflt)
{
	const char *v = hl_param(key);

	return v ? strtoll(v, NULL, 0) : dflt;
}

int hl_gen(void)
{
	return (int)hl_param_ll("gen", 0);
}

int hl_generations(void)
{
	return (int)hl_param_ll("generations", 1);
}

const char *hl_flavour(int gen)
{
	static char out[4][32];
	static int next;
	const char *list = hl_param("kernels"), *p;
	char *o = out[next++ % 4];
	size_t n = 0;

	if (!list || gen < 0)
		return NULL;
	/* hugelive.kernels_cycle=1: the list repeats (word gen mod N) */
	if (hl_param_ll("kernels_cycle", 0) == 1) {
		int nw = 1;

		for (p = list; (p = strchr(p, ',')); p++)
			nw++;
		gen %= nw;
	}
	/* word gen of the comma-separated list, else the last one */
	for (p = list; gen > 0 && strchr(p, ','); gen--)
		p = strchr(p, ',') + 1;
	while (p[n] && p[n] != ',' && n + 1 < sizeof(out[0]))
		n++;
	memcpy(o, p, n);
	o[n] = 0;
	return o;
}

int hl_run_gens(void (*gen0)(void), void (*gen1)(void))
{
	if (hl_gen() == 0)
		gen0();
	else
		gen1();
	return hl_exit();
}

bool hl_last_gen(void)
{
	return hl_gen() + 1 >= hl_generations();
}

const char *hl_kconfig(const char *sym)
{
	static char val[256];
	char line[512];
	size_t slen = strlen(sym);
	const char *ret = NULL;
	FILE *f = popen("zcat /proc/config.gz 2>/dev/null", "r");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "CONFIG_", 7) && !strncmp(line + 7, sym, slen) &&
		    line[7 + slen] == '=') {
			snprintf(val, sizeof(val), "%s", line + 8 + slen);
			val[strcspn(val, "\n")] = 0;
			ret = val;
		}
	}
	pclose(f);
	return ret;
}

/* ---- output ------------------------------------------------------------ */

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static int results_fd = -2;
static int test_no;
static int failures;

static int get_results_fd(void)
{
	if (results_fd == -2) {
		const char *path = getenv("HUGELIVE_RESULTS");

		results_fd = -1;
		if (path && *path) {
			results_fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
			if (results_fd >= 0) {
				struct termios t;

				if (!tcgetattr(results_fd, &t)) {
					cfmakeraw(&t);
					tcsetattr(results_fd, TCSANOW, &t);
				}
			}
		}
	}
	return results_fd;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* One line to the results channel (if any) and to stdout. */
static void emit(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s", prefix);
	int rfd = get_results_fd();

	if (n < 0)
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	/* Keep it one line whatever the message holds. */
	for (char *c = line; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	strcat(line, "\n");
	fflush(stdout);
	if (rfd >= 0)
		write_all(rfd, line, strlen(line));
	write_all(STDOUT_FILENO, line, strlen(line));
}

static void emitf(const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void emitf(const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(prefix, fmt, ap);
	va_end(ap);
}

static void vresult(bool cond, const char *fmt, va_list ap)
{
	char prefix[64];

	test_no++;
	if (!cond)
		failures++;
	snprintf(prefix, sizeof(prefix), "%s %d - [gen%d] ",
		 cond ? "ok" : "not ok", test_no, hl_gen());
	emit(prefix, fmt, ap);
}

bool hl_ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vresult(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool hl_errno_(long ret, int actual_errno, int expected_errno,
	       const char *fmt, ...)
{
	char desc[512], got[128];
	bool cond = ret < 0 && actual_errno == expected_errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (ret < 0)
		snprintf(got, sizeof(got), "%s", errname(actual_errno));
	else
		snprintf(got, sizeof(got), "success (%ld)", ret);
	return hl_ok(cond, "%s: expect %s, got %s", desc,
		     errname(expected_errno), got);
}

bool hl_success_(long ret, int actual_errno, const char *fmt, ...)
{
	char desc[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	if (ret >= 0)
		return hl_ok(true, "%s", desc);
	return hl_ok(false, "%s: failed with %s (%s)", desc,
		     errname(actual_errno), strerror(actual_errno));
}

void hl_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("# ", fmt, ap);
	va_end(ap);
}

void hl_report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("report: ", fmt, ap);
	va_end(ap);
}

void hl_bail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vresult(false, fmt, ap);
	va_end(ap);
	exit(1);
}

int hl_failures(void)
{
	return failures;
}

int hl_exit(void)
{
	return failures ? 1 : 0;
}

/* ---- LUO ----------------------------------------------------------------- */

int hl_luo_open(void)
{
	return open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
}

int hl_luo_create_session_raw(int luo_fd, const uint8_t name[64])
{
	struct liveupdate_ioctl_create_session arg = { .size = sizeof(arg) };

	memcpy(arg.name, name, sizeof(arg.name));
	if (ioctl(luo_fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &arg) < 0)
		return -1;
	return arg.fd;
}

int hl_luo_create_session(int luo_fd, const char *name)
{
	uint8_t buf[LIVEUPDATE_SESSION_NAME_LENGTH] = { 0 };

	strncpy((char *)buf, name, sizeof(buf) - 1);
	return hl_luo_create_session_raw(luo_fd, buf);
}

int hl_luo_retrieve_session(int luo_fd, const char *name)
{
	struct liveupdate_ioctl_retrieve_session arg = { .size = sizeof(arg) };

	strncpy((char *)arg.name, name, sizeof(arg.name) - 1);
	if (ioctl(luo_fd, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &arg) < 0)
		return -1;
	return arg.fd;
}

int hl_luo_preserve_fd(int session_fd, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd arg = {
		.size = sizeof(arg), .fd = fd, .token = token,
	};

	return ioctl(session_fd, LIVEUPDATE_SESSION_PRESERVE_FD, &arg) < 0 ? -1 : 0;
}

int hl_luo_retrieve_fd(int session_fd, uint64_t token)
{
	struct liveupdate_session_retrieve_fd arg = {
		.size = sizeof(arg), .token = token,
	};

	if (ioctl(session_fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &arg) < 0)
		return -1;
	return arg.fd;
}

int hl_luo_finish(int session_fd)
{
	struct liveupdate_session_finish arg = { .size = sizeof(arg) };

	return ioctl(session_fd, LIVEUPDATE_SESSION_FINISH, &arg) < 0 ? -1 : 0;
}

int hl_luo_get_name(int session_fd, char name[64])
{
	struct liveupdate_session_get_name arg = { .size = sizeof(arg) };

	if (ioctl(session_fd, LIVEUPDATE_SESSION_GET_NAME, &arg) < 0)
		return -1;
	memcpy(name, arg.name, sizeof(arg.name));
	name[63] = 0;
	return 0;
}

/* ---- memory ---------------------------------------------------------------- */

int hl_memfd(const char *name, size_t size, unsigned int flags)
{
	int fd = memfd_create(name, flags);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void *hl_map(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

long long hl_fd_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	return (long long)st.st_size;
}

uint64_t hl_pattern_word(uint64_t offset, uint64_t seed)
{
	/* Odd multipliers: a bijection of the offset for any seed. */
	return ((offset + seed * 0x9E3779B97F4A7C15ULL) * 0xBF58476D1CE4E5B9ULL) ^
	       (seed << 1);
}

void hl_pattern_fill(void *buf, size_t len, uint64_t base_off, uint64_t seed)
{
	uint64_t *w = buf;
	size_t n = len / 8;

	for (size_t i = 0; i < n; i++)
		w[i] = hl_pattern_word(base_off + i * 8, seed);
}

bool hl_pattern_verify(const void *buf, size_t len, uint64_t base_off,
		       uint64_t seed, struct hl_mismatch *m)
{
	const uint64_t *w = buf;
	size_t n = len / 8;
	uint64_t bad = 0;
	struct hl_mismatch first = { 0 };

	for (size_t i = 0; i < n; i++) {
		uint64_t want = hl_pattern_word(base_off + i * 8, seed);

		if (__builtin_expect(w[i] != want, 0)) {
			if (!bad) {
				first.offset = base_off + i * 8;
				first.expected = want;
				first.actual = w[i];
			}
			bad++;
		}
	}
	first.bad_words = bad;
	if (m)
		*m = first;
	return bad == 0;
}

/* ---- time ------------------------------------------------------------------ */

uint64_t hl_now_ns(int clockid)
{
	struct timespec ts;

	clock_gettime(clockid, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void hl_stamp_now(struct hl_stamp *s)
{
	s->tsc = __rdtsc();
	s->realtime_ns = hl_now_ns(CLOCK_REALTIME);
	s->gen = (uint64_t)hl_gen();
	s->magic = HL_STAMP_MAGIC;
}

double hl_tsc_hz(void)
{
	static double hz;

	if (hz == 0) {
		struct timespec d = { 0, 100 * 1000 * 1000 };
		uint64_t t0 = hl_now_ns(CLOCK_MONOTONIC_RAW), c0 = __rdtsc();
		uint64_t t1, c1;

		nanosleep(&d, NULL);
		c1 = __rdtsc();
		t1 = hl_now_ns(CLOCK_MONOTONIC_RAW);
		hz = (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
	}
	return hz;
}

void hl_elapsed_since(const struct hl_stamp *then, const struct hl_stamp *now,
		      struct hl_elapsed *out)
{
	out->tsc_ms = (double)(int64_t)(now->tsc - then->tsc) * 1e3 / hl_tsc_hz();
	out->realtime_ms =
		(double)(int64_t)(now->realtime_ns - then->realtime_ns) / 1e6;
}

/* ---- kexec ------------------------------------------------------------------ */

static void drain_outputs(void)
{
	fflush(stdout);
	fflush(stderr);
	if (get_results_fd() >= 0)
		tcdrain(results_fd);
	tcdrain(STDOUT_FILENO);
}

int hl_kexec_next_generation(struct hl_stamp *stamp)
{
	return hl_kexec_next_generation_with(stamp, NULL);
}

int hl_kexec_next_generation_with(struct hl_stamp *stamp, const char *append)
{
	const char *kernel = getenv("HUGELIVE_KERNEL");
	const char *initrd = getenv("HUGELIVE_NEXT_INITRD");
	char next[4096];
	const char *p = get_cmdline();
	size_t len = 0;
	int kfd, ifd;
	struct hl_stamp s;

	if (!kernel || !*kernel)
		kernel = "/boot/bzImage";
	if (!initrd || !*initrd)
		initrd = "/tmp/next-initrd.cpio";

	/* Same cmdline, with hugelive.gen= replaced by the next generation. */
	next[0] = 0;
	while (*p) {
		size_t wlen;

		while (*p == ' ')
			p++;
		wlen = strcspn(p, " ");
		if (wlen && !(wlen > 13 && !strncmp(p, "hugelive.gen=", 13))) {
			if (len + wlen + 2 >= sizeof(next))
				break;
			memcpy(next + len, p, wlen);
			len += wlen;
			next[len++] = ' ';
			next[len] = 0;
		}
		p += wlen;
	}
	snprintf(next + len, sizeof(next) - len, "hugelive.gen=%d%s%s", hl_gen() + 1,
		 append ? " " : "", append ? append : "");

	kfd = open(kernel, O_RDONLY | O_CLOEXEC);
	ifd = open(initrd, O_RDONLY | O_CLOEXEC);
	if (kfd < 0 || ifd < 0) {
		hl_ok(false, "kexec: open %s / %s: %s", kernel, initrd,
		      strerror(errno));
		return -1;
	}
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next, 0UL)) {
		int e = errno;

		hl_ok(false, "kexec_file_load(%s, %s): %s", kernel, initrd,
		      strerror(e));
		errno = e;
		return -1;
	}
	close(kfd);
	close(ifd);

	hl_stamp_now(&s);
	emitf("HUGELIVE ", "kexec gen=%d tsc=%llu realtime_ns=%llu", hl_gen(),
	      (unsigned long long)s.tsc, (unsigned long long)s.realtime_ns);
	drain_outputs();
	hl_stamp_now(&s);
	if (stamp)
		*stamp = s;
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		LINUX_REBOOT_CMD_KEXEC, NULL);
	hl_ok(false, "reboot(LINUX_REBOOT_CMD_KEXEC) returned: %s",
	      strerror(errno));
	return -1;
}
