// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=8 mem=6144 timeout=900 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * Preserved pages count towards the next kernel's hugepages=N only if that
 * kernel takes them. Whenever it cannot, its pools must end at N, and those
 * N pages must be usable. Four cases, each preserved in one generation
 * (8 pages of 2 MiB and the 1 GiB page) and checked in the next one:
 *
 *   gen 1: liveupdate=off
 *   gen 3: kho=off (LUO turns itself off; the pool table is still readable
 *          early, when the 1 GiB pool is allocated)
 *   gen 5: hugetlb_luo_test=other-version (test knob, debug kernel: the
 *          handler is of another version; LUO cannot restore the session)
 *   gen 7: hugetlb_luo_test=absent (test knob: the handler does not
 *          register; the pages lent at boot are allocated late instead)
 *
 * In each checked generation: both pools at N with every page free, then
 * files using every page of both pools written and verified.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define N2M	64
#define NA	8

static const char *const next_cmdline[] = {
	"liveupdate=off",
	"liveupdate=on",
	"kho=off",
	"kho=on",
	"hugetlb_luo_test=other-version",
	"hugetlb_luo_test=none",
	"hugetlb_luo_test=absent",
};

static const char *const cases[] = {
	NULL, "liveupdate=off", NULL, "kho=off", NULL,
	"handler of another version", NULL, "handler absent",
};

static void preserve_and_kexec(void)
{
	int luo = hl_luo_open(), sess, a, g;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	a = hl_filled_hugetlb("a", HL_2M, NA * HL_2M, 0xa + hl_gen());
	g = hl_filled_hugetlb("g", HL_1G, HL_1G, 0x9 + hl_gen());
	sess = hl_luo_create_session(luo, "untaken");
	hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve 8 pages of 2 MiB");
	hl_success(hl_luo_preserve_fd(sess, g, 2), errno, "preserve the 1 GiB page");
	if (hl_failures())
		exit(hl_exit());
	hl_kexec_next_generation_with(NULL, next_cmdline[hl_gen()]);
	exit(hl_exit());
}

int main(void)
{
	const char *c = cases[hl_gen()];
	struct hl_pool p2, p1;

	if (!c)
		preserve_and_kexec();

	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	hl_ok(p2.nr == N2M && p2.free == N2M,
	      "%s: 2 MiB pool nr %lld free %lld (want %d %d)", c, p2.nr, p2.free,
	      N2M, N2M);
	hl_ok(p1.nr == 1 && p1.free == 1,
	      "%s: 1 GiB pool nr %lld free %lld (want 1 1)", c, p1.nr, p1.free);
	if (hl_gen() == 5) {
		/* LUO cannot deserialize a file without its handler. */
		int luo = hl_luo_open();

		hl_ok(luo < 0 && errno == EIO,
		      "%s: LUO refuses the incoming sessions (open: %s)", c,
		      luo < 0 ? strerror(errno) : "succeeded");
		if (luo >= 0)
			close(luo);
	}
	hl_use_all_pages(HL_2M, p2.nr > 0 ? p2.nr : 1, "2 MiB");
	hl_use_all_pages(HL_1G, p1.nr > 0 ? p1.nr : 1, "1 GiB");
	if (hl_last_gen())
		return hl_exit();
	if (hl_failures())
		return hl_exit();
	hl_kexec_next_generation_with(NULL, next_cmdline[hl_gen()]);
	return hl_exit();
}
