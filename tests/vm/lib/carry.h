/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A client service that carries its memory through several live updates
 * via the agent, for the scenarios that update into other kernels (issue
 * 10: kernel-a-b-a, kernel-vm-debug, release-upgrade, image-refusal).
 * Header-only, on top of lib/agent.h.
 *
 * The carrier (cr_client, run with ag_fork) owns a set of memfds (2 MiB
 * and 1 GiB hugetlb, shmem) filled with the per-word pattern, plus a 4 KiB
 * shmem journal in which every generation records the kernel it ran
 * (uname -r, flavour, a config signature). In each generation it:
 *   gen > first: retrieves every token of its incoming session, checks
 *       each file word by word (the first REGION bytes after the header
 *       with the seed the previous generation rewrote them with, the rest
 *       with the file's own seed) and the journal (the previous entry names
 *       the flavour the harness booted, and the kernel really changed: its
 *       signature differs from this one), finishes the session;
 *   marks "claimed" (the parent checks the pools now);
 *   not the last: rewrites the region with this generation's seed, appends
 *       its journal entry, creates the session again (same name), preserves
 *       every file, subscribes and marks "ready"; answers "prepare" with
 *       ready; on "resume" (a cancelled update) checks every word is still
 *       there and marks "resumed", and keeps serving;
 *   the last (the scenario's, or last_gen): waits for SIGUSR1
 *       (cr_release), closes everything, exits 0.
 * TAP lines go to the parent through the report pipe (ag_ok).
 *
 * Options for long chains with faults (soak): claim_only (this generation
 * only claims, like the last one), hold (between the claim and the
 * preserve, mark "held" and wait for cr_release: the parent can kill it or
 * the agent there), reconnect (when the agent goes away: reconnect, hello,
 * subscribe again, mark "reconnected"), refuse (refuse that many prepares),
 * stall_ms (at the first prepare mark "prepare" and wait that long before
 * answering). The journal is a ring of the last CR_JENT generations (n
 * counts them all).
 */
#ifndef HUGELIVE_CARRY_H
#define HUGELIVE_CARRY_H

#include "agent.h"

#include <sys/utsname.h>

#define CR_REGION	(1ULL << 20)	/* rewritten every generation */
#define CR_JMAGIC	0x4a4f55524e414cULL
#define CR_JTOKEN	100
#define CR_MAXF		6
#define CR_JENT		8		/* journal entries kept (a ring) */

enum cr_kind { CR_SHMEM, CR_2M, CR_1G };

struct cr_file {
	const char *label;
	enum cr_kind kind;
	uint64_t size;
	uint64_t seed;
	int fd;
	uint8_t *p;
};

struct cr_entry {
	int gen;
	char release[65];
	char flavour[16];
	char sig[200];
};

struct cr_journal {
	uint64_t magic;
	int n;				/* entries written in all; e[k % CR_JENT] */
	struct cr_entry e[CR_JENT];
};
_Static_assert(sizeof(struct cr_journal) <= 4096, "the journal is one 4 KiB memfd");

struct carry {
	const char *session;
	int first_gen;			/* the generation that creates the files */
	int last_gen;			/* the one that closes them (0: the last) */
	bool claim_only;		/* this generation claims, then waits for cr_release */
	bool hold;			/* "held" between claim and preserve until cr_release */
	bool reconnect;			/* survive an agent restart */
	int refuse;			/* refuse this many prepares */
	int stall_ms;			/* first prepare: "prepare" mark, wait, then ready */
	const char *agent_args;		/* cr_agent: hugelived options */
	int nfiles;
	struct cr_file f[CR_MAXF];	/* token = index + 1 */
	int jfd;
	struct cr_journal *j;
};

static inline uint64_t cr_region_seed(const struct cr_file *f, int gen)
{
	return f->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(gen + 1));
}

static inline const char *cr_kind_name(enum cr_kind k)
{
	return k == CR_2M ? "hugetlb (2 MiB pages)" : k == CR_1G ? "hugetlb (1 GiB pages)" : "shmem";
}

