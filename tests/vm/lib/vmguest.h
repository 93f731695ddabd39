/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the vmguest-* scenarios and the VM demo: the test VM is a
 * hypervisor host (kernels="kvm", vmm=1, userspace=1) that runs a nested
 * guest with hugelive-vm, and live-updates its own kernel under it.
 *
 * The nested guest runs tests/vm/guest/hlguest.c on its serial console,
 * which hugelive-vm records in a memfd that crosses the update
 * (/run/hugelive-vm/NAME/console). Everything called "verified" here is
 * what the guest printed about itself: its sweeps over every page of its
 * RAM, its heartbeat counter, boot id and monotonic clock. The launcher's
 * status file (/run/hugelive-vm/NAME/status, key=value) gives the host's
 * side: state, pids, pause, state size.
 */
#ifndef HUGELIVE_VMGUEST_H
#define HUGELIVE_VMGUEST_H

#include "agent.h"

#define VG_NAME		"guest"
#define VG_DIR		"/run/hugelive-vm/" VG_NAME
#define VG_MEM_MIB	512		/* guest RAM by default: 256 x 2 MiB pages */
#define VG_GUEST_INITRD	"/usr/share/hugelive-vm/guest.cpio"
/*
 * The launcher's notes in the console record, written while the guest is
 * stopped: "restoring" before the new QEMU starts, so every guest line
 * after it comes from the restored guest; "continuing" before the cont
 * after a cancel or refusal.
 */
#define VG_RESTORING	"[hugelive-vm] host kernel updated; restoring"
#define VG_CONTINUING	"[hugelive-vm] continuing the guest in the same QEMU (update cancelled)"
/*
 * The nested guest keeps time with kvm-clock and its LAPIC timer in
 * nanoseconds, not with the TSC: the host's TSC is calibrated anew at every
 * boot (2096.005 MHz before, 2094.716 MHz after the update in one run), the
 * saved guest carries the old rate, and KVM on SVM under TCG has no TSC
 * scaling (QEMU: "TSC frequency mismatch between VM (2096005 kHz) and host
 * (2094716 kHz), and TSC scaling unavailable"; kvm: "user requested TSC rate
 * below hardware speed"). Without these two options the restored guest
 * printed 3 heartbeats (500 ms apart) in 300 s in that run; with them it
 * ticks at its normal rate after the update.
 */
#define VG_GUEST_CMDLINE "console=ttyS0 kho=off liveupdate=off panic=-1 tsc=unstable lapic=notscdeadline"

/* ---- the launcher's status file ---------------------------------------- */

/* Value of KEY in the status file into buf ("" if none); buf. */
static inline const char *vg_status(const char *key, char *buf, size_t len)
{
	char line[256];
	size_t kl = strlen(key);
	FILE *f = fopen(VG_DIR "/status", "r");

	buf[0] = 0;
	if (!f)
		return buf;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == '=') {
			size_t l = strcspn(line + kl + 1, "\n");

			if (l >= len)
				l = len - 1;
			memcpy(buf, line + kl + 1, l);
			buf[l] = 0;
			break;
		}
	fclose(f);
	return buf;
}

static inline long long vg_status_ll(const char *key)
{
	char b[64];

	vg_status(key, b, sizeof(b));
	return b[0] ? strtoll(b, NULL, 10) : -1;
}

/* Wait until the status says state=want (and, if min_updates >= 0, updates >= it). */
static inline bool vg_wait_state(const char *want, long long min_updates, int timeout_s)
{
	uint64_t end = ag_ms() + (uint64_t)timeout_s * 1000;
	char st[32];

	while (ag_ms() < end) {
		vg_status("state", st, sizeof(st));
		if (!strcmp(st, want) && (min_updates < 0 || vg_status_ll("updates") >= min_updates))
			return true;
		if (!strcmp(st, "stopped"))
			return !strcmp(want, "stopped");
		usleep(200000);
	}
	return false;
}

/* ---- the guest's console record ---------------------------------------- */

