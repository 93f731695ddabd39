// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=100 mem=2560 timeout=3600 userspace=1 check=no kernels="debug vmb" kernels_cycle=1 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * Endurance (issue 10 item 5, `make soak`): one VM chain of consecutive
 * live updates through hugelived + hugelivectl, alternating between the
 * debug kernel and kernel B (vmb), with faults injected at generations
 * chosen from a seed (hugelive.seed=, printed). Not in make check
 * (check=no); `make soak GENS=N SEED=S` sets the length and the seed.
 *
 * Clients (all lib/carry.h carriers unless said; each its own process):
 *   main    64 MiB hugetlb (2 MiB pages), 1 GiB hugetlb (a 1 GiB page),
 *           32 MiB shmem, journal; survives agent restarts (reconnect);
 *   victim  16 MiB hugetlb (2 MiB), 8 MiB shmem, journal: the client the
 *           client faults hit;
 *   ghost   16 MiB hugetlb (2 MiB), journal: only in a generation with the
 *           client-never-returns fault;
 *   history this program's own session (the protocol, no carrier): an 8 KiB
 *           shmem memfd with the seed, the fault, free memory, pools and the
 *           TSC of each generation's update.
 * Every generation after the first: hugelived restores its bookkeeping
 * (boot updated, the sessions incoming, last_update = a kexec into this
 * flavour's image); each carrier retrieves its files, verifies every word
 * (the region the previous generation rewrote with its seed, the rest with
 * the first one), checks from its journal that the kernel changed, finishes,
 * rewrites the region, preserves again and subscribes. The pools are
 * checked (2 MiB nr 64, free 64 - what the clients hold; 1 GiB nr 1 free 0),
 * MemFree+Shmem measured (hl_memfree_kb), a "report: soak gen=..." line
 * written, then the update (ag_update_run: the command line does not grow).
 *
 * Faults (one or none per generation; a shuffled deck of the nine and three
 * "none" per block of 12 generations, from the seed; hugelive.faults=a,b,...
 * names them per generation instead, by name or by number 0-9 in the order
 * below after "none" = 0; the last generation has none):
 *   client-kill-before-preserve  victim held after its claim, kill -9; it is
 *        restarted and starts over (new files, its old ones had been
 *        retrieved and finished: they were its own) and preserves; no session
 *        of the dead one is left;
 *   client-kill-after-preserve   kill -9 of the victim once it preserved: the
 *        agent keeps its session (outgoing, tokens intact), the update goes
 *        on without it, the next generation's victim reclaims everything;
 *   client-kill-in-barrier       the victim stalls at prepare and is killed:
 *        the update is cancelled (exit 4), main resumes with its memory
 *        intact, the victim's session is kept; then the real update;
 *   agent-kill-before-preserve   kill -9 of hugelived while the victim is
 *        held before preserving (main has preserved): restart (keeper), boot
 *        restarted, sessions intact, main reconnects, the victim preserves
 *        through the new agent;
 *   agent-kill-after-preserve    the same once both preserved;
 *   agent-kill-in-barrier        kill -9 of hugelived while the victim
 *        stalls at prepare: hugelivectl exits 3, the restarted agent reports
 *        the update interrupted and unloaded the kernel, clients reconnect;
 *        then the real update;
 *   client-refuses               the victim refuses: exit 4, both clients
 *        resume and verify every word, sessions intact; then the update;
 *   corrupt-image                `hugelivectl update --kernel` a truncated
 *        copy of the next image: exit 5 before the agent is asked (no update
 *        id used, nothing loaded); then the real update;
 *   client-never-returns         the ghost preserves, and the next
 *        generation never starts it: hugelived runs with --claim-timeout
 *        CLAIM_S and --unclaimed finish or keep (alternating from the seed);
 *        at the timeout the status report names the session with action
 *        finished (gone, its pages back in the pool) or kept (still
 *        incoming, its pages outside the pool; the ghost then comes back
 *        late, verifies every word and finishes).
 * Last generation: the free-memory trend per flavour (least squares over
 * its generations >= 1, like hugetlb-10gen) within +-SLOPE_KB per
 * generation (with TREND_MIN points or more: leaking a 2 MiB page per
 * update is -2048) and the spread within SPREAD_KB (twice hugetlb-10gen's:
 * faults restart the agent and clients at different points; a leaked
 * 1 GiB page is far beyond); clients close their files; no session left;
 * the pools whole.
 */
#include "lib/carry.h"

#define NR_2M		64LL
#define MAIN_2M		32LL		/* 64 MiB */
#define VICTIM_2M	8LL		/* 16 MiB */
#define GHOST_2M	8LL		/* 16 MiB */
#define CLAIM_S		20
#define STALL_MS	6000
#define MAXGEN		120
#define SLOPE_KB	1024
#define SPREAD_KB	32768
#define TREND_MIN	8		/* points per flavour before the slope is bounded */
#define HIST_MAGIC	0x54534948414f53ULL	/* "SOAHIST" */

enum fault {
	F_NONE, F_CLIENT_KILL_PRE, F_CLIENT_KILL_POST, F_CLIENT_KILL_BARRIER, F_AGENT_KILL_PRE,
	F_AGENT_KILL_POST, F_AGENT_KILL_BARRIER, F_REFUSE, F_CORRUPT, F_GHOST, F_N
};

static const char *const fault_name[F_N] = {
	"none", "client-kill-before-preserve", "client-kill-after-preserve", "client-kill-in-barrier",
	"agent-kill-before-preserve", "agent-kill-after-preserve", "agent-kill-in-barrier",
	"client-refuses", "corrupt-image", "client-never-returns",
};

struct rec {
	int32_t fault, failures;
	int64_t memfree_kb;
	int32_t nr2, free2, nr1, free1;
	uint64_t tsc_update;		/* TSC when this generation's real update started */
};

struct hist {
	uint64_t magic, seed;
	int64_t last_update_id;
	int32_t n;
	struct rec r[MAXGEN];
};
#define HIST_SIZE	8192
_Static_assert(sizeof(struct hist) <= HIST_SIZE, "the history fits its memfd");

static struct carry main_c = {
	.session = "soak-main", .reconnect = true, .nfiles = 3,
	.f = {
		{ .label = "64 MiB hugetlb 2M", .kind = CR_2M, .size = 64ULL << 20, .seed = 0x534f414b32ULL },
		{ .label = "1 GiB hugetlb 1G", .kind = CR_1G, .size = 1ULL << 30, .seed = 0x534f414b31ULL },
		{ .label = "32 MiB shmem", .kind = CR_SHMEM, .size = 32ULL << 20, .seed = 0x534f414b4dULL },
	},
};

static struct carry victim_c = {
	.session = "soak-victim", .reconnect = true, .nfiles = 2,
	.f = {
		{ .label = "16 MiB hugetlb 2M", .kind = CR_2M, .size = 16ULL << 20, .seed = 0x5649435432ULL },
		{ .label = "8 MiB shmem", .kind = CR_SHMEM, .size = 8ULL << 20, .seed = 0x564943544dULL },
	},
};

static struct carry ghost_c = {
	.session = "soak-ghost", .nfiles = 1,
	.f = { { .label = "16 MiB hugetlb 2M", .kind = CR_2M, .size = 16ULL << 20, .seed = 0x47484f5332ULL } },
};

static char out[65536];
static uint64_t seed;

/* ---- the fault schedule ---------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The fault of generation g: hugelive.faults= word g, else the seeded deck. */
static enum fault fault_of(int g)
{
	const char *list = hl_param("faults");
	enum fault deck[12];

	if (g < 0 || g >= hl_generations() - 1)
		return F_NONE;
	if (list) {
		char w[64];
		const char *p = list;
		size_t n;

		for (int i = 0; i < g && p; i++)
			p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
		if (!p)
			return F_NONE;
		n = strcspn(p, ",");
		snprintf(w, sizeof(w), "%.*s", (int)(n < sizeof(w) - 1 ? n : sizeof(w) - 1), p);
		for (int f = 0; f < F_N; f++)
			if (!strcmp(w, fault_name[f]))
				return (enum fault)f;
		/* or its number (hl_param keeps 255 characters: long lists need these) */
		if (w[0] >= '0' && w[0] <= '9' && !w[1])
			return (enum fault)(w[0] - '0');
		hl_bail("hugelive.faults: unknown fault '%s'", w);
	}
	/* block g / 12: the nine faults and three "none", Fisher-Yates from the seed */
	for (int i = 0; i < 12; i++)
		deck[i] = i < F_N - 1 ? (enum fault)(i + 1) : F_NONE;
	uint64_t x = mix(seed ^ mix((uint64_t)(g / 12) + 1));

	for (int i = 11; i > 0; i--) {
		int j;

		x = mix(x);
		j = (int)(x % (uint64_t)(i + 1));
		enum fault t = deck[i];

		deck[i] = deck[j];
		deck[j] = t;
	}
	return deck[g % 12];
}

/* The unclaimed policy the generation after ghost generation g runs with. */
static bool ghost_keep(int g)
{
	int k = 0;

	for (int h = 0; h < g; h++)
		k += fault_of(h) == F_GHOST;
	return ((uint64_t)k + (seed & 1)) & 1;
}

/* The generation whose victim created its current files. */
static int victim_first(int g)
{
	int f = 0;

	for (int h = 0; h < g; h++)
		if (fault_of(h) == F_CLIENT_KILL_PRE)
			f = h;
	return f;
}

/* ---- the history session ------------------------------------------------ */

static double tsc_ms(uint64_t a, uint64_t b)
{
	return (double)(b - a) * 1000.0 / hl_tsc_hz();
}

static uint64_t rdtsc_now(void)
{
	struct hl_stamp s;

	hl_stamp_now(&s);
	return s.tsc;
}

static struct hist *hist_claim(void)
{
	struct ag_client c = { .fd = -1 };
	struct hist *h = NULL;
	int rc, fd = -1;

	rc = ag_connect(&c, 10000);
	if (!rc)
		rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"soak\"");
	if (!rc)
		rc = ag_call(&c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"soak-hist\",\"token\":1");
	if (!hl_ok(!rc && fd >= 0, "history: retrieved from session soak-hist (%s)", ag_res(rc, &c)))
		goto out;
	h = hl_map(fd, HIST_SIZE);
	if (!hl_ok(h && h->magic == HIST_MAGIC && h->seed == seed && h->n == hl_gen(),
		   "history: magic, seed %llu, %d generations recorded", (unsigned long long)seed, h ? h->n : -1))
		h = NULL;
	rc = ag_call(&c, -1, NULL, "\"op\":\"finish\",\"session\":\"soak-hist\"");
	hl_ok(!rc, "history: finish (%s)", ag_res(rc, &c));
out:
	if (fd >= 0)
		close(fd);
	ag_close(&c);
	return h;
}

