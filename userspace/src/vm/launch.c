/* SPDX-License-Identifier: MIT */
/* hugelive-vm: the launcher's life cycle (see launch.h, docs/vm-guest.md). */
#include "launch.h"
#include "vmm.h"
#include "hugelive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

#define TOK_RAM		1	/* session NAME */
#define TOK_STATE	1	/* session NAME.state */
#define TOK_CONSOLE	2
#define TOK_MANIFEST	3

enum vstate { V_STARTING, V_RUNNING, V_SAVING, V_READY, V_RESTORING, V_STOPPED };
static const char *const vstate_name[] = { "starting", "running", "saving", "ready", "restoring", "stopped" };

struct ctx {
	struct launch_opts *o;
	struct vm_cfg cfg;
	hl_client *c;
	struct vmm vmm;
	int ram_fd, con_fd, con_app;	/* con_app: the console memfd opened O_APPEND */
	char qemu[PATH_MAX];
	char dir[PATH_MAX];
	char st_sess[64];		/* NAME.state */
	enum vstate state;
	uint32_t updates, cancels;
	/* last measurements, for the status file */
	long long pause_ms, save_ms, preserve_ms, state_bytes, qemu_start_ms, load_ms, restore_ms;
	/* the guest was stopped for this update */
	int64_t stop_rt;
	uint64_t stop_tsc;
	long long stop_ms;
};

static volatile sig_atomic_t quit_sig;

static void on_sig(int s)
{
	quit_sig = s;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __rdtsc();
#else
	return 0;
#endif
}

/* TSC ticks per ms, measured over 100 ms (0 without a TSC). */
static double tsc_per_ms(void)
{
	long long t0 = now_ms();
	uint64_t a = tsc();

	usleep(100000);
	uint64_t b = tsc();
	long long t1 = now_ms();

	return t1 > t0 && b > a ? (double)(b - a) / (double)(t1 - t0) : 0;
}

