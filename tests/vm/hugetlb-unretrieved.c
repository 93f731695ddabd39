// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * A file that is never retrieved: its pages must go back to the free pool
 * when the session is finished, so that the pool ends with hugepages=64
 * pages and nothing leaks. File A (8 pages) is retrieved, file B (16 pages)
 * in the same session is not.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define N	64
#define NA	8
#define NB	16

static bool pool_is(const char *what, long long nr, long long fr)
{
	struct hl_pool p = hl_pool_get(HL_2M);

	return hl_ok(p.nr == nr && p.free == fr && p.resv == 0 && p.surplus == 0,
		     "%s: nr %lld free %lld resv %lld surplus %lld (want nr %lld free %lld)",
		     what, p.nr, p.free, p.resv, p.surplus, nr, fr);
}

int main(void)
{
	int luo = hl_luo_open(), sess, a, b;
	long long memfree0, memfree1;
	uint8_t *pa, *pb;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		a = hl_hugetlb_memfd("A", HL_2M, NA * HL_2M);
		b = hl_hugetlb_memfd("B", HL_2M, NB * HL_2M);
		pa = a < 0 ? NULL : hl_map(a, NA * HL_2M);
		pb = b < 0 ? NULL : hl_map(b, NB * HL_2M);
		if (!pa || !pb)
			hl_bail("hugetlb memfds: %s", strerror(errno));
		hl_pattern_fill(pa, NA * HL_2M, 0, 0xa);
		hl_pattern_fill(pb, NB * HL_2M, 0, 0xb);
		sess = hl_luo_create_session(luo, "unretrieved");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve A (8 pages)");
		hl_success(hl_luo_preserve_fd(sess, b, 2), errno, "preserve B (16 pages)");
		pool_is("gen0 after preserve", N, N - NA - NB);
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	pool_is("before retrieve", N - NA - NB, N - NA - NB);
	sess = hl_luo_retrieve_session(luo, "unretrieved");
	a = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 1);
	if (a < 0)
		hl_bail("retrieve A: %s", strerror(errno));
	pa = hl_map(a, NA * HL_2M);
	hl_ok(pa && hl_pattern_verify(pa, NA * HL_2M, 0, 0xa, NULL), "A verified");
	pool_is("A retrieved, B not", N - NB, N - NA - NB);

	memfree0 = hl_meminfo("MemFree");
	hl_success(hl_luo_finish(sess), errno, "finish with B never retrieved");
	close(sess);
	memfree1 = hl_meminfo("MemFree");
	pool_is("after finish: B's pages are free pool pages", N, N - NA);
	hl_ok(memfree1 - memfree0 < 1024,
	      "B's pages went to the hugetlb pool, not to MemFree (+%lld kB)",
	      memfree1 - memfree0);
	/* The released pages are usable: allocate all free pages. */
	b = hl_hugetlb_memfd("again", HL_2M, (N - NA) * HL_2M);
	pb = b < 0 ? NULL : hl_map(b, (N - NA) * HL_2M);
	if (pb) {
		hl_pattern_fill(pb, (N - NA) * HL_2M, 0, 0xc);
		hl_ok(hl_pattern_verify(pb, (N - NA) * HL_2M, 0, 0xc, NULL),
		      "all %d free pages usable", N - NA);
		munmap(pb, (N - NA) * HL_2M);
	} else {
		hl_ok(false, "map %d free pages: %s", N - NA, strerror(errno));
	}
	close(b);
	munmap(pa, NA * HL_2M);
	close(a);
	pool_is("after close", N, N);
	return hl_exit();
}
