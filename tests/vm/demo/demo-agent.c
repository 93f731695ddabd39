// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=4096 timeout=180 userspace=1 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=300"
 *
 * The `make demo` live update (the default of vm/demo.sh): hugetlb memory
 * of a client service carried across a kexec by the agent and the tool.
 *
 * gen 0: start hugelived. A client service (a forked process speaking the
 *        agent protocol, lib/agent.h) fills a 512 MiB hugetlb memfd (2 MiB
 *        pages) and, when the 1 GiB pool has its page, a 1 GiB hugetlb
 *        memfd (one 1 GiB page) with the per-word pattern, creates its
 *        session "demo" and preserves them (tokens 1, 2) with a 4 KiB shmem
 *        memfd of timestamps (token 3), and subscribes to update barriers.
 *        The operator (this process) runs `hugelivectl check` and then
 *        `hugelivectl update --kernel /boot/bzImage --initrd
 *        $HUGELIVE_NEXT_INITRD --reuse-cmdline --append hugelive.gen=1`.
 *        At the barrier's "prepare" the client stamps the TSC into the
 *        timestamp memfd and answers ready; hugelived then writes its
 *        state and calls reboot(LINUX_REBOOT_CMD_KEXEC).
 * gen 1: start hugelived (it restores its bookkeeping from its own LUO
 *        session); the client reconnects, retrieves its three fds, maps
 *        them, verifies every word, finishes its session.
 *
 * Timing: the TSC keeps counting across kexec. Two moments of gen 0 are
 * stamped into the preserved timestamp memfd: the operator's call of
 * `hugelivectl update` (preflight, kexec_file_load and the barrier follow)
 * and the client's ready answer, the last userspace event before the agent's
 * reboot(KEXEC) call ("the kexec call" of the report; only the agent's
 * state write lies in between). In gen 1, TSC - CLOCK_BOOTTIME gives the
 * moment the new kernel's clock started; a marker written to /dev/kmsg
 * relates the printk clock to it (printk time 0 is sched_clock's start, in
 * setup_arch, a little earlier), which also dates "Run /init", the start of
 * userspace. The TSC is calibrated after the client is done, off the
 * measured path.
 *
 * CORRUPT=1 (hugelive.corrupt) flips one bit of the 512 MiB memfd after
 * the kexec: the verification must fail naming offset 0x7654320.
 *
 * "report:" lines (both generations) are what vm/demo.sh prints.
 */
#include "../lib/agent.h"

#include <sys/prctl.h>
#include <termios.h>

#define SESSION		"demo"
#define SIZE_2M		(512ULL << 20)
#define SEED_2M		0x3264656d6f324dULL
#define SEED_1G		0x3164656d6f3147ULL
#define META_SIZE	4096
#define META_MAGIC	0x4154454d4f4d4544ULL	/* "DEMOMETA" */
#define NR_2M		300
#define NR_1G		1

/* The preserved 4 KiB memfd (token 3): what gen 1 needs to know. */
struct demo_meta {
	uint64_t magic;
	uint64_t size_1g;		/* 0: no 1 GiB page in the pool */
	uint64_t update_id;
	struct hl_stamp t_update;	/* operator: just before `hugelivectl update` */
	struct hl_stamp t_ready;	/* client: answering ready at prepare */
	long long client_pid;
	long long fill_ms, preserve_ms;
	long long preserved_folios, metadata_bytes;	/* gen 0 hugetlb_luo stats */
	char kname[64];			/* the agent's kernel session name */
};

/* Gen 1: what the client service found, for the operator's report. */
struct demo_res {
	bool meta_ok, ok_2m, ok_1g, finished;
	struct demo_meta meta;
	struct hl_stamp t_conn, t_fds, t_mapped, t_verified;
	long long bsize_2m, bsize_1g, got_2m, got_1g;
	struct hl_mismatch mm_2m, mm_1g;
};

static char out[65536];

static double tsc_ms(uint64_t from, uint64_t to)
{
	return (double)(int64_t)(to - from) * 1e3 / hl_tsc_hz();
}

/* One line of the timing breakdown. */
static void step(const char *what, double ms)
{
	hl_report("  %-72s %7.1f ms", what, ms);
}

static long long fs_bsize(int fd)
{
	struct statfs s;

	return fstatfs(fd, &s) ? -1 : (long long)s.f_bsize;
}

