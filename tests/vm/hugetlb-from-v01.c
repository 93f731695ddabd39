// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=3072 timeout=600 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64 hugetlb_luo_test=write-v1"
 *
 * What the first release (v0.1, commit f41e0f1) wrote is read by this
 * kernel: the pool table "hugetlb-pool-v1" (64 fixed entries, no handler
 * name, its own FLB name) and "hugetlb-memfd-v1" records without the mode
 * and the record size added since. Generation 0 writes exactly those with
 * the debug kernel's test knob hugetlb_luo_test=write-v1 (this kernel, not
 * a v0.1 build: the formats, not the old code, are what the next kernel
 * sees); generation 1 is this kernel as it is.
 *
 * gen 0: 8 pages of 2 MiB (mode 0640) and the 1 GiB page, patterned and
 *        preserved; the outgoing KHO subtree is hugetlb-pool-v1, not -v2.
 * gen 1: the incoming subtree is hugetlb-pool-v1; the pool rule holds with
 *        it (2 MiB: 64 - 8 before retrieve, 1 GiB: 0), both files come back
 *        word for word with the mode of the first release (0777: its
 *        records carry none), the pools are at 64 and 1 after retrieve and
 *        free again after finish and close. Finishing the files must not
 *        warn (LUO found no "hugetlb-pool-v2" FLB for them): the harness
 *        fails the run on any WARNING.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <sys/stat.h>

#define N2M	64
#define NA	8
#define KHO	"/sys/kernel/debug/kho"

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static mode_t mode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? (mode_t)-1 : (st.st_mode & 07777);
}

static void gen0(void)
{
	int luo = hl_luo_open(), sess, a, g;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	a = hl_filled_hugetlb("a", HL_2M, NA * HL_2M, 0xa1);
	hl_success(fchmod(a, 0640), errno, "chmod 0640");
	g = hl_filled_hugetlb("g", HL_1G, HL_1G, 0x91);
	sess = hl_luo_create_session(luo, "from-v01");
	hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve 8 pages of 2 MiB");
	hl_success(hl_luo_preserve_fd(sess, g, 2), errno, "preserve the 1 GiB page");
	hl_ok(exists(KHO "/out/sub_fdts/hugetlb-pool-v1") &&
	      !exists(KHO "/out/sub_fdts/hugetlb-pool-v2"),
	      "the outgoing pool table is hugetlb-pool-v1 (test knob)");
	if (hl_failures())
		exit(hl_exit());
	hl_kexec_next_generation_with(NULL, "hugetlb_luo_test=none");
	exit(hl_exit());
}

static void check_file(int sess, uint64_t tok, unsigned long long hsize,
		       size_t sz, uint64_t seed, const char *what)
{
	int fd = hl_luo_retrieve_fd(sess, tok);
	uint8_t *p = fd < 0 ? NULL : hl_map(fd, sz);
	struct hl_mismatch m = { 0 };
	bool same;

	hl_ok(fd >= 0, "%s retrieved (%s)", what, fd < 0 ? strerror(errno) : "ok");
	if (!p)
		return;
	same = hl_pattern_verify(p, sz, 0, seed, &m);
	hl_ok(same, "%s: every word as written (first bad offset 0x%llx)", what,
	      (unsigned long long)m.offset);
	hl_ok(mode_of(fd) == 0777, "%s: mode 0%o, the first release's 0777",
	      what, mode_of(fd));
	hl_ok(hl_hp(hsize, "resv_hugepages") == 0 && hl_hp(hsize, "surplus_hugepages") == 0,
	      "%s: no reservation or surplus left (resv %lld, surplus %lld)", what,
	      hl_hp(hsize, "resv_hugepages"), hl_hp(hsize, "surplus_hugepages"));
	munmap(p, sz);
	close(fd);
}

static void gen1(void)
{
	int luo = hl_luo_open(), sess;

	hl_ok(exists(KHO "/in/sub_fdts/hugetlb-pool-v1") &&
	      !exists(KHO "/in/sub_fdts/hugetlb-pool-v2"),
	      "the incoming pool table is hugetlb-pool-v1");
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == N2M - NA &&
	      hl_hp(HL_1G, "nr_hugepages") == 0,
	      "pool rule with the v1 table: 2 MiB %lld (want %d), 1 GiB %lld (want 0)",
	      hl_hp(HL_2M, "nr_hugepages"), N2M - NA, hl_hp(HL_1G, "nr_hugepages"));

	sess = luo < 0 ? -1 : hl_luo_retrieve_session(luo, "from-v01");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));
	check_file(sess, 1, HL_2M, NA * HL_2M, 0xa1, "2 MiB file");
	check_file(sess, 2, HL_1G, HL_1G, 0x91, "1 GiB file");
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == N2M && hl_hp(HL_1G, "nr_hugepages") == 1,
	      "after retrieve: 2 MiB nr %lld (want %d), 1 GiB nr %lld (want 1)",
	      hl_hp(HL_2M, "nr_hugepages"), N2M, hl_hp(HL_1G, "nr_hugepages"));
	hl_ok(hl_luo_stat("restored_folios") == NA + 1 &&
	      hl_luo_stat("leaked_files") == 0,
	      "stats: %lld restored (want %d), %lld files leaked",
	      hl_luo_stat("restored_folios"), NA + 1, hl_luo_stat("leaked_files"));
	hl_success(hl_luo_finish(sess), errno, "finish");
}

static void gen1_after(void)
{
	hl_ok(hl_hp(HL_2M, "free_hugepages") == N2M && hl_hp(HL_1G, "free_hugepages") == 1,
	      "after close: 2 MiB free %lld (want %d), 1 GiB free %lld (want 1)",
	      hl_hp(HL_2M, "free_hugepages"), N2M, hl_hp(HL_1G, "free_hugepages"));
}

int main(void)
{
	if (hl_gen() == 0)
		gen0();
	gen1();
	gen1_after();
	return hl_exit();
}