/* A new memfd holding *h, preserved in a new soak-hist session; its mapping. */
static struct hist *hist_preserve(const struct hist *h)
{
	struct ag_client c = { .fd = -1 };
	struct hist *m;
	int rc, fd = hl_memfd("soak-hist", HIST_SIZE, MFD_ALLOW_SEALING);

	m = fd < 0 ? NULL : hl_map(fd, HIST_SIZE);
	if (!hl_ok(m != NULL, "history: memfd"))
		return NULL;
	memcpy(m, h, sizeof(*h));
	rc = ag_connect(&c, 10000);
	if (!rc)
		rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"soak\"");
	if (!rc)
		rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"soak-hist\"");
	if (!rc)
		rc = ag_call(&c, fd, NULL, "\"op\":\"preserve\",\"session\":\"soak-hist\",\"token\":1,\"label\":\"history\"");
	hl_ok(!rc, "history: preserved in session soak-hist (%s)", ag_res(rc, &c));
	ag_close(&c);
	close(fd);
	return m;
}

/* ---- checks ----------------------------------------------------------------- */

static void pools(const char *when, long long used2, long long outside2, struct rec *r)
{
	struct hl_pool p2 = hl_pool_get(HL_2M), p1 = hl_pool_get(HL_1G);

	hl_ok(p2.nr == NR_2M - outside2 && p2.free == NR_2M - outside2 - used2 && p2.resv == 0 && p2.surplus == 0,
	      "%s: 2 MiB pool nr %lld free %lld resv %lld surplus %lld (want %lld/%lld/0/0)", when, p2.nr, p2.free,
	      p2.resv, p2.surplus, NR_2M - outside2, NR_2M - outside2 - used2);
	hl_ok(p1.nr == 1 && p1.free == 0 && p1.resv == 0 && p1.surplus == 0,
	      "%s: 1 GiB pool nr %lld free %lld resv %lld surplus %lld (want 1/0/0/0)", when, p1.nr, p1.free, p1.resv,
	      p1.surplus);
	if (r) {
		r->nr2 = (int32_t)p2.nr;
		r->free2 = (int32_t)p2.free;
		r->nr1 = (int32_t)p1.nr;
		r->free1 = (int32_t)p1.free;
	}
}

