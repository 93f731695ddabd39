// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=6144 timeout=600 kernels="debug stock stock" cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * Forced into a kernel that cannot take the memory (issue 10 item 4): no
 * agent, no preflight, raw LUO ioctls. Generation 0 (debug kernel, with the
 * hugetlb handler) preserves 8 pages of 2 MiB and the 1 GiB page in one
 * session and a 16 MiB shmem memfd in another, and kexecs with
 * kexec_file_load into stock 7.3, which has no hugetlb handler.
 *
 * Generation 1 (stock) must:
 *   - boot and not crash (the harness fails on any BUG, WARNING or Oops);
 *   - say why it cannot take the sessions: "No registered handler for
 *     compatible 'hugetlb-memfd-v1'" in its log, and /dev/liveupdate
 *     refuses every open with EIO (stock LUO gives up on all incoming
 *     sessions, the shmem one included: what hugelivectl's preflight
 *     protects against);
 *   - not hand the preserved pages to anyone: KHO keeps them reserved, so
 *     MemTotal is lower than in generation 2 (the same stock kernel, booted
 *     with nothing preserved) by the size preserved, 1 GiB + 16 MiB + 16 MiB
 *     (within 8 MiB);
 *   - have the pools its command line asks for (64 x 2 MiB, 1 x 1 GiB),
 *     every page free and usable (a file of all of them is written and
 *     read back).
 * (With 4 GiB of RAM, stock could not allocate its boot-time 1 GiB page
 * beside the one held back: mem=6144 leaves room for both.)
 * Generation 1 preserves nothing and kexecs into stock again; generation 2
 * checks the pools again and reports the MemTotal difference.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <sys/klog.h>

#define N2M	64
#define NA	8
#define SHM	(16ULL << 20)
#define PRESERVED_KB	((long long)((NA * HL_2M + HL_1G + SHM) >> 10))
#define SLACK_KB	(8LL << 10)

static void preserve_and_kexec(void)
{
	int luo = hl_luo_open(), s1, s2, a, g, m;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	a = hl_filled_hugetlb("a", HL_2M, NA * HL_2M, 0x5a);
	g = hl_filled_hugetlb("g", HL_1G, HL_1G, 0x59);
	m = hl_memfd("m", SHM, 0);
	p = m < 0 ? NULL : hl_map(m, SHM);
	if (!p)
		hl_bail("memfd m: %s", strerror(errno));
	hl_pattern_fill(p, SHM, 0, 0x4d);
	s1 = hl_luo_create_session(luo, "into-stock-hugetlb");
	s2 = hl_luo_create_session(luo, "into-stock-shmem");
	hl_success(hl_luo_preserve_fd(s1, a, 1), errno, "preserve 8 pages of 2 MiB");
	hl_success(hl_luo_preserve_fd(s1, g, 2), errno, "preserve the 1 GiB page");
	hl_success(hl_luo_preserve_fd(s2, m, 1), errno, "preserve a 16 MiB shmem memfd (another session)");
	if (hl_failures())
		exit(hl_exit());
	hl_diag("kexec into %s with the hugetlb handler's files: nothing stops it", getenv("HUGELIVE_KERNEL"));
	hl_kexec_next_generation(NULL);
	exit(hl_exit());
}

static bool log_has(const char *needle)
{
	static char buf[1 << 20];
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof(buf) - 1);

	if (n < 0)
		return false;
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

int main(void)
{
	const char *lh = hl_kconfig("LIVEUPDATE_HUGETLB");
	struct hl_pool p2, p1;
	long long mt = hl_meminfo("MemTotal");
	char arg[64];
	int luo;

	if (hl_gen() == 0) {
		hl_ok(lh && !strcmp(lh, "y"), "gen 0 runs a kernel with the hugetlb handler");
		preserve_and_kexec();
	}
	hl_ok(!lh, "gen %d runs stock 7.3: no CONFIG_LIVEUPDATE_HUGETLB", hl_gen());
	luo = hl_luo_open();
	if (hl_gen() == 1) {
		hl_ok(luo < 0 && errno == EIO, "LUO refuses the incoming sessions, the shmem one too (open: %s)",
		      luo < 0 ? strerror(errno) : "succeeded");
		/* LUO reads the sessions on the first open */
		hl_ok(log_has("No registered handler for compatible 'hugetlb-memfd-v1'"),
		      "the kernel log says it has no handler for 'hugetlb-memfd-v1'");
	}
	else
		hl_ok(luo >= 0, "gen 2: /dev/liveupdate opens (nothing was preserved into it: %s)",
		      luo < 0 ? strerror(errno) : "ok");
	p2 = hl_pool_get(HL_2M);
	p1 = hl_pool_get(HL_1G);
	hl_ok(p2.nr == N2M && p2.free == N2M, "2 MiB pool nr %lld free %lld (want %d %d, as hugepages= asks)",
	      p2.nr, p2.free, N2M, N2M);
	hl_ok(p1.nr == 1 && p1.free == 1, "1 GiB pool nr %lld free %lld (want 1 1)", p1.nr, p1.free);
	hl_use_all_pages(HL_2M, p2.nr > 0 ? p2.nr : 1, "2 MiB");
	hl_use_all_pages(HL_1G, p1.nr > 0 ? p1.nr : 1, "1 GiB");
	if (hl_gen() == 1) {
		hl_diag("MemTotal %lld kB with the preserved memory held back", mt);
		snprintf(arg, sizeof(arg), "hugelive.memtotal1=%lld", mt);
		if (luo >= 0)
			close(luo);
		hl_kexec_next_generation_with(NULL, arg);
		return hl_exit();
	}
	{
		long long mt1 = hl_param_ll("memtotal1", -1), d = mt - mt1;

		hl_ok(mt1 > 0 && d >= PRESERVED_KB - SLACK_KB && d <= PRESERVED_KB + SLACK_KB,
		      "gen 1 held the preserved memory back: MemTotal %lld kB there, %lld kB here, %lld kB apart "
		      "(preserved %lld kB, within %lld kB)", mt1, mt, d, PRESERVED_KB, SLACK_KB);
	}
	return hl_exit();
}