/* What tells one kernel build from another, as this kernel sees itself. */
static inline void cr_signature(char *out, size_t len)
{
	struct utsname u;
	const char *v;
	size_t o;

	uname(&u);
	o = (size_t)snprintf(out, len, "%s", u.release);
	static const char *const syms[] = { "NUMA", "DEFERRED_STRUCT_PAGE_INIT",
		"HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON", "DEBUG_VM", "KERNEL_ZSTD", "LIVEUPDATE_HUGETLB" };
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]) && o < len; i++) {
		v = hl_kconfig(syms[i]);
		o += (size_t)snprintf(out + o, len - o, " %s=%s", syms[i], v ? v : "n");
	}
}

/* The config a flavour must show (its kernel/config fragments): true if it does. */
static inline bool cr_flavour_matches(const char *fl, char *why, size_t len)
{
	struct utsname u;
	const char *numa = hl_kconfig("NUMA"), *dsp = hl_kconfig("DEFERRED_STRUCT_PAGE_INIT");
	const char *hvo = hl_kconfig("HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON"), *dvm = hl_kconfig("DEBUG_VM");
	const char *lh = hl_kconfig("LIVEUPDATE_HUGETLB");
	bool ok;

	uname(&u);
	if (!fl) {
		snprintf(why, len, "no flavour named (kernels= missing)");
		return false;
	}
	if (!strcmp(fl, "vmb"))
		ok = strstr(u.release, "-hlvmb") && !numa && dsp && hvo && !dvm && lh;
	else if (!strcmp(fl, "debug"))
		ok = !strstr(u.release, "-hl") && numa && !dsp && !hvo && dvm && lh;
	else if (!strcmp(fl, "vm"))
		ok = !strstr(u.release, "-hl") && numa && !dsp && !hvo && !dvm && lh;
	else if (!strcmp(fl, "v0.1"))
		ok = strstr(u.release, "-hlv0.1") && numa && lh;
	else if (!strcmp(fl, "stock"))
		ok = strstr(u.release, "-hlstock") && !lh;
	else
		ok = false;
	snprintf(why, len, "uname -r %s, NUMA %s, DEFERRED_STRUCT_PAGE_INIT %s, HVO default on %s, DEBUG_VM %s, "
		 "LIVEUPDATE_HUGETLB %s", u.release, numa ? numa : "n", dsp ? dsp : "n", hvo ? hvo : "n",
		 dvm ? dvm : "n", lh ? lh : "n");
	return ok;
}

static inline int cr_new_fd(const struct cr_file *f)
{
	if (f->kind == CR_SHMEM)
		return hl_memfd(f->label, f->size, MFD_ALLOW_SEALING);
	return hl_hugetlb_memfd(f->label, f->kind == CR_1G ? HL_1G : HL_2M, f->size);
}

/* Word-by-word check of file f as generation gen finds it. */
static inline bool cr_verify(const struct cr_file *f, int gen, const char *when)
{
	struct hl_mismatch mm = { 0 };
	const struct ag_hdr *h = (const struct ag_hdr *)f->p;
	uint64_t t0 = ag_ms(), rs = cr_region_seed(f, gen - 1);
	bool a, b;

	if (!ag_ok(h->magic == AG_MAGIC && h->seed == f->seed && h->size == f->size,
		   "%s: %s header magic/seed/size 0x%llx/0x%llx/%llu", when, f->label, (unsigned long long)h->magic,
		   (unsigned long long)h->seed, (unsigned long long)h->size))
		return false;
	a = hl_pattern_verify(f->p + AG_HDR, CR_REGION, AG_HDR, rs, &mm);
	if (!a)
		return ag_ok(false, "%s: %s region rewritten by gen %d: first bad offset 0x%llx expected 0x%016llx "
			     "actual 0x%016llx (%llu bad words)", when, f->label, gen - 1, (unsigned long long)mm.offset,
			     (unsigned long long)mm.expected, (unsigned long long)mm.actual,
			     (unsigned long long)mm.bad_words);
	b = hl_pattern_verify(f->p + AG_HDR + CR_REGION, f->size - AG_HDR - CR_REGION, AG_HDR + CR_REGION, f->seed, &mm);
	if (!b)
		return ag_ok(false, "%s: %s: first bad offset 0x%llx expected 0x%016llx actual 0x%016llx (%llu bad words)",
			     when, f->label, (unsigned long long)mm.offset, (unsigned long long)mm.expected,
			     (unsigned long long)mm.actual, (unsigned long long)mm.bad_words);
	return ag_ok(true, "%s: %s: %llu MiB %s, every word verified (%llu words, %llu ms)", when, f->label,
		     (unsigned long long)(f->size >> 20), cr_kind_name(f->kind),
		     (unsigned long long)((f->size - AG_HDR) / 8), (unsigned long long)(ag_ms() - t0));
}