/* The whole console record (malloc'd, NUL-terminated), or NULL. */
static inline char *vg_console(void)
{
	int fd = open(VG_DIR "/console", O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 20, len = 0;
	char *b = malloc(cap + 1);
	ssize_t n;

	if (fd < 0 || !b) {
		if (fd >= 0)
			close(fd);
		free(b);
		return NULL;
	}
	while ((n = read(fd, b + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			char *nb = realloc(b, cap * 2 + 1);

			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
	}
	close(fd);
	b[len] = 0;
	return b;
}

/* What the guest said, read from the console record. */
struct vg_guest {
	int starts;			/* "hlguest: start" lines: 1 = never rebooted */
	char boot[64];			/* boot id of the first start */
	int boot_changes;		/* heartbeats with another boot id */
	long long fill_mib, pages;
	long long nhb, first_n, last_n;	/* heartbeats */
	int n_gaps;			/* heartbeats whose counter is not the previous + 1 */
	int mono_back;			/* heartbeats whose clock went back */
	double last_mono;
	int bad;			/* "BAD" or "FAIL" lines */
	char bad_line[256];
	int sweeps_ok;
	/* around the marker (the last occurrence; see vg_parse) */
	bool marker_seen;
	long long n_before, n_after;	/* last heartbeat before it, first after */
	double mono_before, mono_after;
	long long hb_after;		/* heartbeats after it */
	long long sweep_after_k, sweep_after_from, sweep_after_pages;	/* first ok sweep begun after it */
	bool sweep_after_ok;
};

/*
 * Parse the record. marker: a text our launcher wrote (the last occurrence
 * counts), or NULL. A sweep counts as "after" the marker when the counter
 * it began at is past the last heartbeat before the marker.
 */
static inline void vg_parse(const char *text, const char *marker, struct vg_guest *g)
{
	/*
	 * The launcher's "[hugelive-vm] ..." lines are taken out first: one
	 * written while the guest was stopped in the middle of a line splits
	 * that line, which joins again without it. mpos: where the last note
	 * with the marker was, in the text without notes.
	 */
	size_t tl = strlen(text), cl = 0;
	char *clean = malloc(tl + 1);
	const char *mpos = NULL, *p, *q = text;
	long long prev = -1;
	size_t mclean = (size_t)-1;

	memset(g, 0, sizeof(*g));
	g->n_before = g->n_after = g->sweep_after_k = -1;
	g->last_mono = -1;
	if (!clean)
		return;
	for (;;) {
		const char *n = strstr(q, "[hugelive-vm] "), *e;

		if (!n) {
			memcpy(clean + cl, q, strlen(q) + 1);
			break;
		}
		memcpy(clean + cl, q, (size_t)(n - q));
		cl += (size_t)(n - q);
		e = strchr(n, '\n');
		if (marker) {
			const char *m = strstr(n, marker);

			if (m && (!e || m < e))
				mclean = cl;
		}
		if (!e) {
			clean[cl] = 0;
			break;
		}
		q = e + 1;
	}
	if (mclean != (size_t)-1)
		mpos = clean + mclean;
	g->marker_seen = mpos != NULL;
	p = clean;
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512], id[64];
		long long n, a, b, pages, mib;
		double mono;
		int k;
		bool after = mpos && p >= mpos;

		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) - 1 ? len : sizeof(line) - 1), p);
		line[strcspn(line, "\r")] = 0;
		if (sscanf(line, "hlguest: start boot=%63s mib=%lld pages=%lld", id, &mib, &pages) == 3) {
			if (!g->starts++) {
				snprintf(g->boot, sizeof(g->boot), "%s", id);
				g->fill_mib = mib;
				g->pages = pages;
			}
		} else if (sscanf(line, "hlguest: hb boot=%63s n=%lld mono=%lf", id, &n, &mono) == 3) {
			if (strcmp(id, g->boot))
				g->boot_changes++;
			if (prev >= 0 && n != prev + 1)
				g->n_gaps++;
			if (g->last_mono >= 0 && mono < g->last_mono)
				g->mono_back++;
			if (!g->nhb++)
				g->first_n = n;
			g->last_n = prev = n;
			if (after) {
				if (!g->hb_after++) {
					g->n_after = n;
					g->mono_after = mono;
				}
			} else {
				g->n_before = n;
				g->mono_before = mono;
			}
			g->last_mono = mono;
		} else if (sscanf(line, "hlguest: sweep %d ok pages=%lld mib=%lld n=%lld..%lld", &k, &pages, &mib, &a, &b) == 5) {
			g->sweeps_ok++;
			/* begun after the marker: its first counter is past the last one before */
			if (after && !g->sweep_after_ok && a > g->n_before) {
				g->sweep_after_ok = true;
				g->sweep_after_k = k;
				g->sweep_after_from = a;
				g->sweep_after_pages = pages;
			}
		}
		if (strstr(line, "hlguest:") && (strstr(line, " BAD ") || strstr(line, "FAIL"))) {
			if (!g->bad++) {
				line[sizeof(g->bad_line) - 1] = 0;
				memcpy(g->bad_line, line, strlen(line) + 1);
			}
		}
		p = eol ? eol + 1 : NULL;
	}
	free(clean);
}