static long long status_ll(const char *key)
{
	ag_status(out, sizeof(out));
	return ag_jint(out, key, -1);
}

static long long last_update_id(void)
{
	const char *lu;

	ag_status(out, sizeof(out));
	lu = ag_jfind(out, "last_update");
	return lu ? ag_jint(lu, "id", -1) : 0;
}

static bool sessions_show(const char *name)
{
	ag_run(out, sizeof(out), -1, "hugelivectl sessions");
	return ag_contains(out, name);
}

static long long kexec_loaded(void)
{
	return hl_read_ll("/sys/kernel/kexec_loaded");
}

/* hugelivectl update in the background, output to /tmp/upd.log; its pid. */
static pid_t update_bg(void)
{
	char cmd[8192];

	ag_update_cmd(cmd, sizeof(cmd), NULL, 60);
	return ag_spawn(-1, "exec %s >/tmp/upd.log 2>&1", cmd);
}

static int wait_rc(pid_t pid, int timeout_s)
{
	uint64_t end = ag_ms() + (uint64_t)timeout_s * 1000;
	int st;

	while (ag_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static void kill_child(struct ag_child *ch)
{
	int rc;

	kill(ch->pid, SIGKILL);
	rc = ag_wait_child(ch, 20000);
	hl_ok(rc == 128 + SIGKILL, "kill -9 of %s (pid %d): it is dead (status %d)", ch->name, (int)ch->pid, rc);
}

/* The generation after a client-never-returns: the claim timeout acts. */
static void ghost_timeout(int g)
{
	bool keep = ghost_keep(g - 1);
	uint64_t end = ag_ms() + (CLAIM_S + 60) * 1000ULL;
	const char *e = NULL;
	int rc;

	hl_diag("the ghost of gen %d does not come back; policy %s, claim timeout %d s", g - 1, keep ? "keep" : "finish",
		CLAIM_S);
	/* claim_remaining_s is a number until the deadline passed, then null */
	while (ag_ms() < end) {
		ag_status(out, sizeof(out));
		if (ag_jint(out, "claim_remaining_s", -1) < 0)
			break;
		sleep(1);
	}
	for (const char *p = out; (p = strstr(p, "\"name\":\"soak-ghost\"")); p++)
		e = p;	/* the newest entry */
	if (!hl_ok(e != NULL && ag_jis(e, "problem", "unclaimed"),
		   "claim timeout: the status report names soak-ghost unclaimed"))
		return;
	{
		char act[32] = "";

		ag_jstr(e, "action", act, sizeof(act));
		hl_ok(!strcmp(act, keep ? "kept" : "finished"), "claim timeout: action \"%s\" (--unclaimed %s)", act,
		      keep ? "keep" : "finish");
	}
	rc = (int)ag_jint(out, "incoming_sessions", -1);
	if (!keep) {
		hl_ok(rc == 0 && !sessions_show("soak-ghost"), "finish policy: the ghost's session is gone (incoming %d)",
		      rc);
		pools("after the ghost's session was finished", MAIN_2M + VICTIM_2M, 0, NULL);
		return;
	}
	hl_ok(rc == 1 && sessions_show("soak-ghost"), "keep policy: the ghost's session is still incoming (incoming %d)",
	      rc);
	pools("ghost session kept, not retrieved", MAIN_2M + VICTIM_2M, GHOST_2M, NULL);
	/* it comes back late: everything is there */
	struct ag_child gh;

	ghost_c.first_gen = g - 1;
	ghost_c.claim_only = true;
	ag_fork(&gh, "ghost", cr_client, &ghost_c);
	hl_ok(ag_relay(&gh, "claimed", 120000), "keep policy: the ghost came back late and got every word back");
	pools("ghost reclaimed", MAIN_2M + VICTIM_2M + GHOST_2M, 0, NULL);
	cr_release(&gh);
	rc = ag_wait_child(&gh, 30000);
	hl_ok(rc == 0, "the ghost finished (exit %d)", rc);
}

/* ---- one generation ---------------------------------------------------------- */

static void trend(const struct hist *h, int last)
{
	char fl[2][32];

	/* (hl_flavour's buffers are reused: copy) */
	snprintf(fl[0], sizeof(fl[0]), "%s", hl_flavour(0));
	snprintf(fl[1], sizeof(fl[1]), "%s", hl_flavour(1));
	for (int k = 0; k < 2; k++) {
		double x[MAXGEN], y[MAXGEN], slope;
		long long lo = 0, hi = 0;
		int n = 0;

		for (int i = 1; i <= last && i < MAXGEN; i++) {
			if (strcmp(hl_flavour(i), fl[k]))
				continue;
			long long v = h->r[i].memfree_kb;

			lo = !n || v < lo ? v : lo;
			hi = !n || v > hi ? v : hi;
			x[n] = i;
			y[n++] = (double)v;
		}
		if (n < 3) {
			hl_diag("%s: %d generations, too few for a trend", fl[k], n);
			continue;
		}
		slope = hl_slope(x, y, n);
		hl_report("soak trend flavour=%s gens=%d min_kb=%lld max_kb=%lld spread_kb=%lld slope_kb_per_gen=%+.0f",
			  fl[k], n, lo, hi, hi - lo, slope);
		/* a few points scatter by MBs (hugetlb-10gen: +-7 MB): their slope means nothing */
		if (n >= TREND_MIN)
			hl_ok(slope >= -SLOPE_KB && slope <= SLOPE_KB,
			      "%s: MemFree+Shmem trend %+.0f kB per generation, within +-%d", fl[k], slope, SLOPE_KB);
		else
			hl_diag("%s: trend %+.0f kB per generation over %d points (bounded from %d on)", fl[k], slope, n,
				TREND_MIN);
		hl_ok(hi - lo <= SPREAD_KB, "%s: MemFree+Shmem spread %lld kB over %d generations <= %d", fl[k], hi - lo, n,
		      SPREAD_KB);
	}
}

static void report(const struct hist *h, int g, double gen_ms, double boot_ms)
{
	const struct rec *r = &h->r[g];

	hl_report("soak gen=%d flavour=%s fault=%s result=%s memfree_kb=%lld nr2=%d free2=%d nr1=%d free1=%d "
		  "gen_ms=%.0f boot_ms=%.0f failures=%d", g, hl_flavour(g), fault_name[r->fault],
		  hl_failures() ? "FAIL" : "ok", (long long)r->memfree_kb, r->nr2, r->free2, r->nr1, r->free1, gen_ms,
		  boot_ms, hl_failures());
}

int main(void)
{
	int g = hl_gen(), rc;
	enum fault f, pf;
	struct hist h0 = { 0 }, *h = &h0, *hp;
	struct ag_child mc, vc, gc;
	uint64_t t_claimed;
	struct rec *r;
	char when[96];

	/* the seed first: every fault_of() depends on it */
	seed = (uint64_t)hl_param_ll("seed", 1);
	f = fault_of(g);
	pf = fault_of(g - 1);
	if (hl_generations() > MAXGEN)
		hl_bail("at most %d generations (the history memfd)", MAXGEN);
	hl_diag("soak gen %d of %d, seed %llu, flavour %s -> %s, fault %s", g, hl_generations(),
		(unsigned long long)seed, hl_flavour(g), hl_flavour(g + 1), fault_name[f]);
	if (g == 0) {
		char sched[2048];
		size_t o = 0;

		for (int i = 0; i < hl_generations() && o < sizeof(sched) - 40; i++)
			o += (size_t)snprintf(sched + o, sizeof(sched) - o, "%s%d:%s", i ? " " : "", i,
					      fault_name[fault_of(i)]);
		hl_report("soak seed=%llu generations=%d kernels=%s", (unsigned long long)seed, hl_generations(),
			  hl_param("kernels"));
		hl_report("soak schedule %s", sched);
	}

	/* agent: after a ghost generation with the claim timeout and a policy */
	static char aargs[96];

	if (pf == F_GHOST)
		snprintf(aargs, sizeof(aargs), "--claim-timeout %d --unclaimed %s", CLAIM_S,
			 ghost_keep(g - 1) ? "keep" : "finish");
	main_c.agent_args = pf == F_GHOST ? aargs : NULL;
	if (!cr_agent(&main_c, g ? 3 + (pf == F_GHOST) : 0, 0))
		return hl_exit();
	if (g) {
		long long id = last_update_id();

		hp = hist_claim();
		if (!hp)
			return hl_exit();
		memcpy(&h0, hp, sizeof(h0));
		hl_ok(h->r[g - 1].fault == (int32_t)pf, "history: gen %d ran fault %s, as the schedule says", g - 1,
		      fault_name[h->r[g - 1].fault >= 0 && h->r[g - 1].fault < F_N ? h->r[g - 1].fault : 0]);
		hl_ok(id > h->last_update_id, "status: this kernel came from update %lld (gen %d's was %lld: ids grow)", id,
		      g - 1, (long long)h->last_update_id);
		h->last_update_id = id;
	} else {
		h->magic = HIST_MAGIC;
		h->seed = seed;
	}
	r = &h->r[g];
	r->fault = f;

	/* clients */
	victim_c.first_gen = victim_first(g);
	victim_c.hold = f == F_CLIENT_KILL_PRE || f == F_AGENT_KILL_PRE;
	victim_c.refuse = f == F_REFUSE;
	victim_c.stall_ms = f == F_CLIENT_KILL_BARRIER || f == F_AGENT_KILL_BARRIER ? STALL_MS : 0;
	ag_fork(&mc, "main", cr_client, &main_c);
	ag_fork(&vc, "victim", cr_client, &victim_c);
	hl_ok(ag_relay(&mc, "claimed", 180000), "main has its memory (gen %d)", g);
	hl_ok(ag_relay(&vc, "claimed", 180000), "victim has its memory (gen %d)", g);
	t_claimed = rdtsc_now();
	if (pf == F_GHOST)
		ghost_timeout(g);
	if (g)
		pools("after the claims", MAIN_2M + VICTIM_2M, 0, NULL);
	r->memfree_kb = hl_memfree_kb();
	hl_diag("gen %d (%s) MemFree+Shmem %lld kB", g, hl_flavour(g), (long long)r->memfree_kb);

	if (hl_last_gen()) {
		r->failures = hl_failures();
		pools("last generation", MAIN_2M + VICTIM_2M, 0, r);
		trend(h, g);
		cr_release(&mc);
		cr_release(&vc);
		rc = ag_wait_child(&mc, 60000);
		hl_ok(rc == 0, "main finished (exit %d)", rc);
		rc = ag_wait_child(&vc, 60000);
		hl_ok(rc == 0, "victim finished (exit %d)", rc);
		rc = ag_status(out, sizeof(out));
		hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0 && ag_jint(out, "outgoing_sessions", -1) == 0,
		      "status: no session left");
		{
			struct hl_pool p2 = hl_pool_get(HL_2M), p1 = hl_pool_get(HL_1G);

			hl_ok(p2.nr == NR_2M && p2.free == NR_2M && p1.nr == 1 && p1.free == 1,
			      "the pools are whole: 2 MiB %lld/%lld, 1 GiB %lld/%lld", p2.nr, p2.free, p1.nr, p1.free);
		}
		report(h, g, tsc_ms(h->r[g - 1].tsc_update, rdtsc_now()), tsc_ms(h->r[g - 1].tsc_update, t_claimed));
		hl_report("soak done generations=%d seed=%llu failures_last_gen=%d", g + 1, (unsigned long long)seed,
			  hl_failures());
		return hl_exit();
	}

	if (f == F_GHOST) {
		ghost_c.first_gen = g;
		ghost_c.claim_only = false;
		ag_fork(&gc, "ghost", cr_client, &ghost_c);
		hl_ok(ag_relay(&gc, "ready", 120000), "the ghost preserved its file (it will not come back)");
	}
	hl_ok(ag_relay(&mc, "ready", 300000), "main preserved everything and subscribed");
	snprintf(when, sizeof(when), "gen %d %s", g, fault_name[f]);

	switch (f) {
	case F_NONE:
	case F_GHOST:
		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		break;
	case F_CLIENT_KILL_PRE:
		hl_ok(ag_relay(&vc, "held", 60000), "%s: victim held before preserving", when);
		kill_child(&vc);
		usleep(300000);
		hl_ok(!sessions_show("soak-victim"), "%s: no session of the dead victim is left", when);
		victim_c.first_gen = g;
		victim_c.hold = false;
		ag_fork(&vc, "victim", cr_client, &victim_c);
		hl_ok(ag_relay(&vc, "ready", 300000), "%s: the restarted victim made new files and preserved them", when);
		break;
	case F_CLIENT_KILL_POST:
		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		kill_child(&vc);
		usleep(300000);
		ag_run(out, sizeof(out), -1, "hugelivectl sessions");
		hl_ok(ag_contains(out, "soak-victim") && ag_contains(out, "1:16 MiB hugetlb 2M[hugetlb]") &&
		      ag_contains(out, "2:8 MiB shmem"),
		      "%s: the agent keeps the dead victim's session with its tokens", when);
		break;
	case F_CLIENT_KILL_BARRIER: {
		pid_t up;

		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		up = update_bg();
		hl_ok(ag_relay(&vc, "prepare", 60000), "%s: the victim got prepare and stalls", when);
		kill_child(&vc);
		rc = wait_rc(up, 90);
		ag_run(out, sizeof(out), -1, "cat /tmp/upd.log");
		hl_ok(rc == AG_EXIT_CANCELLED, "%s: hugelivectl update exits %d (cancelled; got %d): %s", when,
		      AG_EXIT_CANCELLED, rc, ag_line_with(out, "disconnected"));
		hl_ok(kexec_loaded() == 0, "%s: the new kernel was unloaded (kexec_loaded=%lld)", when, kexec_loaded());
		hl_ok(ag_relay(&mc, "resumed", 30000), "%s: main resumed with every word intact", when);
		ag_run(out, sizeof(out), -1, "hugelivectl sessions");
		hl_ok(ag_contains(out, "soak-victim") && ag_contains(out, "1:16 MiB hugetlb 2M[hugetlb]"),
		      "%s: the dead victim's session is kept", when);
		break;
	}
	case F_AGENT_KILL_PRE: {
		hl_ok(ag_relay(&vc, "held", 60000), "%s: victim held before preserving", when);
		ag_crash_and_restart(when, NULL, 1, "outgoing_sessions");
		hl_ok(ag_relay(&mc, "reconnected", 40000), "%s: main reconnected to the new agent", when);
		cr_release(&vc);
		hl_ok(ag_relay(&vc, "ready", 120000), "%s: the victim preserved through the restarted agent", when);
		break;
	}
	case F_AGENT_KILL_POST:
		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		ag_crash_and_restart(when, NULL, 2, "outgoing_sessions");
		hl_ok(ag_relay(&mc, "reconnected", 40000), "%s: main reconnected to the new agent", when);
		hl_ok(ag_relay(&vc, "reconnected", 40000), "%s: victim reconnected to the new agent", when);
		break;
	case F_AGENT_KILL_BARRIER: {
		long keeper = -1, agent;
		pid_t up;

		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		up = update_bg();
		hl_ok(ag_relay(&vc, "prepare", 60000), "%s: the victim got prepare and stalls", when);
		agent = ag_kill9_agent(when, &keeper);
		rc = wait_rc(up, 60);
		ag_run(out, sizeof(out), -1, "cat /tmp/upd.log");
		hl_ok(rc == 3, "%s: hugelivectl update exits 3 (agent lost; got %d)", when, rc);
		ag_restart_agent(when, NULL, agent, keeper, 2, "outgoing_sessions", out, sizeof(out));
		{
			const char *lu = ag_jfind(out, "last_update");

			hl_ok(lu && ag_jis(lu, "result", "interrupted"), "%s: status: last update interrupted", when);
		}
		hl_ok(kexec_loaded() == 0, "%s: the restarted agent unloaded the kernel (kexec_loaded=%lld)", when,
		      kexec_loaded());
		hl_ok(ag_relay(&mc, "reconnected", 40000), "%s: main reconnected to the new agent", when);
		hl_ok(ag_relay(&vc, "reconnected", 40000), "%s: victim reconnected to the new agent", when);
		break;
	}
	case F_REFUSE:
		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		rc = ag_update_run(NULL, 60, out, sizeof(out));
		hl_ok(rc == AG_EXIT_CANCELLED && ag_contains(out, "soak-victim is busy (test refusal)"),
		      "%s: hugelivectl update exits %d (cancelled; got %d): %s", when, AG_EXIT_CANCELLED, rc,
		      ag_line_with(out, "refused"));
		hl_ok(kexec_loaded() == 0, "%s: the new kernel was unloaded (kexec_loaded=%lld)", when, kexec_loaded());
		hl_ok(ag_relay(&mc, "resumed", 30000), "%s: main resumed with every word intact", when);
		hl_ok(ag_relay(&vc, "resumed", 30000), "%s: victim resumed with every word intact", when);
		ag_status(out, sizeof(out));
		hl_ok(ag_jint(out, "outgoing_sessions", -1) == 2 && ag_jis(out, "result", "cancelled"),
		      "%s: status: cancelled, both sessions outgoing", when);
		break;
	case F_CORRUPT: {
		long long before = last_update_id();
		const char *k = getenv("HUGELIVE_KERNEL");

		hl_ok(ag_relay(&vc, "ready", 300000), "victim preserved and subscribed");
		rc = ag_run(NULL, 0, -1, "head -c $(( $(stat -c %%s %s) / 2 )) %s >/tmp/corrupt-bzImage", k, k);
		hl_ok(rc == 0, "%s: /tmp/corrupt-bzImage is the first half of %s", when, k);
		rc = ag_update_run("/tmp/corrupt-bzImage", 60, out, sizeof(out));
		hl_ok(rc == AG_EXIT_PREFLIGHT, "%s: hugelivectl update refuses the truncated image: exit %d (want %d): %s",
		      when, rc, AG_EXIT_PREFLIGHT, ag_line_with(out, "hugelivectl:"));
		hl_ok(kexec_loaded() == 0, "%s: nothing loaded (kexec_loaded=%lld)", when, kexec_loaded());
		hl_ok(last_update_id() == before && status_ll("subscribers") == 2,
		      "%s: the agent started no update (last update id still %lld), both clients subscribed", when, before);
		break;
	}
	case F_N:
		break;
	}

	/* the real update */
	{
		int want = 2 + (f == F_GHOST);

		ag_status(out, sizeof(out));
		hl_ok(ag_jint(out, "outgoing_sessions", -1) == want, "before the update: %d outgoing sessions (got %lld)",
		      want, ag_jint(out, "outgoing_sessions", -1));
	}
	pools("before the update", MAIN_2M + VICTIM_2M + (f == F_GHOST ? GHOST_2M : 0), 0, r);
	h->n = g + 1;
	r->failures = hl_failures();
	hp = hist_preserve(h);
	if (!hp)
		return hl_exit();
	r = &hp->r[g];
	r->tsc_update = rdtsc_now();
	report(hp, g, g ? tsc_ms(h->r[g - 1].tsc_update, r->tsc_update) : (double)hl_now_ns(CLOCK_BOOTTIME) / 1e6,
	       g ? tsc_ms(h->r[g - 1].tsc_update, t_claimed) : 0);
	rc = ag_update_run(NULL, 60, out, sizeof(out));
	hl_ok(false, "the update into gen %d: hugelivectl exited %d: %s", g + 1, rc, ag_line_with(out, "hugelivectl:"));
	return hl_exit();
}
