// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=4096 timeout=600 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=160"
 *
 * 64 hugetlb files in 4 sessions, 2 MiB and 1 GiB pages mixed: 63 files of
 * one to three 2 MiB pages each (126 pages) and one 1 GiB file, spread
 * round-robin over the sessions. Every file has its own seed; after the
 * update every file is retrieved from its session and verified, the
 * sessions are finished and the pool is checked.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define NFILES	64
#define NSESS	4
#define NR_2M	160
#define BIG	63	/* the 1 GiB file */

static unsigned long long fsize(int i)
{
	return i == BIG ? HL_1G : (unsigned long long)(i % 3 + 1) * HL_2M;
}

static unsigned long long hsize(int i)
{
	return i == BIG ? HL_1G : HL_2M;
}

static uint64_t seed(int i) { return 0x6d616e79ULL * 1000 + (uint64_t)i; }

int main(void)
{
	int luo = hl_luo_open(), sess[NSESS], fd;
	char name[32];
	int bad = 0, in_2m = 0;
	struct hl_pool p2, p1;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	for (int i = 0; i < NFILES; i++)
		in_2m += i == BIG ? 0 : (int)(fsize(i) / HL_2M);

	if (hl_gen() == 0) {
		for (int s = 0; s < NSESS; s++) {
			snprintf(name, sizeof(name), "many-%d", s);
			sess[s] = hl_luo_create_session(luo, name);
			if (sess[s] < 0)
				hl_bail("create session %s: %s", name, strerror(errno));
		}
		for (int i = 0; i < NFILES; i++) {
			uint8_t *p;

			snprintf(name, sizeof(name), "many-%d", i);
			fd = hl_hugetlb_memfd(name, hsize(i), fsize(i));
			p = fd < 0 ? NULL : hl_map(fd, fsize(i));
			if (!p)
				hl_bail("file %d: %s", i, strerror(errno));
			hl_pattern_fill(p, fsize(i), 0, seed(i));
			munmap(p, fsize(i));
			if (hl_luo_preserve_fd(sess[i % NSESS], fd, 100 + i)) {
				hl_ok(false, "preserve file %d: %s", i, strerror(errno));
				bad++;
			}
			close(fd);	/* the session holds the file */
		}
		hl_ok(bad == 0, "%d files (%d x 2M pages + one 1G page) preserved in %d sessions",
		      NFILES, in_2m, NSESS);
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	hl_ok(p2.nr == NR_2M - in_2m && p1.nr == 0,
	      "before retrieve: 2M nr %lld (want %d), 1G nr %lld (want 0)",
	      p2.nr, NR_2M - in_2m, p1.nr);
	for (int s = 0; s < NSESS; s++) {
		snprintf(name, sizeof(name), "many-%d", s);
		sess[s] = hl_luo_retrieve_session(luo, name);
		if (sess[s] < 0)
			hl_bail("retrieve session %s: %s", name, strerror(errno));
	}
	for (int i = 0; i < NFILES; i++) {
		struct hl_mismatch m;
		uint8_t *p;

		fd = hl_luo_retrieve_fd(sess[i % NSESS], 100 + i);
		p = fd < 0 ? NULL : hl_map(fd, fsize(i));
		if (!p || hl_fd_size(fd) != (long long)fsize(i) ||
		    !hl_pattern_verify(p, fsize(i), 0, seed(i), &m)) {
			hl_ok(false, "file %d: %s", i, p ? "contents or size differ" : strerror(errno));
			bad++;
		}
		if (p)
			munmap(p, fsize(i));
		close(fd);	/* the session keeps it until finish */
	}
	hl_ok(bad == 0, "all %d files retrieved from %d sessions and verified", NFILES, NSESS);
	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	hl_ok(p2.nr == NR_2M && p2.free == NR_2M - in_2m && p1.nr == 1 && p1.free == 0,
	      "after retrieve: 2M nr %lld free %lld, 1G nr %lld free %lld",
	      p2.nr, p2.free, p1.nr, p1.free);
	for (int s = 0; s < NSESS; s++) {
		hl_success(hl_luo_finish(sess[s]), errno, "finish session %d", s);
		close(sess[s]);
	}
	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	hl_ok(p2.nr == NR_2M && p2.free == NR_2M && p1.nr == 1 && p1.free == 1,
	      "after finish and close: every page free (2M %lld/%lld, 1G %lld/%lld)",
	      p2.free, p2.nr, p1.free, p1.nr);
	return hl_exit();
}