/* Wait until the guest's record satisfies: a sweep after marker (or any sweep) and hb heartbeats after it. */
static inline bool vg_wait_guest(const char *marker, long long hb, int timeout_s, struct vg_guest *g)
{
	uint64_t end = ag_ms() + (uint64_t)timeout_s * 1000;

	for (;;) {
		char *t = vg_console();

		if (t) {
			vg_parse(t, marker, g);
			free(t);
			if (g->bad)
				return false;
			if (marker ? g->sweep_after_ok && g->hb_after >= hb : g->sweeps_ok > 0 && g->nhb >= hb)
				return true;
		}
		if (ag_ms() > end)
			return false;
		usleep(500000);
	}
}

/* Print the last lines of the record as diagnostics (one per line). */
static inline void vg_console_tail(int lines)
{
	char *t = vg_console(), *save = NULL;
	const char *ls[4096];
	int n = 0;

	if (!t) {
		hl_diag("no console record at %s/console", VG_DIR);
		return;
	}
	for (char *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\r")] = 0;
		ls[n++ % 4096] = l;
	}
	hl_diag("last %d lines of the guest's console record:", lines);
	for (int i = n > lines ? n - lines : 0; i < n; i++)
		hl_diag("  | %s", ls[i % 4096]);
	free(t);
}

/* The guest's whole console record into this VM's console log (build/logs/NAME.log). */
static inline void vg_console_dump(void)
{
	char *t = vg_console();

	printf("---- the nested guest's console record (%s/console) ----\n%s\n---- end of the record ----\n",
	       VG_DIR, t ? t : "(none)");
	fflush(stdout);
	free(t);
}

/*
 * Report lines: the console record around the update (the last heartbeats
 * before the launcher's "guest stopped" line, everything the launcher
 * wrote, the first heartbeats and the first sweep after).
 */