static const char *psize(long long b)
{
	return b == (long long)HL_1G ? "1 GiB" : b == (long long)HL_2M ? "2 MiB" :
	       b == 4096 ? "4 KiB" : "?";
}

/* Let the results port empty before the kexec (the agent does not wait). */
static void drain_results(void)
{
	const char *path = getenv("HUGELIVE_RESULTS");
	int fd = path ? open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC) : -1;

	fflush(NULL);
	if (fd >= 0) {
		tcdrain(fd);
		close(fd);
	}
	tcdrain(STDOUT_FILENO);
}

/* ---- gen 0 --------------------------------------------------------------- */

struct serve_arg {
	int meta_fd;
	struct demo_meta *meta;
};

static int client_serve(void *arg)
{
	struct serve_arg *a = arg;
	struct demo_meta *meta = a->meta;
	struct ag_client c = { .fd = -1 };
	int fd2 = -1, fd1 = -1, rc;
	uint8_t *p2, *p1 = NULL;
	char ev[1024], buf[64];
	uint64_t t0;

	prctl(PR_SET_NAME, "demo-client");
	meta->client_pid = getpid();
	t0 = ag_ms();
	fd2 = hl_hugetlb_memfd("demo-2M", HL_2M, SIZE_2M);
	p2 = fd2 >= 0 ? hl_map(fd2, SIZE_2M) : NULL;
	if (!ag_ok(p2 != NULL, "512 MiB hugetlb memfd (2 MiB pages) mapped (%s)",
		   p2 ? "ok" : strerror(errno)))
		return 1;
	hl_pattern_fill(p2, SIZE_2M, 0, SEED_2M);
	if (meta->size_1g) {
		fd1 = hl_hugetlb_memfd("demo-1G", HL_1G, meta->size_1g);
		p1 = fd1 >= 0 ? hl_map(fd1, meta->size_1g) : NULL;
		if (!ag_ok(p1 != NULL, "1 GiB hugetlb memfd (1 GiB page) mapped (%s)",
			   p1 ? "ok" : strerror(errno)))
			return 1;
		hl_pattern_fill(p1, meta->size_1g, 0, SEED_1G);
	}
	meta->fill_ms = (long long)(ag_ms() - t0);
	ag_ok(true, "client: filled %s with the per-word pattern in %lld ms",
	      meta->size_1g ? "512 MiB (2 MiB pages) + 1 GiB (1 GiB page)" : "512 MiB (2 MiB pages)",
	      meta->fill_ms);

	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "client: connected to hugelived (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"demo-client\"");
	ag_ok(!rc, "client: hello (%s)", ag_res(rc, &c));
	rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"" SESSION "\"");
	if (!ag_ok(!rc, "client: create session \"" SESSION "\" (%s)", ag_res(rc, &c)))
		return 1;
	ag_jstr(c.reply, "kname", meta->kname, sizeof(meta->kname));
	t0 = ag_ms();
	rc = ag_call(&c, fd2, NULL, "\"op\":\"preserve\",\"session\":\"" SESSION "\",\"token\":1,"
		     "\"label\":\"512 MiB, 2 MiB pages\"");
	if (!ag_ok(!rc, "client: preserve token 1, 512 MiB hugetlb (%s)", ag_res(rc, &c)))
		return 1;
	if (fd1 >= 0) {
		rc = ag_call(&c, fd1, NULL, "\"op\":\"preserve\",\"session\":\"" SESSION "\",\"token\":2,"
			     "\"label\":\"1 GiB, 1 GiB page\"");
		if (!ag_ok(!rc, "client: preserve token 2, 1 GiB hugetlb (%s)", ag_res(rc, &c)))
			return 1;
	}
	meta->preserve_ms = (long long)(ag_ms() - t0);
	rc = ag_call(&c, a->meta_fd, NULL, "\"op\":\"preserve\",\"session\":\"" SESSION "\",\"token\":3,"
		     "\"label\":\"timestamps\"");
	if (!ag_ok(!rc, "client: preserve token 3, 4 KiB timestamp memfd (%s)", ag_res(rc, &c)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"subscribe\"");
	if (!ag_ok(!rc, "client: subscribed to update barriers (%s)", ag_res(rc, &c)))
		return 1;
	ag_mark("ready");

	for (;;) {
		rc = ag_event(&c, -1, ev, sizeof(ev));
		if (rc < 0)
			return 0;	/* the kexec (or the agent) ended it */
		if (!ag_jstr(ev, "event", buf, sizeof(buf)))
			continue;
		if (!strcmp(buf, "prepare")) {
			/* Quiesced already: stamp, then answer ready. */
			meta->update_id = (uint64_t)ag_jint(ev, "update", 0);
			hl_stamp_now(&meta->t_ready);
			msync(meta, META_SIZE, MS_SYNC);
			ag_call(&c, -1, NULL, "\"op\":\"ready\",\"update\":%llu",
				(unsigned long long)meta->update_id);
		} else if (!strcmp(buf, "resume")) {
			char why[300] = "";

			ag_jstr(ev, "reason", why, sizeof(why));
			ag_ok(false, "client: the update was cancelled: %s", why);
			return 1;
		}
	}
}

