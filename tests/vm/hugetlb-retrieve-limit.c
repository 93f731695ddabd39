// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * A retrieve that fails on a cgroup limit loses nothing and can be retried.
 *
 * gen 0: file A (16 pages) and file B (8 pages), each filled with its own
 *        pattern, preserved in one session; kexec.
 * gen 1: in a hugetlb cgroup whose hugetlb.2MB.max is 8 pages, retrieving A
 *        fails with ENOSPC; no preserved page joins the free pool, none is
 *        released (stats), and retrying at the same limit fails the same
 *        way. With the limit raised to 16 pages A is retrieved, every word
 *        verified, the cgroup charged exactly 16 pages. B is tried at the
 *        (full) limit, ENOSPC, and left: finishing the session gives all of
 *        B's 8 pages to the free pool, and the pool ends at hugepages=64.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define N	64
#define NA	16
#define NB	8

static int write_max(const char *cg, long long pages)
{
	char path[200], val[32];

	snprintf(path, sizeof(path), "%s/hugetlb.2MB.max", cg);
	snprintf(val, sizeof(val), "%lld", pages * (long long)HL_2M);
	return hl_write_str(path, val);
}

int main(void)
{
	int luo = hl_luo_open(), sess, a, b;
	long long free0, nr0;
	const char *cg;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		a = hl_hugetlb_memfd("A", HL_2M, NA * HL_2M);
		b = hl_hugetlb_memfd("B", HL_2M, NB * HL_2M);
		if (a < 0 || b < 0)
			hl_bail("hugetlb memfds: %s", strerror(errno));
		p = hl_map(a, NA * HL_2M);
		if (!p)
			hl_bail("mmap A: %s", strerror(errno));
		hl_pattern_fill(p, NA * HL_2M, 0, 0xa11);
		munmap(p, NA * HL_2M);
		p = hl_map(b, NB * HL_2M);
		if (!p)
			hl_bail("mmap B: %s", strerror(errno));
		hl_pattern_fill(p, NB * HL_2M, 0, 0xb22);
		munmap(p, NB * HL_2M);
		sess = hl_luo_create_session(luo, "limit");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve A (16 pages)");
		hl_success(hl_luo_preserve_fd(sess, b, 2), errno, "preserve B (8 pages)");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	cg = hl_cgroup_enter("limited");
	if (!cg)
		hl_bail("hugetlb cgroup: %s", strerror(errno));
	hl_success(write_max(cg, 8), errno, "hugetlb.2MB.max = 8 pages");
	sess = hl_luo_retrieve_session(luo, "limit");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));

	free0 = hl_hp(HL_2M, "free_hugepages");
	nr0 = hl_hp(HL_2M, "nr_hugepages");
	hl_diag("before retrieve: nr %lld free %lld", nr0, free0);
	hl_errno(hl_luo_retrieve_fd(sess, 1), errno, ENOSPC,
		 "retrieve A (16 pages) at an 8-page limit");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0,
	      "no preserved page joined the free pool (free %lld, was %lld)",
	      hl_hp(HL_2M, "free_hugepages"), free0);
	hl_ok(hl_luo_stat("released_folios") == 0,
	      "no page released (stats: %lld)", hl_luo_stat("released_folios"));
	hl_errno(hl_luo_retrieve_fd(sess, 1), errno, ENOSPC,
		 "retried at the same limit: ENOSPC again");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0,
	      "still no page in the free pool");

	hl_success(write_max(cg, 16), errno, "hugetlb.2MB.max = 16 pages");
	a = hl_luo_retrieve_fd(sess, 1);
	hl_success(a, errno, "retrieve A once the limit allows it");
	/*
	 * The charge of all 16 at an 8-page limit fails, so the first try goes
	 * page by page and adds 8 (8 pool lock holds), the retry at the same
	 * limit adds none, and the other 8 go in as one run once it is raised.
	 */
	hl_ok(hl_luo_stat("restored_locks") == 9 && hl_luo_stat("restored_folios") == NA,
	      "per page up to the limit, then one run: %lld lock holds for %lld pages (want 9, %d)",
	      hl_luo_stat("restored_locks"), hl_luo_stat("restored_folios"), NA);
	p = a < 0 ? NULL : hl_map(a, NA * HL_2M);
	if (p) {
		struct hl_mismatch m;
		/* verify first: the arguments below are read in no set order */
		bool same = hl_pattern_verify(p, NA * HL_2M, 0, 0xa11, &m);

		hl_ok(same,
		      "A: every word arrived (%llu bad, first at %#llx)",
		      (unsigned long long)m.bad_words,
		      (unsigned long long)m.offset);
		munmap(p, NA * HL_2M);
	} else {
		hl_ok(false, "mmap A: %s", strerror(errno));
	}
	hl_ok(hl_cgroup_hugetlb(cg, HL_2M) == NA * (long long)HL_2M,
	      "cgroup charged 16 pages (%lld bytes)", hl_cgroup_hugetlb(cg, HL_2M));
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == nr0 + NA &&
	      hl_hp(HL_2M, "free_hugepages") == free0,
	      "pool: nr %lld free %lld (want %lld, %lld)",
	      hl_hp(HL_2M, "nr_hugepages"), hl_hp(HL_2M, "free_hugepages"),
	      nr0 + NA, free0);

	/* B at a full limit: refused, then left to finish(). */
	hl_errno(hl_luo_retrieve_fd(sess, 2), errno, ENOSPC,
		 "retrieve B with the limit used up");
	hl_success(hl_luo_finish(sess), errno, "finish with B not retrieved");
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == N &&
	      hl_hp(HL_2M, "free_hugepages") == free0 + NB,
	      "B's 8 pages joined the free pool: nr %lld free %lld (want %d, %lld)",
	      hl_hp(HL_2M, "nr_hugepages"), hl_hp(HL_2M, "free_hugepages"),
	      N, free0 + NB);
	hl_ok(hl_luo_stat("released_folios") == NB && hl_luo_stat("released_locks") == 1,
	      "stats: %lld released with %lld pool lock holds (want %d, 1)",
	      hl_luo_stat("released_folios"), hl_luo_stat("released_locks"), NB);
	close(a);
	return hl_exit();
}