static inline void vg_report_excerpt(int update)
{
	char *t = vg_console(), *save = NULL, stop[96], cont[96];
	const char *lines[4096];
	int n = 0, istop = -1, icont = -1, shown_after = 0;

	if (!t)
		return;
	snprintf(stop, sizeof(stop), "[hugelive-vm] guest stopped for host live update");
	(void)update;
	snprintf(cont, sizeof(cont), "%s", VG_RESTORING);
	for (char *l = strtok_r(t, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\r")] = 0;
		if (strstr(l, stop))
			istop = n;
		if (strstr(l, cont))
			icont = n;
		lines[n++] = l;
	}
	if (istop >= 0 && icont > istop) {
		hl_report("the guest's console record around the update (one memfd, both kernels):");
		for (int i = istop > 3 ? istop - 3 : 0; i < n; i++) {
			bool hb = strstr(lines[i], "hlguest: hb") != NULL, sweep = strstr(lines[i], "hlguest: sweep") != NULL;

			if (i > icont && hb && shown_after >= 3)
				continue;
			if (i > icont && (hb || sweep))
				shown_after++;
			hl_report("  | %s", lines[i]);
			if (i > icont && sweep)
				break;
		}
	}
	free(t);
}

/* ---- the guest's life ---------------------------------------------------- */

static inline long long vg_pool_free(int page_mib)
{
	char p[96];

	snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/hugepages-%dkB/free_hugepages", page_mib * 1024);
	return hl_read_ll(p);
}

/*
 * gen 0: start the guest with hugelive-vm (mem_mib of RAM in page_mib huge
 * pages; the guest fills 75% of it); check it runs and fills its RAM.
 */
static inline void vg_start_with(int mem_mib, int page_mib)
{
	const char *k = getenv("HUGELIVE_RUNNING_KERNEL");
	long long free0 = vg_pool_free(page_mib), free1;
	int fill_mib = mem_mib / 4 * 3, want = mem_mib / page_mib;
	struct vg_guest g;
	char st[64];

	ag_spawn(-1, "exec hugelive-vm start --name " VG_NAME " --kernel %s --initrd " VG_GUEST_INITRD
		 " --mem %dM --page-size %dM --append '" VG_GUEST_CMDLINE " hlguest.mib=%d' >/dev/console 2>&1",
		 k && *k ? k : "/boot/bzImage", mem_mib, page_mib, fill_mib);
	bool ok = vg_wait_state("running", -1, 120);

	hl_ok(ok, "hugelive-vm started the guest (state %s)", vg_status("state", st, sizeof(st)));
	free1 = vg_pool_free(page_mib);
	hl_ok(free0 - free1 == want, "the guest's RAM took %lld of the %s pool's pages (want %d: "
	      "a hugetlb memfd, every page allocated)", free0 - free1, page_mib == 1024 ? "1 GiB" : "2 MiB", want);
	hl_diag("QEMU %s, pid %lld, accel %s", vg_status("qemu_version", st, sizeof(st)), vg_status_ll("qemu_pid"),
		vg_status("accel", (char[16]){ 0 }, 16));
	ok = vg_wait_guest(NULL, 4, 300, &g);
	if (!hl_ok(ok, "the guest booted, filled its RAM and checked it once (%d sweep(s) ok, %lld heartbeats)",
		   g.sweeps_ok, g.nhb))
		vg_console_tail(30);
	hl_ok(g.starts == 1 && g.fill_mib == fill_mib, "the guest (boot id %s) filled %lld MiB (%lld pages) of its %d MiB",
	      g.boot, g.fill_mib, g.pages, mem_mib);
	hl_report("nested guest under %s: boot id %s, %lld MiB of its %d MiB RAM (%d x %s pages) filled with a "
		  "per-page pattern", vg_status("accel", st, sizeof(st)), g.boot, g.fill_mib, mem_mib, want,
		  page_mib == 1024 ? "1 GiB" : "2 MiB");
}

/* The default guest: 512 MiB in 2 MiB pages. */
static inline void vg_start(void)
{
	vg_start_with(VG_MEM_MIB, 2);
}

/* gen N > 0: restore the guest saved before update `update` and check it from inside. */
static inline void vg_restore(int update)
{
	char st[64];
	struct vg_guest g;
	bool ok;

	hl_ok(ag_start_agent(NULL) == 0, "gen %d: hugelived started", hl_gen());
	ag_spawn(-1, "exec hugelive-vm restore --name " VG_NAME " >/dev/console 2>&1");
	ok = vg_wait_state("running", update, 180);
	hl_ok(ok, "hugelive-vm restored the guest after update %d (state %s, updates %lld)", update,
	      vg_status("state", st, sizeof(st)), vg_status_ll("updates"));
	ok = vg_wait_guest(VG_RESTORING, 4, 300, &g);
	if (!hl_ok(ok && g.marker_seen, "the guest runs again after update %d: %lld heartbeats since, sweep %lld began "
		   "at heartbeat %lld", update, g.hb_after, g.sweep_after_k, g.sweep_after_from))
		vg_console_tail(40);
	hl_ok(g.starts == 1 && g.boot_changes == 0, "no guest reboot: one start, boot id %s in all %lld heartbeats",
	      g.boot, g.nhb);
	hl_ok(g.n_gaps == 0 && g.n_after == g.n_before + 1, "the guest's counter continued: %lld before the update, "
	      "%lld next (%d gaps in %lld..%lld)", g.n_before, g.n_after, g.n_gaps, g.first_n, g.last_n);
	hl_ok(g.mono_back == 0 && g.mono_after >= g.mono_before, "the guest's monotonic clock went on: %.3f s "
	      "before, %.3f s after (the guest saw %.3f s pass)", g.mono_before, g.mono_after,
	      g.mono_after - g.mono_before);
	hl_ok(g.bad == 0, "no guest line reports a bad page or a failure%s%s", g.bad ? ": " : "", g.bad_line);
	hl_ok(g.sweep_after_ok && g.sweep_after_pages == g.pages, "verified by the guest itself after update %d: "
	      "sweep %lld checked all %lld pages (%lld MiB) and its running checksum", update, g.sweep_after_k,
	      g.sweep_after_pages, g.fill_mib);
	hl_report("gen %d: after update %d the guest (same boot id %s) verified every page of its %lld MiB "
		  "(sweep %lld) and its counter went on %lld -> %lld",
		  hl_gen(), update, g.boot, g.fill_mib, g.sweep_after_k, g.n_before, g.n_after);
	hl_report("gen %d: guest paused %lld ms (host side: stop -> QEMU continued in the new kernel); "
		  "device state %lld bytes saved in %lld ms; QEMU start %lld ms, state load %lld ms",
		  hl_gen(), vg_status_ll("pause_ms"), vg_status_ll("state_bytes"), vg_status_ll("save_ms"),
		  vg_status_ll("qemu_start_ms"), vg_status_ll("load_ms"));
}

/* Last generation: stop the guest; nothing of it is left in the agent. */
static inline void vg_stop(void)
{
	static char out[16384];
	long long pid = vg_status_ll("pid");

	vg_console_dump();
	hl_ok(pid > 0 && kill((pid_t)pid, SIGTERM) == 0, "hugelive-vm (pid %lld) told to stop", pid);
	hl_ok(vg_wait_state("stopped", -1, 30), "the guest stopped");
	ag_status(out, sizeof(out));
	hl_ok(ag_jint(out, "outgoing_sessions", -1) == 0 && ag_jint(out, "incoming_sessions", -1) == 0,
	      "no session left in the agent (outgoing %lld, incoming %lld)", ag_jint(out, "outgoing_sessions", -1),
	      ag_jint(out, "incoming_sessions", -1));
}

#endif