static inline bool cr_verify_all(struct carry *c, int gen, const char *when)
{
	bool ok = true;

	for (int i = 0; i < c->nfiles; i++)
		ok &= cr_verify(&c->f[i], gen, when);
	return ok;
}

/* gen > first_gen: the files and journal back from the incoming session. */
static inline bool cr_claim(struct carry *c, struct ag_client *cl)
{
	int g = hl_gen(), rc, fd;
	char sig[200], why[400];
	bool ok = true;

	rc = ag_call(cl, -1, NULL, "\"op\":\"list\"");
	ag_ok(!rc && ag_contains(cl->reply, c->session) && ag_contains(cl->reply, "\"incoming\""),
	      "%s: list shows the session as incoming (%s)", c->session, ag_errname(rc));
	for (int i = 0; i < c->nfiles; i++) {
		struct cr_file *f = &c->f[i];

		rc = ag_call(cl, -1, &fd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d", c->session, i + 1);
		if (!ag_ok(!rc && fd >= 0, "%s: retrieve token %d (%s): got an fd back (%s)", c->session, i + 1, f->label,
			   ag_res(rc, cl)))
			return false;
		ag_ok(ag_jbool(cl->reply, "hugetlb") == (f->kind != CR_SHMEM) && ag_is_hugetlb(fd) == (f->kind != CR_SHMEM) &&
		      hl_fd_size(fd) == (long long)f->size,
		      "%s: token %d is %s of %llu MiB (size %lld)", c->session, i + 1, cr_kind_name(f->kind),
		      (unsigned long long)(f->size >> 20), hl_fd_size(fd));
		f->fd = fd;
		f->p = hl_map(fd, f->size);
		if (!ag_ok(f->p != NULL, "%s: %s mapped", c->session, f->label))
			return false;
	}
	ok = cr_verify_all(c, g, "after the update");
	rc = ag_call(cl, -1, &fd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d", c->session, CR_JTOKEN);
	if (!ag_ok(!rc && fd >= 0, "%s: retrieve the journal (%s)", c->session, ag_res(rc, cl)))
		return false;
	c->jfd = fd;
	c->j = hl_map(fd, 4096);
	if (!ag_ok(c->j && c->j->magic == CR_JMAGIC && c->j->n == g - c->first_gen && c->j->n > 0,
		   "journal back: %d entries (want %d)", c->j ? c->j->n : -1, g - c->first_gen))
		return false;
	{
		const struct cr_entry *e = &c->j->e[(c->j->n - 1) % CR_JENT];
		const char *want = hl_flavour(g - 1), *now = hl_flavour(g);

		cr_signature(sig, sizeof(sig));
		ag_ok(e->gen == g - 1 && (!want || !strcmp(e->flavour, want)),
		      "journal: gen %d ran flavour %s (%s)", e->gen, e->flavour, e->release);
		ag_ok(cr_flavour_matches(now, why, sizeof(why)), "gen %d runs the %s kernel: %s", g, now ? now : "?", why);
		if (now && want && strcmp(now, want))
			ag_ok(strcmp(e->sig, sig) != 0, "the kernel changed: gen %d [%s] -> gen %d [%s]", g - 1, e->sig, g, sig);
		else
			ag_diag("same flavour as gen %d: [%s]", g - 1, sig);
		if (now && want && (!strcmp(now, "vmb") + !strcmp(want, "vmb") == 1 ||
				    !strcmp(now, "v0.1") + !strcmp(want, "v0.1") == 1 ||
				    !strcmp(now, "stock") + !strcmp(want, "stock") == 1)) {
			struct utsname u;

			uname(&u);
			ag_ok(strcmp(e->release, u.release) != 0, "uname -r changed: %s -> %s", e->release, u.release);
		}
	}
	rc = ag_call(cl, -1, NULL, "\"op\":\"finish\",\"session\":\"%s\"", c->session);
	ag_ok(!rc, "%s: finish the incoming session (%s)", c->session, ag_res(rc, cl));
	return ok;
}

/* Create (first generation) or re-preserve the files, journal entry appended. */
static inline bool cr_preserve(struct carry *c, struct ag_client *cl)
{
	int g = hl_gen(), rc;
	struct utsname u;
	const char *fl = hl_flavour(g);

	for (int i = 0; i < c->nfiles; i++) {
		struct cr_file *f = &c->f[i];

		if (g == c->first_gen) {
			uint64_t t0 = ag_ms();

			f->fd = cr_new_fd(f);
			f->p = f->fd < 0 ? NULL : hl_map(f->fd, f->size);
			if (!ag_ok(f->p != NULL, "%s: %llu MiB %s memfd (%s)", f->label, (unsigned long long)(f->size >> 20),
				   cr_kind_name(f->kind), strerror(errno)))
				return false;
			memset(f->p, 0, AG_HDR);
			((struct ag_hdr *)f->p)->magic = AG_MAGIC;
			((struct ag_hdr *)f->p)->seed = f->seed;
			((struct ag_hdr *)f->p)->size = f->size;
			hl_pattern_fill(f->p + AG_HDR + CR_REGION, f->size - AG_HDR - CR_REGION, AG_HDR + CR_REGION, f->seed);
			ag_diag("%s filled in %llu ms", f->label, (unsigned long long)(ag_ms() - t0));
		}
		hl_pattern_fill(f->p + AG_HDR, CR_REGION, AG_HDR, cr_region_seed(f, g));
	}
	if (g == c->first_gen) {
		c->jfd = hl_memfd("journal", 4096, MFD_ALLOW_SEALING);
		c->j = c->jfd < 0 ? NULL : hl_map(c->jfd, 4096);
		if (!ag_ok(c->j != NULL, "journal memfd"))
			return false;
		c->j->magic = CR_JMAGIC;
	}
	{
		struct cr_entry *e = &c->j->e[c->j->n++ % CR_JENT];

		uname(&u);
		e->gen = g;
		snprintf(e->release, sizeof(e->release), "%s", u.release);
		snprintf(e->flavour, sizeof(e->flavour), "%s", fl ? fl : "-");
		cr_signature(e->sig, sizeof(e->sig));
	}
	rc = ag_call(cl, -1, NULL, "\"op\":\"create\",\"session\":\"%s\"", c->session);
	if (!ag_ok(!rc, "%s: create the session (%s)", c->session, ag_res(rc, cl)))
		return false;
	for (int i = 0; i < c->nfiles; i++) {
		rc = ag_call(cl, c->f[i].fd, NULL, "\"op\":\"preserve\",\"session\":\"%s\",\"token\":%d,\"label\":\"%s\"",
			     c->session, i + 1, c->f[i].label);
		if (!ag_ok(!rc, "%s: preserve token %d, %s (%s)", c->session, i + 1, c->f[i].label, ag_res(rc, cl)))
			return false;
	}
	rc = ag_call(cl, c->jfd, NULL, "\"op\":\"preserve\",\"session\":\"%s\",\"token\":%d,\"label\":\"journal\"",
		     c->session, CR_JTOKEN);
	return ag_ok(!rc, "%s: preserve the journal (%s)", c->session, ag_res(rc, cl));
}

/* The agent went away (kill -9, restart): connect again, hello, maybe subscribe. */
static inline bool cr_reconnect(struct carry *c, struct ag_client *cl, bool subscribe)
{
	const char *step = "connect";
	uint64_t t0 = ag_ms();
	int rc, resets = 0;

	/*
	 * A connect right after the agent died can still reach its listening
	 * socket while the kernel tears the killed process down (the client
	 * sees its connection end first): that connection is then reset
	 * (hello: ECONNRESET within ms; the soak hit it 2 times in 40 agent
	 * kills). That is the old agent, not the new one: start over.
	 */
	for (;;) {
		ag_close(cl);
		step = "connect";
		rc = ag_connect(cl, 30000);
		if (!rc) {
			step = "hello";
			rc = ag_call(cl, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"carrier\"");
		}
		if (!rc && subscribe) {
			step = "subscribe";
			rc = ag_call(cl, -1, NULL, "\"op\":\"subscribe\"");
		}
		if (rc != -ECONNRESET || ag_ms() - t0 > 30000)
			break;
		resets++;
		usleep(100000);
	}
	ag_ok(!rc, "%s: agent connection lost; reconnected%s (%s%s%s after %llu ms, %d reset connection(s) before)",
	      c->session, subscribe ? " and subscribed again" : "", rc ? step : "", rc ? ": " : "", ag_res(rc, cl),
	      (unsigned long long)(ag_ms() - t0), resets);
	ag_mark("reconnected");
	return !rc;
}

static inline int cr_client(void *arg)
{
	struct carry *c = arg;
	struct ag_client cl = { .fd = -1 };
	char ev[1024], buf[64];
	int rc, refused = 0;
	bool stalled = false;

	sigset_t usr1;

	/* the last generation keeps its files until the parent has seen the pools (cr_release) */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	rc = ag_connect(&cl, 10000);
	if (!ag_ok(!rc, "%s: connected to the agent (%s)", c->session, ag_errname(rc)))
		return 1;
	rc = ag_call(&cl, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"carrier\"");
	ag_ok(!rc, "%s: hello (%s)", c->session, ag_errname(rc));
	if (hl_gen() > c->first_gen && !cr_claim(c, &cl))
		return 1;
	ag_mark("claimed");
	if ((c->last_gen ? hl_gen() >= c->last_gen : hl_last_gen()) || c->claim_only) {
		int sig;

		sigwait(&usr1, &sig);
		for (int i = 0; i < c->nfiles; i++) {
			munmap(c->f[i].p, c->f[i].size);
			close(c->f[i].fd);
		}
		ag_close(&cl);
		return 0;
	}
	if (c->hold) {
		int sig;

		ag_mark("held");
		sigwait(&usr1, &sig);
		/* the agent may have been restarted meanwhile */
		if (c->reconnect && ag_call(&cl, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"carrier\"") &&
		    !cr_reconnect(c, &cl, false))
			return 1;
	}
	if (!cr_preserve(c, &cl))
		return 1;
	rc = ag_call(&cl, -1, NULL, "\"op\":\"subscribe\"");
	if (!ag_ok(!rc, "%s: subscribed to update barriers (%s)", c->session, ag_errname(rc)))
		return 1;
	ag_mark("ready");
	for (;;) {
		if (ag_event(&cl, -1, ev, sizeof(ev)) < 0) {
			if (!c->reconnect)
				return 0;	/* the kexec ended it */
			cr_reconnect(c, &cl, true);
			continue;
		}
		if (!ag_jstr(ev, "event", buf, sizeof(buf)))
			continue;
		if (!strcmp(buf, "prepare")) {
			long long id = ag_jint(ev, "update", 0);

			if (refused < c->refuse) {
				long long loaded = hl_read_ll("/sys/kernel/kexec_loaded");

				refused++;
				ag_ok(loaded == 1, "%s: prepare for update %lld: the new kernel is loaded (kexec_loaded=%lld); "
				      "refusing", c->session, id, loaded);
				rc = ag_call(&cl, -1, NULL, "\"op\":\"refuse\",\"update\":%lld,\"reason\":\"%s is busy (test "
					     "refusal)\"", id, c->session);
				ag_ok(!rc, "%s: refuse update %lld accepted by the agent (%s)", c->session, id, ag_res(rc, &cl));
				continue;
			}
			if (c->stall_ms && !stalled) {
				stalled = true;
				ag_mark("prepare");
				usleep((useconds_t)c->stall_ms * 1000);
			}
			ag_call(&cl, -1, NULL, "\"op\":\"ready\",\"update\":%lld", id);
		} else if (!strcmp(buf, "resume")) {
			cr_verify_all(c, hl_gen() + 1, "after the cancelled update");
			ag_mark("resumed");
		}
	}
}

/* Parent, last generation: let the carrier close its files and exit. */
static inline void cr_release(struct ag_child *ch)
{
	kill(ch->pid, SIGUSR1);
}

/* The pools as a fault-in of the carried files would leave them. */
static inline void cr_pools(const char *when, long long nr2, long long free2, long long nr1, long long free1)
{
	struct hl_pool p2 = hl_pool_get(HL_2M), p1 = hl_pool_get(HL_1G);

	hl_ok(p2.nr == nr2 && p2.free == free2 && p2.resv == 0 && p2.surplus == 0,
	      "%s: 2 MiB pool nr %lld free %lld resv %lld surplus %lld (want %lld/%lld/0/0)", when, p2.nr, p2.free,
	      p2.resv, p2.surplus, nr2, free2);
	if (nr1 >= 0)
		hl_ok(p1.nr == nr1 && p1.free == free1 && p1.resv == 0 && p1.surplus == 0,
		      "%s: 1 GiB pool nr %lld free %lld resv %lld surplus %lld (want %lld/%lld/0/0)", when, p1.nr,
		      p1.free, p1.resv, p1.surplus, nr1, free1);
}

/*
 * Parent, every generation: start hugelived and check it restored its
 * bookkeeping from the previous kernel (boot updated, the carrier's
 * session incoming, last_update = the update that booted this kernel,
 * into this generation's image), or is fresh in the first generation.
 * update_id 0: any id (a chain with cancelled updates).
 */
static inline bool cr_agent(const struct carry *c, int incoming, uint64_t update_id)
{
	static char out[65536];
	int g = hl_gen(), rc;

	rc = ag_start_agent(c->agent_args);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return false;
	rc = ag_status(out, sizeof(out));
	if (g == c->first_gen)
		return hl_ok(rc == 0 && ag_jis(out, "boot", "fresh"), "status: fresh boot (exit %d)", rc);
	hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && ag_jint(out, "incoming_sessions", -1) == incoming,
	      "status: boot updated, %d incoming session(s) (got %lld; the agent's state crossed the kexec)", incoming,
	      ag_jint(out, "incoming_sessions", -1));
	{
		const char *lu = ag_jfind(out, "last_update");
		char want[96];
		const char *fl = hl_flavour(g);

		snprintf(want, sizeof(want), "kexec into /boot/bzImage%s%s", fl ? "-" : "", fl ? fl : "");
		hl_ok(lu && ag_jis(lu, "result", "kexec") &&
		      (update_id ? ag_jint(lu, "id", -1) == (long long)update_id : ag_jint(lu, "id", -1) > 0) &&
		      ag_contains(lu, want),
		      "status: last_update is update %llu, \"%s\" (got id %lld)", (unsigned long long)update_id, want,
		      lu ? ag_jint(lu, "id", -1) : -1);
	}
	return true;
}

#endif
