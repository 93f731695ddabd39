// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=4096 timeout=600 cmdline="hugetlb_free_vmemmap=on hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=320"
 *
 * One live update carrying 512 MiB in 2 MiB pages and one 1 GiB page, in
 * one session, with every counter checked.
 *
 * gen 0: fill both files with the per-word pattern, preserve them, rewrite a
 *        region of each after PRESERVE_FD (must arrive too), kexec.
 * gen 1: the pool rule: booted with hugepages=320 (2M) and 1 (1G), the pool
 *        holds 320-256 and 0 pages before retrieve and exactly 320 and 1
 *        after. Retrieve in a fresh hugetlb cgroup; counters must equal what
 *        faulting the files in would give (in use, no reservation, no
 *        surplus; cgroup charged the full size); HVO must have freed the
 *        vmemmap of the restored pages (MemFree grows); mapping the file
 *        again reserves nothing. Verify every word, finish, close: the free
 *        counts return to their boot values and the cgroup to zero.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define SESSION		"hugetlb-carry"
#define TOK_2M		0x2000ULL
#define TOK_1G		0x1000ULL
#define SIZE_2M		(512ULL << 20)
#define SIZE_1G		HL_1G
#define NR_2M		320LL
#define NR_1G		1LL
#define SEED0		0xc0ffee00ULL
#define SEED1		0xc0ffee01ULL
#define NREG		16

/* Region r of a file of size sz holds SEED1 if r == 5, else SEED0. */
static uint64_t seed_of(int r)
{
	return r == 5 ? SEED1 : SEED0;
}

static bool verify(const uint8_t *p, uint64_t sz, const char *what)
{
	uint64_t reg = sz / NREG;
	struct hl_mismatch m;

	for (int r = 0; r < NREG; r++) {
		if (!hl_pattern_verify(p + r * reg, reg, r * reg, seed_of(r), &m))
			return hl_ok(false, "%s verified: first bad offset 0x%llx expected 0x%016llx actual 0x%016llx (%llu bad words)",
				     what, (unsigned long long)m.offset,
				     (unsigned long long)m.expected,
				     (unsigned long long)m.actual,
				     (unsigned long long)m.bad_words);
	}
	return hl_ok(true, "%s verified word by word", what);
}

static void fill(uint8_t *p, uint64_t sz, int only_region)
{
	uint64_t reg = sz / NREG;

	for (int r = 0; r < NREG; r++)
		if (only_region < 0 || r == only_region)
			hl_pattern_fill(p + r * reg, reg, r * reg,
					only_region < 0 ? SEED0 : seed_of(r));
}

static bool pool_is(unsigned long long hs, const char *what, long long nr,
		    long long fr, long long rs, long long sp)
{
	struct hl_pool p = hl_pool_get(hs);

	return hl_ok(p.nr == nr && p.free == fr && p.resv == rs && p.surplus == sp,
		     "%s %s pool: nr %lld free %lld resv %lld surplus %lld (want %lld %lld %lld %lld)",
		     hs == HL_1G ? "1G" : "2M", what, p.nr, p.free, p.resv,
		     p.surplus, nr, fr, rs, sp);
}

static int gen0(int luo)
{
	int sess, f2, f1;
	uint8_t *p2, *p1;

	pool_is(HL_2M, "at boot", NR_2M, NR_2M, 0, 0);
	pool_is(HL_1G, "at boot", NR_1G, NR_1G, 0, 0);

	f2 = hl_hugetlb_memfd("carry-2m", HL_2M, SIZE_2M);
	f1 = hl_hugetlb_memfd("carry-1g", HL_1G, SIZE_1G);
	if (f2 < 0 || f1 < 0)
		hl_bail("hugetlb memfd_create: %s", strerror(errno));
	p2 = hl_map(f2, SIZE_2M);
	p1 = hl_map(f1, SIZE_1G);
	if (!p2 || !p1)
		hl_bail("mmap: %s", strerror(errno));
	fill(p2, SIZE_2M, -1);
	fill(p1, SIZE_1G, -1);
	hl_ok(true, "filled 512 MiB (2M pages) and 1 GiB (1G page)");
	pool_is(HL_2M, "after fault-in", NR_2M, NR_2M - 256, 0, 0);
	pool_is(HL_1G, "after fault-in", NR_1G, 0, 0, 0);

	sess = hl_luo_create_session(luo, SESSION);
	if (sess < 0)
		hl_bail("create session: %s", strerror(errno));
	hl_success(hl_luo_preserve_fd(sess, f2, TOK_2M), errno,
		   "preserve 512 MiB 2M-page memfd");
	hl_success(hl_luo_preserve_fd(sess, f1, TOK_1G), errno,
		   "preserve 1 GiB 1G-page memfd");
	pool_is(HL_2M, "after preserve", NR_2M, NR_2M - 256, 0, 0);
	hl_ok(hl_luo_stat("preserved_folios") == 257,
	      "257 folios preserved (stats: %lld)", hl_luo_stat("preserved_folios"));
	hl_report("metadata handed over for 257 huge pages: %lld bytes",
		  hl_luo_stat("metadata_bytes"));
	hl_ok(hl_luo_stat("metadata_bytes") <= 257 * 32 + 4096,
	      "metadata <= 32 bytes per huge page plus fixed tables (%lld bytes)",
	      hl_luo_stat("metadata_bytes"));

	/* Written after PRESERVE_FD: must arrive as well. */
	fill(p2, SIZE_2M, 5);
	fill(p1, SIZE_1G, 5);
	if (hl_failures())
		return hl_exit();
	hl_kexec_next_generation(NULL);
	return hl_exit();
}