static void say(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct ctx *x, const char *fmt, ...)
{
	va_list ap;

	printf("hugelive-vm[%s]: ", x->cfg.name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A line of our own in the guest's console record. */
static void note(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct ctx *x, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (x->con_app < 0)
		return;
	n = snprintf(buf, sizeof(buf), "[hugelive-vm] ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(x->con_app, buf, (size_t)n) != n)
		say(x, "warning: writing to the console record: %s", strerror(errno));
}

static void status(struct ctx *x, enum vstate s)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	FILE *f;

	x->state = s;
	snprintf(path, sizeof(path), "%s/status", x->dir);
	snprintf(tmp, sizeof(tmp), "%s/.status.tmp", x->dir);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "state=%s\npid=%d\nqemu_pid=%d\nupdates=%u\ncancels=%u\n", vstate_name[s], (int)getpid(),
		(int)x->vmm.pid, x->updates, x->cancels);
	fprintf(f, "pause_ms=%lld\nsave_ms=%lld\npreserve_ms=%lld\nstate_bytes=%lld\nqemu_start_ms=%lld\n"
		"load_ms=%lld\nrestore_ms=%lld\n", x->pause_ms, x->save_ms, x->preserve_ms, x->state_bytes,
		x->qemu_start_ms, x->load_ms, x->restore_ms);
	fprintf(f, "qemu_version=%d.%d.%d\nmem=%llu\npage=%llu\naccel=%s\n", x->vmm.major, x->vmm.minor,
		x->vmm.micro, (unsigned long long)x->cfg.mem, (unsigned long long)x->cfg.page, x->cfg.accel);
	fclose(f);
	rename(tmp, path);
}

static int setup_dir(struct ctx *x)
{
	const char *base = x->o->rundir ? x->o->rundir : VM_RUNDIR;
	char link[PATH_MAX + 16], target[64];

	if (mkdir(base, 0755) && errno != EEXIST)
		return -errno;
	snprintf(x->dir, sizeof(x->dir), "%s/%s", base, x->cfg.name);
	if (mkdir(x->dir, 0700) && errno != EEXIST)
		return -errno;
	snprintf(link, sizeof(link), "%s/console", x->dir);
	snprintf(target, sizeof(target), "/proc/%d/fd/%d", (int)getpid(), x->con_fd);
	unlink(link);
	if (symlink(target, link))
		return -errno;
	return 0;
}

static int open_console(struct ctx *x)
{
	char p[64];

	if (x->con_fd < 0) {
		x->con_fd = memfd_create("hugelive-vm-console", MFD_CLOEXEC);
		if (x->con_fd < 0)
			return -errno;
	}
	snprintf(p, sizeof(p), "/proc/self/fd/%d", x->con_fd);
	x->con_app = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
	return x->con_app < 0 ? -errno : 0;
}

static long long pool_free(uint64_t page)
{
	char p[128];
	long long v = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
		 (unsigned long long)(page >> 10));
	f = fopen(p, "r");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* The guest RAM: a hugetlb memfd with every page allocated now. */
static int ram_create(struct ctx *x)
{
	unsigned int shift = x->cfg.page == (1ULL << 30) ? 30 : 21;
	long long freep = pool_free(x->cfg.page);
	const char *ps = shift == 30 ? "1 GiB" : "2 MiB";
	int fd = memfd_create("hugelive-vm-ram", MFD_CLOEXEC | MFD_HUGETLB | (shift << MFD_HUGE_SHIFT));

	if (fd < 0) {
		say(x, "error: cannot create a hugetlb memfd of %s pages: %s (is the %s pool configured? "
		    "hugepagesz=/hugepages= on the kernel command line)", ps, strerror(errno), ps);
		return -1;
	}
	if (ftruncate(fd, (off_t)x->cfg.mem) || fallocate(fd, 0, 0, (off_t)x->cfg.mem)) {
		int e = errno;

		say(x, "error: cannot allocate %llu MiB of guest RAM in %s pages: %s (the pool has %lld free "
		    "page(s), the guest needs %llu)", (unsigned long long)(x->cfg.mem >> 20), ps, strerror(e), freep,
		    (unsigned long long)(x->cfg.mem / x->cfg.page));
		close(fd);
		return -1;
	}
	return fd;
}

static int agent_connect(struct ctx *x, int wait_ms)
{
	long long end = now_ms() + wait_ms;
	int rc;

	for (;;) {
		rc = hl_connect(x->o->socket, &x->c);
		if (!rc)
			break;
		if (now_ms() >= end) {
			say(x, "error: cannot reach the hugelive agent: %s (is hugelived running?)", strerror(-rc));
			return rc;
		}
		usleep(100000);
	}
	hl_set_reconnect(x->c, 10000);
	return 0;
}

/* Is there a session "name" of ours from the previous kernel? */
static bool incoming(struct ctx *x, const char *name)
{
	struct hl_session_info *s = NULL;
	size_t n = 0;
	bool found = false;

	if (hl_list_sessions(x->c, &s, &n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i].incoming && !strcmp(s[i].name, name))
			found = true;
	hl_free_sessions(s, n);
	return found;
}

/* Session NAME with the RAM (token 1), and the barrier subscription. */
static int preserve_ram(struct ctx *x)
{
	char label[128];
	long long t0 = now_ms();
	int rc = hl_create_session(x->c, x->cfg.name);

	if (rc) {
		say(x, "error: creating session %s: %s%s%s", x->cfg.name, strerror(-rc),
		    *hl_last_error(x->c) ? ": " : "", hl_last_error(x->c));
		if (rc == -EEXIST)
			say(x, "(another hugelive-vm %s runs, or one ended without dropping it: "
			    "hugelivectl destroy %s)", x->cfg.name, x->cfg.name);
		return rc;
	}
	snprintf(label, sizeof(label), "hugelive-vm %s: guest RAM, %llu MiB", x->cfg.name,
		 (unsigned long long)(x->cfg.mem >> 20));
	rc = hl_preserve_fd(x->c, x->cfg.name, TOK_RAM, x->ram_fd, label);
	if (rc) {
		say(x, "error: preserving the guest RAM: %s: %s", strerror(-rc), hl_last_error(x->c));
		hl_destroy_session(x->c, x->cfg.name);
		return rc;
	}
	rc = hl_subscribe(x->c);
	if (rc) {
		say(x, "error: subscribing to the update barrier: %s: %s", strerror(-rc), hl_last_error(x->c));
		hl_destroy_session(x->c, x->cfg.name);
		return rc;
	}
	say(x, "guest RAM (%llu MiB, %s pages) preserved in session %s, token %d (%lld ms); subscribed",
	    (unsigned long long)(x->cfg.mem >> 20), x->cfg.page == (1ULL << 30) ? "1 GiB" : "2 MiB", x->cfg.name,
	    TOK_RAM, now_ms() - t0);
	return 0;
}

static void drop_state_session(struct ctx *x)
{
	int rc = hl_destroy_session(x->c, x->st_sess);

	if (rc && rc != -ENOENT)
		say(x, "warning: dropping session %s: %s: %s", x->st_sess, strerror(-rc), hl_last_error(x->c));
}

/* Back to running after a refusal or a cancel. The guest is only ever stopped here. */
static void resume_guest(struct ctx *x, const char *why)
{
	char rs[32] = "?";
	int rc;

	drop_state_session(x);
	/* before cont: every guest line after this note is from the continued guest */
	note(x, "continuing the guest in the same QEMU (%s)", why);
	rc = vmm_cont(&x->vmm);
	vmm_runstate(&x->vmm, rs, sizeof(rs));
	if (rc)
		say(x, "error: continuing the guest (%s): %s; QEMU's state: %s", why, x->vmm.err, rs);
	else
		say(x, "guest continued (%s) after %lld ms paused; QEMU's state: %s", why, now_ms() - x->stop_ms, rs);
	status(x, V_RUNNING);
}

static int memfd_with(const char *name, const void *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd >= 0 && len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The barrier's prepare: stop, save, preserve, ready (or refuse and continue). */
static void prepare(struct ctx *x, const struct hl_event *ev)
{
	char why[1400], reason[250];
	struct vm_manifest m = { .cfg = x->cfg };
	int state_fd = -1, man_fd = -1, rc;
	long long budget = ev->timeout_ms > 4000 ? ev->timeout_ms - 2000 : ev->timeout_ms / 2;
	struct stat st;
	char *js = NULL;

	if (x->state == V_READY) {	/* told again (agent restarted): still ready */
		hl_ready(x->c, ev->update_id);
		return;
	}
	say(x, "update %llu: prepare (kernel %s, %lld ms to answer): stopping the guest",
	    (unsigned long long)ev->update_id, ev->text, (long long)ev->timeout_ms);
	status(x, V_SAVING);
	x->stop_ms = now_ms();
	x->stop_tsc = tsc();
	x->stop_rt = realtime_ns();
	rc = vmm_stop_guest(&x->vmm);
	if (rc) {
		snprintf(why, sizeof(why), "hugelive-vm %s: cannot stop the guest: %s", x->cfg.name, x->vmm.err);
		goto refuse;
	}
	note(x, "guest stopped for host live update %llu", (unsigned long long)ev->update_id);
	state_fd = memfd_create("hugelive-vm-state", MFD_CLOEXEC);
	if (state_fd < 0) {
		snprintf(why, sizeof(why), "hugelive-vm %s: memfd for the device state: %s", x->cfg.name,
			 strerror(errno));
		goto refuse;
	}
	rc = vmm_save(&x->vmm, state_fd, (int)budget);
	if (rc) {
		snprintf(why, sizeof(why), "hugelive-vm %s: saving the device state failed: %s", x->cfg.name,
			 x->vmm.err);
		goto refuse;
	}
	x->save_ms = now_ms() - x->stop_ms;
	x->state_bytes = fstat(state_fd, &st) ? -1 : (long long)st.st_size;
	m.stop_realtime_ns = x->stop_rt;
	m.stop_tsc = x->stop_tsc;
	m.state_bytes = (uint64_t)(x->state_bytes > 0 ? x->state_bytes : 0);
	m.save_ms = (uint64_t)x->save_ms;
	m.updates = x->updates;
	js = vm_manifest_to_json(&m);
	man_fd = js ? memfd_with("hugelive-vm-manifest", js, strlen(js)) : -1;
	free(js);
	if (man_fd < 0) {
		snprintf(why, sizeof(why), "hugelive-vm %s: cannot write the manifest", x->cfg.name);
		goto refuse;
	}
	long long t0 = now_ms();

	drop_state_session(x);	/* a leftover of an earlier attempt */
	rc = hl_create_session(x->c, x->st_sess);
	if (!rc)
		rc = hl_preserve_fd(x->c, x->st_sess, TOK_STATE, state_fd, "device state");
	if (!rc)
		rc = hl_preserve_fd(x->c, x->st_sess, TOK_CONSOLE, x->con_fd, "console record");
	if (!rc)
		rc = hl_preserve_fd(x->c, x->st_sess, TOK_MANIFEST, man_fd, "manifest");
	if (rc) {
		snprintf(why, sizeof(why), "hugelive-vm %s: preserving the saved state in session %s: %s: %s",
			 x->cfg.name, x->st_sess, strerror(-rc), hl_last_error(x->c));
		goto refuse;
	}
	x->preserve_ms = now_ms() - t0;
	close(state_fd);
	close(man_fd);
	say(x, "update %llu: device state saved (%lld bytes, %lld ms after the stop; guest RAM not in it), "
	    "preserved in session %s (%lld ms); ready", (unsigned long long)ev->update_id, x->state_bytes,
	    x->save_ms, x->st_sess, x->preserve_ms);
	status(x, V_READY);
	rc = hl_ready(x->c, ev->update_id);
	if (rc) {
		say(x, "update %llu: ready not taken (%s: %s): the update is over", (unsigned long long)ev->update_id,
		    strerror(-rc), hl_last_error(x->c));
		resume_guest(x, "update ended before our ready");
	}
	return;
refuse:
	if (state_fd >= 0)
		close(state_fd);
	if (man_fd >= 0)
		close(man_fd);
	say(x, "update %llu: refusing: %s", (unsigned long long)ev->update_id, why);
	/* the agent takes up to 256 characters */
	size_t rl = strlen(why) < sizeof(reason) - 1 ? strlen(why) : sizeof(reason) - 1;

	memcpy(reason, why, rl);
	reason[rl] = 0;
	rc = hl_refuse(x->c, ev->update_id, reason);
	if (rc)
		say(x, "refuse: %s: %s", strerror(-rc), hl_last_error(x->c));
	resume_guest(x, "update refused");
}

/* Until the guest ends or a signal: answer the barrier. Exit status. */
static int run(struct ctx *x)
{
	struct hl_event ev;
	int st, rc;

	status(x, V_RUNNING);
	for (;;) {
		if (quit_sig) {
			say(x, "signal %d: stopping the guest's QEMU and dropping its sessions", (int)quit_sig);
			vmm_kill(&x->vmm);
			hl_destroy_session(x->c, x->cfg.name);
			drop_state_session(x);
			status(x, V_STOPPED);
			return 1;
		}
		if (vmm_exited(&x->vmm, &st)) {
			say(x, "QEMU ended (%s %d): the guest is gone; dropping its sessions",
			    WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			hl_destroy_session(x->c, x->cfg.name);
			drop_state_session(x);
			status(x, V_STOPPED);
			return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
		}
		rc = hl_wait_event(x->c, 500, &ev);
		if (rc == -ETIMEDOUT || rc == -EINTR)
			continue;
		if (rc) {
			say(x, "warning: agent connection: %s; retrying", strerror(-rc));
			sleep(1);
			continue;
		}
		switch (ev.type) {
		case HL_EVENT_PREPARE:
			prepare(x, &ev);
			break;
		case HL_EVENT_RESUME:
			if (x->state == V_READY) {
				x->cancels++;
				say(x, "update %llu cancelled (%s)", (unsigned long long)ev.update_id, ev.text);
				resume_guest(x, "update cancelled");
			} else {
				say(x, "update %llu cancelled (%s); the guest is running", (unsigned long long)ev.update_id,
				    ev.text);
			}
			break;
		case HL_EVENT_RECONNECTED:
			say(x, "the agent restarted; reconnected and subscribed again");
			break;
		default:
			break;
		}
	}
}

static void ctx_init(struct ctx *x, struct launch_opts *o)
{
	memset(x, 0, sizeof(*x));
	x->o = o;
	x->cfg = o->cfg;
	x->ram_fd = x->con_fd = x->con_app = -1;
	x->vmm.pid = -1;
	x->vmm.qmp.fd = -1;
	x->pause_ms = x->save_ms = x->preserve_ms = x->state_bytes = -1;
	x->qemu_start_ms = x->load_ms = x->restore_ms = -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
}

static void names(struct ctx *x)
{
	snprintf(x->st_sess, sizeof(x->st_sess), "%s.state", x->cfg.name);
}

int launch_start(struct launch_opts *o)
{
	struct ctx x;
	char err[768];
	int rc;

	ctx_init(&x, o);
	if (vm_cfg_check(&x.cfg, err, sizeof(err))) {
		say(&x, "error: %s", err);
		return 2;
	}
	names(&x);
	if (vmm_find_qemu(x.cfg.qemu, x.qemu, sizeof(x.qemu), err, sizeof(err))) {
		say(&x, "error: %s", err);
		return 2;
	}
	if (access(x.cfg.kernel, R_OK) || (x.cfg.initrd[0] && access(x.cfg.initrd, R_OK))) {
		say(&x, "error: guest kernel %s / initrd %s: %s", x.cfg.kernel, x.cfg.initrd[0] ? x.cfg.initrd : "-",
		    strerror(errno));
		return 2;
	}
	if (o->ram_fd >= 0) {
		if (vm_check_ram_fd(o->ram_fd, x.cfg.mem, x.cfg.page, err, sizeof(err))) {
			say(&x, "error: %s", err);
			return 2;
		}
		x.ram_fd = o->ram_fd;
	} else if ((x.ram_fd = ram_create(&x)) < 0) {
		return 1;
	}
	if (agent_connect(&x, 5000))
		return 3;
	if (incoming(&x, x.st_sess)) {
		say(&x, "error: a guest %s saved before the last update is waiting: restore it with "
		    "`hugelive-vm restore --name %s` (or drop it: hugelivectl finish %s)", x.cfg.name, x.cfg.name,
		    x.st_sess);
		return 2;
	}
	if (open_console(&x) || setup_dir(&x)) {
		say(&x, "error: console record / %s: %s", x.dir, strerror(errno));
		return 1;
	}
	if (preserve_ram(&x))
		return 1;
	long long t0 = now_ms();

	rc = vmm_start(&x.vmm, &x.cfg, x.qemu, x.ram_fd, x.con_fd, false, x.dir);
	if (rc) {
		say(&x, "error: %s", x.vmm.err);
		hl_destroy_session(x.c, x.cfg.name);
		return 1;
	}
	x.qemu_start_ms = now_ms() - t0;
	say(&x, "QEMU %d.%d.%d (pid %d) runs the guest: %llu MiB of RAM in the hugetlb memfd, %s, x-ignore-shared on; "
	    "console record %s/console", x.vmm.major, x.vmm.minor, x.vmm.micro, (int)x.vmm.pid,
	    (unsigned long long)(x.cfg.mem >> 20), x.cfg.accel, x.dir);
	return run(&x);
}

/* Retrieve token tok of session s (the caller's own pages with self). */
static int get_fd(struct ctx *x, const char *s, uint64_t tok, bool self, const char *what)
{
	int fd = -1;
	int rc = self ? hl_retrieve_fd_self(x->c, s, tok, &fd) : hl_retrieve_fd(x->c, s, tok, &fd);

	if (rc) {
		say(x, "error: retrieving the %s (session %s token %llu): %s%s%s", what, s, (unsigned long long)tok,
		    strerror(-rc), *hl_last_error(x->c) ? ": " : "", hl_last_error(x->c));
		return -1;
	}
	return fd;
}

int launch_restore(struct launch_opts *o)
{
	struct ctx x;
	struct vm_manifest m;
	char err[768], *js = NULL;
	struct stat st;
	int state_fd = -1, man_fd, rc;
	long long t0 = now_ms(), t1;

	ctx_init(&x, o);
	names(&x);
	if (agent_connect(&x, 60000))
		return 3;
	if (!incoming(&x, x.st_sess) || !incoming(&x, x.cfg.name)) {
		say(&x, "error: no guest %s from the previous kernel (no incoming sessions %s and %s)", x.cfg.name,
		    x.cfg.name, x.st_sess);
		return 2;
	}
	status(&x, V_RESTORING);
	man_fd = get_fd(&x, x.st_sess, TOK_MANIFEST, false, "manifest");
	if (man_fd < 0)
		return 1;
	if (fstat(man_fd, &st) || st.st_size <= 0 || st.st_size > (1 << 20) || !(js = calloc(1, (size_t)st.st_size + 1)) ||
	    pread(man_fd, js, (size_t)st.st_size, 0) != st.st_size) {
		say(&x, "error: reading the manifest: %s", strerror(errno ? errno : EINVAL));
		return 1;
	}
	close(man_fd);
	rc = vm_manifest_from_json(js, &m, err, sizeof(err));
	free(js);
	if (rc) {
		say(&x, "error: %s", err);
		return 1;
	}
	if (strcmp(m.cfg.name, x.cfg.name)) {
		say(&x, "error: the manifest is of guest '%s', not '%s'", m.cfg.name, x.cfg.name);
		return 1;
	}
	if (o->cfg_qemu_set)
		snprintf(m.cfg.qemu, sizeof(m.cfg.qemu), "%s", o->cfg.qemu);
	x.cfg = m.cfg;
	x.updates = m.updates + 1;
	if (vmm_find_qemu(x.cfg.qemu, x.qemu, sizeof(x.qemu), err, sizeof(err))) {
		say(&x, "error: %s", err);
		return 2;
	}
	x.ram_fd = get_fd(&x, x.cfg.name, TOK_RAM, true, "guest RAM");
	state_fd = x.ram_fd >= 0 ? get_fd(&x, x.st_sess, TOK_STATE, false, "device state") : -1;
	x.con_fd = state_fd >= 0 ? get_fd(&x, x.st_sess, TOK_CONSOLE, false, "console record") : -1;
	if (x.con_fd < 0)
		return 1;
	if (vm_check_ram_fd(x.ram_fd, x.cfg.mem, x.cfg.page, err, sizeof(err))) {
		say(&x, "error: %s", err);
		return 1;
	}
	if (open_console(&x) || setup_dir(&x)) {
		say(&x, "error: console record / %s: %s", x.dir, strerror(errno));
		return 1;
	}
	t1 = now_ms();
	say(&x, "got the guest RAM, device state (%lld bytes) and console record back (%lld ms)",
	    fstat(state_fd, &st) ? -1LL : (long long)st.st_size, t1 - t0);
	note(&x, "host kernel updated; restoring the guest from its saved state on the same RAM");
	rc = vmm_start(&x.vmm, &x.cfg, x.qemu, x.ram_fd, x.con_fd, true, x.dir);
	if (rc) {
		say(&x, "error: %s", x.vmm.err);
		goto keep;
	}
	x.qemu_start_ms = now_ms() - t1;
	t1 = now_ms();
	rc = vmm_load(&x.vmm, state_fd, 120000);
	if (rc) {
		say(&x, "error: loading the device state: %s", x.vmm.err);
		vmm_kill(&x.vmm);
		goto keep;
	}
	x.load_ms = now_ms() - t1;
	rc = vmm_cont(&x.vmm);
	if (rc) {
		say(&x, "error: %s", x.vmm.err);
		vmm_kill(&x.vmm);
		goto keep;
	}
	uint64_t t_cont = tsc();
	int64_t rt_cont = realtime_ns();

	x.restore_ms = now_ms() - t0;
	close(state_fd);
	double per_ms = tsc_per_ms();

	x.pause_ms = per_ms > 0 && m.stop_tsc && t_cont > m.stop_tsc ? (long long)((double)(t_cont - m.stop_tsc) / per_ms)
								       : (long long)((rt_cont - m.stop_realtime_ns) / 1000000);
	x.save_ms = (long long)m.save_ms;
	x.state_bytes = (long long)m.state_bytes;
	say(&x, "guest continued on QEMU %d.%d.%d (pid %d) after host update %u: paused %lld ms in all "
	    "(stop -> state saved %lld ms; QEMU start %lld ms, state load %lld ms; %lld ms from this launcher's start); "
	    "state %lld bytes", x.vmm.major, x.vmm.minor, x.vmm.micro, (int)x.vmm.pid, x.updates, x.pause_ms,
	    x.save_ms, x.qemu_start_ms, x.load_ms, x.restore_ms, x.state_bytes);
	/* (no note now: the guest runs and may be in the middle of a line) */
	rc = hl_finish_session(x.c, x.st_sess);
	if (!rc)
		rc = hl_finish_session(x.c, x.cfg.name);
	if (rc)
		say(&x, "warning: finishing the incoming sessions: %s: %s", strerror(-rc), hl_last_error(x.c));
	if (preserve_ram(&x)) {
		say(&x, "warning: the guest runs, but will not survive the next update (see above)");
		status(&x, V_RUNNING);
	}
	return run(&x);
keep:
	say(&x, "the guest was not restored; its RAM and saved state stay in the incoming sessions %s and %s "
	    "(until hugelived's claim timeout); fix the cause and run hugelive-vm restore --name %s again",
	    x.cfg.name, x.st_sess, x.cfg.name);
	status(&x, V_STOPPED);
	return 1;
}
