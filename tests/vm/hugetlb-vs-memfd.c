// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 timeout=400 cmdline="hugepagesz=2M hugepages=260"
 *
 * The same 512 MiB carried twice in one VM run: in a stock memfd (4 KiB
 * pages, upstream memfd-v2 handler) and in a hugetlb memfd (2 MiB pages).
 * Reports PRESERVE_FD and RETRIEVE_FD times of both (TCG times: only their
 * ratio means something) and the metadata handed over; asserts only that
 * both arrive intact. The timing lines are "report:" lines, not checks.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <time.h>

#define SIZE	(512ULL << 20)

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(void)
{
	int luo = hl_luo_open(), sess, mfd, hfd;
	struct timespec t0;
	double tm, th;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		mfd = hl_memfd("stock", SIZE, 0);
		hfd = hl_hugetlb_memfd("huge", HL_2M, SIZE);
		if (mfd < 0 || hfd < 0)
			hl_bail("memfds: %s", strerror(errno));
		p = hl_map(mfd, SIZE);
		hl_pattern_fill(p, SIZE, 0, 0x4b);
		munmap(p, SIZE);
		p = hl_map(hfd, SIZE);
		hl_pattern_fill(p, SIZE, 0, 0x2b);
		munmap(p, SIZE);
		sess = hl_luo_create_session(luo, "vs");

		clock_gettime(CLOCK_MONOTONIC, &t0);
		hl_success(hl_luo_preserve_fd(sess, mfd, 1), errno, "preserve 512 MiB memfd");
		tm = ms_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		hl_success(hl_luo_preserve_fd(sess, hfd, 2), errno, "preserve 512 MiB hugetlb 2M");
		th = ms_since(&t0);
		hl_report("preserve 512 MiB: memfd 4K %.2f ms, hugetlb 2M %.3f ms, ratio %.0fx",
			  tm, th, tm / th);
		hl_report("metadata handed over: memfd 4K %llu bytes (131072 folios x 16 B + 40 B header), hugetlb 2M %lld bytes (256 pages; stats incl. 1032 B pool table)",
			  131072ULL * 16 + 40, hl_luo_stat("metadata_bytes"));
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "vs");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	mfd = hl_luo_retrieve_fd(sess, 1);
	tm = ms_since(&t0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	hfd = hl_luo_retrieve_fd(sess, 2);
	th = ms_since(&t0);
	hl_ok(mfd >= 0 && hfd >= 0, "both retrieved");
	hl_report("retrieve 512 MiB: memfd 4K %.2f ms, hugetlb 2M %.3f ms, ratio %.0fx",
		  tm, th, tm / th);
	p = hl_map(mfd, SIZE);
	hl_ok(p && hl_pattern_verify(p, SIZE, 0, 0x4b, NULL), "memfd verified");
	p = hl_map(hfd, SIZE);
	hl_ok(p && hl_pattern_verify(p, SIZE, 0, 0x2b, NULL), "hugetlb verified");
	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