static void gen0(void)
{
	struct serve_arg sa;
	struct demo_meta *meta;
	struct ag_child cl;
	struct hl_pool p2, p1;
	char verdict[200] = "?";
	int rc;

	rc = ag_start_agent(NULL);
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return;

	sa.meta_fd = hl_memfd("demo-timestamps", META_SIZE, 0);
	meta = sa.meta_fd >= 0 ? hl_map(sa.meta_fd, META_SIZE) : NULL;
	if (!meta)
		hl_bail("timestamp memfd: %s", strerror(errno));
	sa.meta = meta;
	meta->magic = META_MAGIC;
	meta->size_1g = hl_hp(HL_1G, "nr_hugepages") >= 1 ? HL_1G : 0;
	if (!meta->size_1g)
		hl_diag("no 1 GiB page in the pool: carrying the 2 MiB-page memfd only");

	ag_fork(&cl, "demo-client", client_serve, &sa);
	if (!hl_ok(ag_relay(&cl, "ready", 90000), "client service is up: memory filled, preserved, subscribed"))
		return;
	ag_run(NULL, 0, -1, "hugelivectl sessions --all");

	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	meta->preserved_folios = hl_luo_stat("preserved_folios");
	meta->metadata_bytes = hl_luo_stat("metadata_bytes");
	hl_ok(meta->preserved_folios == (long long)(SIZE_2M / HL_2M + meta->size_1g / HL_1G),
	      "hugetlb_luo: %lld folios preserved, %lld bytes of metadata", meta->preserved_folios,
	      meta->metadata_bytes);

	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	snprintf(verdict, sizeof(verdict), "%s", ag_line_with(out, "READY"));
	hl_ok(rc == 0 && !strncmp(verdict, "READY", 5), "hugelivectl check: exit %d, %s", rc, verdict);

	hl_report("gen 0: client \"demo-client\" (pid %lld, uid %d) preserved through hugelived, "
		  "session \"%s\" (kernel session %s):", meta->client_pid, (int)getuid(), SESSION,
		  meta->kname);
	hl_report("  token 1: 512 MiB hugetlb memfd, 256 x 2 MiB pages");
	if (meta->size_1g)
		hl_report("  token 2: 1 GiB hugetlb memfd, 1 x 1 GiB page");
	hl_report("  token 3: 4 KiB shmem memfd holding the kexec timestamps");
	hl_report("  pattern fill %lld ms, preserve of the hugetlb memfds %lld ms; hugetlb_luo stats: "
		  "preserved_folios %lld, metadata_bytes %lld",
		  meta->fill_ms, meta->preserve_ms, meta->preserved_folios, meta->metadata_bytes);
	hl_report("  pools before the update: 2 MiB nr %lld free %lld, 1 GiB nr %lld free %lld",
		  p2.nr, p2.free, p1.nr, p1.free);
	hl_report("gen 0: hugelivectl check: %s", verdict);
	hl_report("gen 0: hugelivectl update --kernel /boot/bzImage --initrd %s --reuse-cmdline "
		  "--append hugelive.gen=1", getenv("HUGELIVE_NEXT_INITRD"));
	drain_results();

	hl_stamp_now(&meta->t_update);
	msync(meta, META_SIZE, MS_SYNC);
	ag_update(30);
	/* only on failure: the client's view of it */
	ag_relay(&cl, NULL, 2000);
}

/* ---- gen 1 --------------------------------------------------------------- */