static int gen1(int luo)
{
	long long memfree0, memfree1, hvo, expect_kb, cg2, cg1;
	const char *cg;
	int sess, f2, f1;
	uint8_t *p2, *p1;

	/* Pool rule: the preserved pages count towards hugepages=. */
	pool_is(HL_2M, "before retrieve", NR_2M - 256, NR_2M - 256, 0, 0);
	pool_is(HL_1G, "before retrieve", 0, 0, 0, 0);

	cg = hl_cgroup_enter("retriever");
	hl_ok(cg != NULL, "entered hugetlb cgroup 'retriever'");

	memfree0 = hl_meminfo("MemFree");
	sess = hl_luo_retrieve_session(luo, SESSION);
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));
	f2 = hl_luo_retrieve_fd(sess, TOK_2M);
	f1 = hl_luo_retrieve_fd(sess, TOK_1G);
	if (f2 < 0 || f1 < 0)
		hl_bail("retrieve fds: %s", strerror(errno));
	memfree1 = hl_meminfo("MemFree");

	hl_ok(hl_fd_size(f2) == (long long)SIZE_2M && hl_fd_size(f1) == (long long)SIZE_1G,
	      "retrieved sizes %lld and %lld", hl_fd_size(f2), hl_fd_size(f1));

	/* As if the files had been faulted in on this kernel. */
	pool_is(HL_2M, "after retrieve", NR_2M, NR_2M - 256, 0, 0);
	pool_is(HL_1G, "after retrieve", NR_1G, 0, 0, 0);
	if (cg) {
		cg2 = hl_cgroup_hugetlb(cg, HL_2M);
		cg1 = hl_cgroup_hugetlb(cg, HL_1G);
		hl_ok(cg2 == (long long)SIZE_2M && cg1 == (long long)SIZE_1G,
		      "hugetlb cgroup charged: 2MB %lld, 1GB %lld bytes", cg2, cg1);
	}

	/*
	 * Restored pages get HVO like boot-allocated ones; the handler counts
	 * the restored folios whose vmemmap was optimized. MemFree grows by
	 * what HVO frees (7 of 8 vmemmap pages of a 2 MiB page, 4095 of 4096
	 * of a 1 GiB page); per-cpu page lists make it only approximate.
	 */
	hvo = hl_read_ll("/proc/sys/vm/hugetlb_optimize_vmemmap");
	hl_ok(hvo == 1, "hugetlb_optimize_vmemmap is on");
	hl_ok(hl_luo_stat("restored_folios") == 257 &&
	      hl_luo_stat("restored_hvo_folios") == 257,
	      "HVO applied to restored pages: %lld of %lld restored folios optimized",
	      hl_luo_stat("restored_hvo_folios"), hl_luo_stat("restored_folios"));
	/* Only the 64 struct pages HVO keeps were written per huge page. */
	hl_ok(hl_luo_stat("restored_struct_pages") == 257 * 64,
	      "struct pages written at retrieve: %lld (64 per huge page: %d)",
	      hl_luo_stat("restored_struct_pages"), 257 * 64);
	/*
	 * Pool lists, counters and cgroup charges are updated once per run of
	 * consecutive pages (at most 512): the 256 pages of the 2 MiB file are
	 * one run, the 1 GiB page another. Per page it was 257.
	 */
	hl_ok(hl_luo_stat("restored_locks") == 2,
	      "retrieve accounted per run: pool lock taken %lld times for 257 pages (2 runs)",
	      hl_luo_stat("restored_locks"));
	expect_kb = 256 * 28 + 4095 * 4;
	hl_ok(memfree1 - memfree0 >= expect_kb / 3,
	      "MemFree +%lld kB at retrieve (HVO frees about %lld kB, nothing without it)",
	      memfree1 - memfree0, expect_kb);

	p2 = hl_map(f2, SIZE_2M);
	p1 = hl_map(f1, SIZE_1G);
	if (!p2 || !p1)
		hl_bail("mmap retrieved: %s", strerror(errno));
	/* The reservation map covers every page: mapping reserves nothing. */
	pool_is(HL_2M, "after mmap", NR_2M, NR_2M - 256, 0, 0);
	pool_is(HL_1G, "after mmap", NR_1G, 0, 0, 0);

	verify(p2, SIZE_2M, "512 MiB in 2M pages");
	verify(p1, SIZE_1G, "1 GiB in a 1G page");
	pool_is(HL_2M, "after reading", NR_2M, NR_2M - 256, 0, 0);

	hl_success(hl_luo_finish(sess), errno, "finish session");
	close(sess);
	pool_is(HL_2M, "after finish", NR_2M, NR_2M - 256, 0, 0);

	munmap(p2, SIZE_2M);
	munmap(p1, SIZE_1G);
	close(f2);
	close(f1);
	pool_is(HL_2M, "after close", NR_2M, NR_2M, 0, 0);
	pool_is(HL_1G, "after close", NR_1G, NR_1G, 0, 0);
	if (cg)
		hl_ok(hl_cgroup_hugetlb(cg, HL_2M) == 0 && hl_cgroup_hugetlb(cg, HL_1G) == 0,
		      "hugetlb cgroup uncharged after close");
	return hl_exit();
}

int main(void)
{
	int luo = hl_luo_open();

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	return hl_gen() == 0 ? gen0(luo) : gen1(luo);
}
