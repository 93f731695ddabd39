// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=4096 timeout=600 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=1024"
 *
 * A full pool after a live update can be preserved again. In a kernel
 * reached by kexec, KHO scratch memory is CMA and already in use when the
 * boot-time pool is allocated; preserving pins pages, and pinning a page in
 * CMA needs a free huge page to migrate it to, which a full pool does not
 * have. The pool must therefore be allocated outside CMA.
 *
 * gen 0: 8 of 64 pages preserved. gen 1: they are retrieved; a second file
 *        takes all 56 pages the new kernel allocated at boot; both are
 *        preserved with no free page left. gen 2: both verified.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define N	1024
#define NA	8
#define NB	(N - NA)

int main(void)
{
	int luo = hl_luo_open(), sess, a, b;
	uint8_t *pa, *pb;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		a = hl_hugetlb_memfd("A", HL_2M, NA * HL_2M);
		pa = a < 0 ? NULL : hl_map(a, NA * HL_2M);
		if (!pa)
			hl_bail("memfd A: %s", strerror(errno));
		hl_pattern_fill(pa, NA * HL_2M, 0, 0xa0);
		sess = hl_luo_create_session(luo, "represerve");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve A (8 pages)");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "represerve");
	a = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 1);
	pa = a < 0 ? NULL : hl_map(a, NA * HL_2M);
	hl_ok(pa && hl_pattern_verify(pa, NA * HL_2M, 0, 0xa0, NULL), "A verified");

	if (hl_gen() == 2) {
		b = hl_luo_retrieve_fd(sess, 2);
		pb = b < 0 ? NULL : hl_map(b, NB * HL_2M);
		hl_ok(pb && hl_pattern_verify(pb, NB * HL_2M, 0, 0xb1, NULL),
		      "B (the pages allocated at boot of gen 1) verified");
		hl_success(hl_luo_finish(sess), errno, "finish");
		return hl_exit();
	}

	hl_success(hl_luo_finish(sess), errno, "finish");
	close(sess);
	b = hl_hugetlb_memfd("B", HL_2M, NB * HL_2M);
	pb = b < 0 ? NULL : hl_map(b, NB * HL_2M);
	if (!pb)
		hl_bail("memfd B: %s", strerror(errno));
	hl_pattern_fill(pb, NB * HL_2M, 0, 0xb1);
	hl_ok(hl_hp(HL_2M, "free_hugepages") == 0, "pool full: no free page left");
	sess = hl_luo_create_session(luo, "represerve");
	hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve A again");
	hl_success(hl_luo_preserve_fd(sess, b, 2), errno,
		   "preserve B, the pages allocated at this kernel's boot, with a full pool");
	if (hl_failures())
		return hl_exit();
	hl_kexec_next_generation(NULL);
	return hl_exit();
}