static int client_claim(void *arg)
{
	struct demo_res *r = arg;
	struct ag_client c = { .fd = -1 };
	int fd[4] = { -1, -1, -1, -1 }, rc;
	int ntok;
	uint8_t *p2, *p1 = NULL;
	struct demo_meta *meta;

	prctl(PR_SET_NAME, "demo-client");
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "client: reconnected to hugelived (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"demo-client\"");
	ag_ok(!rc, "client: hello (%s)", ag_res(rc, &c));
	hl_stamp_now(&r->t_conn);

	rc = ag_call(&c, -1, &fd[3], "\"op\":\"retrieve\",\"session\":\"" SESSION "\",\"token\":3");
	if (!ag_ok(!rc && fd[3] >= 0, "client: retrieve token 3 (%s)", ag_res(rc, &c)))
		return 1;
	meta = hl_map(fd[3], META_SIZE);
	if (!ag_ok(meta && meta->magic == META_MAGIC && meta->t_ready.magic == HL_STAMP_MAGIC &&
		   meta->t_update.magic == HL_STAMP_MAGIC,
		   "client: timestamp memfd carried (update %llu)", meta ? (unsigned long long)meta->update_id : 0))
		return 1;
	r->meta = *meta;
	r->meta_ok = true;
	ntok = meta->size_1g ? 2 : 1;
	for (int t = 1; t <= ntok; t++) {
		rc = ag_call(&c, -1, &fd[t], "\"op\":\"retrieve\",\"session\":\"" SESSION "\",\"token\":%d", t);
		if (!ag_ok(!rc && fd[t] >= 0 && ag_jbool(c.reply, "hugetlb") == 1,
			   "client: retrieve token %d: hugetlb fd back (%s)", t, ag_res(rc, &c)))
			return 1;
	}
	hl_stamp_now(&r->t_fds);
	p2 = hl_map(fd[1], SIZE_2M);
	if (ntok == 2)
		p1 = hl_map(fd[2], meta->size_1g);
	hl_stamp_now(&r->t_mapped);
	if (!ag_ok(p2 && (ntok == 1 || p1), "client: mapped again"))
		return 1;

	if (hl_param("corrupt")) {
		/* test switch (CORRUPT=1): the verification must catch this */
		((volatile uint64_t *)p2)[0x7654320 / 8] ^= 1;
		ag_diag("client: hugelive.corrupt: flipped a bit of the word at 0x7654320");
	}
	r->got_2m = hl_fd_size(fd[1]);
	r->bsize_2m = fs_bsize(fd[1]);
	r->ok_2m = hl_pattern_verify(p2, SIZE_2M, 0, SEED_2M, &r->mm_2m) && r->got_2m == (long long)SIZE_2M;
	if (ntok == 2) {
		r->got_1g = hl_fd_size(fd[2]);
		r->bsize_1g = fs_bsize(fd[2]);
		r->ok_1g = hl_pattern_verify(p1, meta->size_1g, 0, SEED_1G, &r->mm_1g) &&
			   r->got_1g == (long long)meta->size_1g;
	} else {
		r->ok_1g = true;
	}
	hl_stamp_now(&r->t_verified);
	ag_ok(r->ok_2m && r->bsize_2m == (long long)HL_2M,
	      "client: token 1: %lld bytes, %s pages, every word verified: %s (first bad 0x%llx)",
	      r->got_2m, psize(r->bsize_2m), r->ok_2m ? "yes" : "NO", (unsigned long long)r->mm_2m.offset);
	if (ntok == 2)
		ag_ok(r->ok_1g && r->bsize_1g == (long long)HL_1G,
		      "client: token 2: %lld bytes, %s page, every word verified: %s (first bad 0x%llx)",
		      r->got_1g, psize(r->bsize_1g), r->ok_1g ? "yes" : "NO",
		      (unsigned long long)r->mm_1g.offset);

	munmap(p2, SIZE_2M);
	if (p1)
		munmap(p1, meta->size_1g);
	munmap(meta, META_SIZE);
	for (int t = 1; t <= 3; t++)
		if (fd[t] >= 0)
			close(fd[t]);
	rc = ag_call(&c, -1, NULL, "\"op\":\"finish\",\"session\":\"" SESSION "\"");
	r->finished = ag_ok(!rc, "client: finish session \"" SESSION "\" (%s)", ag_res(rc, &c));
	ag_close(&c);
	return r->ok_2m && r->ok_1g && r->finished ? 0 : 1;
}

/*
 * The kernel's printk clock (local_clock, 0 early in setup_arch) against
 * CLOCK_BOOTTIME (0 at timekeeping_init): write a marker to /dev/kmsg and
 * read back its timestamp. Also the printk time of "Run /init". In ns;
 * false if /dev/kmsg is not usable.
 */
static bool kmsg_clocks(long long *printk_minus_boot, long long *run_init)
{
	static const char mark[] = "demo-agent: clock marker";
	char rec[2048];
	long long t_mark = -1, t_init = -1;
	uint64_t b0, b1;
	int fd = open("/dev/kmsg", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return false;
	b0 = hl_now_ns(CLOCK_BOOTTIME);
	if (write(fd, "<6>demo-agent: clock marker\n", sizeof(mark) + 3) < 0) {
		close(fd);
		return false;
	}
	b1 = hl_now_ns(CLOCK_BOOTTIME);
	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		unsigned long long us;
		char *msg;

		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		if (!msg || sscanf(rec, "%*u,%*u,%llu", &us) != 1)
			continue;
		msg++;
		if (!strncmp(msg, "Run /init as init process", 25))
			t_init = (long long)us * 1000;
		else if (!strncmp(msg, mark, sizeof(mark) - 1))
			t_mark = (long long)us * 1000;
	}
	close(fd);
	if (t_mark < 0 || t_init < 0)
		return false;
	*printk_minus_boot = t_mark - (long long)(b0 + (b1 - b0) / 2);
	*run_init = t_init;
	return true;
}

static void gen1(void)
{
	struct hl_stamp t_prog, t_agent;
	uint64_t boot_ns, k_tsc, init_tsc = 0;
	long long pk_minus_boot = 0, run_init = 0;
	struct demo_res *r;
	struct hl_pool b2, b1, a2, a1;
	struct ag_child cl;
	bool have_kmsg;
	double hz;
	int rc;

	/* the TSC and CLOCK_BOOTTIME together: where the kernel's clock started */
	hl_stamp_now(&t_prog);
	boot_ns = hl_now_ns(CLOCK_BOOTTIME);

	rc = ag_start_agent(NULL);
	hl_stamp_now(&t_agent);
	if (!hl_ok(rc == 0, "hugelived --daemonize started after the update (exit %d)", rc))
		return;
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jis(out, "boot", "updated") && ag_jint(out, "incoming_sessions", -1) == 1,
	      "status: boot updated, 1 incoming session (exit %d)", rc);
	b2 = hl_pool_get(HL_2M);
	b1 = hl_pool_get(HL_1G);

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		hl_bail("mmap: %s", strerror(errno));
	memset(r, 0, sizeof(*r));
	ag_fork(&cl, "demo-client", client_claim, r);
	rc = ag_wait_child(&cl, 90000);
	hl_ok(rc == 0, "client got its memory back, verified, finished (exit %d)", rc);
	if (!r->meta_ok)
		return;

	a2 = hl_pool_get(HL_2M);
	a1 = hl_pool_get(HL_1G);
	rc = ag_status(out, sizeof(out));
	hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0, "status: no session left");
	hl_ok(a2.nr == NR_2M && a2.free == NR_2M && a1.nr == (r->meta.size_1g ? NR_1G : a1.nr) &&
	      a1.free == a1.nr, "pools whole again: 2 MiB nr %lld free %lld, 1 GiB nr %lld free %lld",
	      a2.nr, a2.free, a1.nr, a1.free);

	/* Off the critical path: TSC calibration and the kernel's clocks. */
	hz = hl_tsc_hz();
	k_tsc = t_prog.tsc - (uint64_t)((double)boot_ns * hz / 1e9);
	have_kmsg = kmsg_clocks(&pk_minus_boot, &run_init);
	if (have_kmsg) {
		/* printk time 0: sched_clock's start (tsc_early_init, in setup_arch) */
		uint64_t pk_tsc = k_tsc - (uint64_t)((double)pk_minus_boot * hz / 1e9);

		hl_diag("printk clock - CLOCK_BOOTTIME = %+.0f ms; \"Run /init\" at %.3f s",
			(double)pk_minus_boot / 1e6, (double)run_init / 1e9);
		k_tsc = pk_tsc;
		init_tsc = pk_tsc + (uint64_t)((double)run_init * hz / 1e9);
	}

	{
		const struct demo_meta *m = &r->meta;
		bool good = r->ok_2m && r->ok_1g;
		uint64_t words = (SIZE_2M + m->size_1g) / 8;

		hl_report("gen 1: hugelived restored its bookkeeping (boot \"updated\"); the client "
			  "reconnected and got tokens 1%s, 3 of session \"%s\" back", m->size_1g ? ", 2" : "",
			  SESSION);
		hl_report("verification: %s 512 MiB (%s pages)%s %s, %llu words in %.0f ms",
			  good ? "PASS: every word of" : "FAIL:", psize(r->bsize_2m),
			  m->size_1g ? (r->bsize_1g == (long long)HL_1G ? " and 1 GiB (1 GiB page)"
				       : " and 1 GiB (? pages)") : "",
			  good ? "matched" : "checked, mismatches below",
			  (unsigned long long)words, tsc_ms(r->t_mapped.tsc, r->t_verified.tsc));
		if (!r->ok_2m)
			hl_report("  512 MiB memfd: first bad offset 0x%llx expected 0x%016llx actual 0x%016llx, "
				  "%llu bad words", (unsigned long long)r->mm_2m.offset,
				  (unsigned long long)r->mm_2m.expected, (unsigned long long)r->mm_2m.actual,
				  (unsigned long long)r->mm_2m.bad_words);
		if (!r->ok_1g)
			hl_report("  1 GiB memfd: first bad offset 0x%llx expected 0x%016llx actual 0x%016llx, "
				  "%llu bad words", (unsigned long long)r->mm_1g.offset,
				  (unsigned long long)r->mm_1g.expected, (unsigned long long)r->mm_1g.actual,
				  (unsigned long long)r->mm_1g.bad_words);
		hl_report("time from the kexec call to the memory mapped again in the client: %.0f ms "
			  "(TSC, %.0f MHz; from `hugelivectl update`: %.0f ms)",
			  tsc_ms(m->t_ready.tsc, r->t_mapped.tsc), hz / 1e6,
			  tsc_ms(m->t_update.tsc, r->t_mapped.tsc));
		hl_report("  (the kexec call: the client's ready at the update barrier; hugelived then "
			  "saves its state and calls reboot(KEXEC))");
		step("hugelivectl update -> client ready (preflight, kexec_file_load, barrier)",
		     tsc_ms(m->t_update.tsc, m->t_ready.tsc));
		step(have_kmsg ? "ready -> new kernel's clock starts (shutdown, kexec, decompression)"
			       : "ready -> new kernel's CLOCK_BOOTTIME starts (shutdown, kexec, early boot)",
		     tsc_ms(m->t_ready.tsc, k_tsc));
		if (have_kmsg) {
			step("-> userspace starts (kernel boot until \"Run /init\")", tsc_ms(k_tsc, init_tsc));
			step("-> demo program started by /init", tsc_ms(init_tsc, t_prog.tsc));
		} else {
			step("-> demo program started (kernel boot, /init)", tsc_ms(k_tsc, t_prog.tsc));
		}
		step("-> hugelived ready, bookkeeping restored", tsc_ms(t_prog.tsc, t_agent.tsc));
		step("-> client reconnected", tsc_ms(t_agent.tsc, r->t_conn.tsc));
		step("-> its 3 fds back", tsc_ms(r->t_conn.tsc, r->t_fds.tsc));
		step("-> mapped (= memory restored)", tsc_ms(r->t_fds.tsc, r->t_mapped.tsc));
		step("-> every word verified", tsc_ms(r->t_mapped.tsc, r->t_verified.tsc));
		hl_report("pools (nr/free) after boot: 2 MiB %lld/%lld, 1 GiB %lld/%lld (preserved pages join "
			  "when retrieved); after finish: 2 MiB %lld/%lld, 1 GiB %lld/%lld (asked: %d, %d)",
			  b2.nr, b2.free, b1.nr, b1.free, a2.nr, a2.free, a1.nr, a1.free, NR_2M, NR_1G);
		hl_report("hugetlb_luo stats: gen 0 preserved_folios %lld, metadata_bytes %lld; gen 1 "
			  "restored_folios %lld (hvo %lld), released_folios %lld",
			  m->preserved_folios, m->metadata_bytes, hl_luo_stat("restored_folios"),
			  hl_luo_stat("restored_hvo_folios"), hl_luo_stat("released_folios"));
	}
}

int main(void)
{
	if (hl_gen() == 0)
		gen0();
	else
		gen1();
	return hl_exit();
}
