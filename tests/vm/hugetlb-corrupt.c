// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * Records from the previous kernel are checked before they are trusted, and
 * the pages of a bad one are never handed out. Needs the debug kernel's
 * CONFIG_LIVEUPDATE_HUGETLB_TEST_CORRUPT knob, hugetlb/liveupdate/corrupt_next.
 *
 * gen 0: four files in one session. A (600 pages of size, 3 present): its
 *        nr_folios is made one larger than its page array can hold. B (4
 *        pages): its last entry gets an index beyond the file's size. C (2
 *        pages): its size is made larger than MAX_LFS_FILESIZE. D (2
 *        pages) is good. kexec.
 * gen 1: A, B and C are refused with EINVAL (A and C also on a second
 *        try), without a kernel warning or crash; D arrives intact. After
 *        finish (C never retrieved) no page of A, B or C is in the pool
 *        (hugepages=64: 64 - 11 at boot, + 2 for D), none was released to
 *        it, and the stats count 3 leaked files and B's 4 pages (the only
 *        page array that could be read).
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define KNOB	HL_LUO_DEBUGFS "/corrupt_next"

static int make_file(const char *name, int pages, int present, uint64_t seed)
{
	int fd = hl_hugetlb_memfd(name, HL_2M, (unsigned long long)pages * HL_2M);
	uint8_t *p;

	if (fd < 0)
		hl_bail("memfd %s: %s", name, strerror(errno));
	p = hl_map(fd, (size_t)present * HL_2M);
	if (!p)
		hl_bail("mmap %s: %s", name, strerror(errno));
	hl_pattern_fill(p, (size_t)present * HL_2M, 0, seed);
	munmap(p, (size_t)present * HL_2M);
	return fd;
}

static void preserve_corrupt(int sess, int fd, uint64_t tok, const char *kind)
{
	hl_success(hl_write_str(KNOB, kind), errno, "knob: corrupt %s of the next file",
		   kind);
	hl_success(hl_luo_preserve_fd(sess, fd, tok), errno,
		   "preserve file %llu (%s to be corrupted)",
		   (unsigned long long)tok, kind);
}

int main(void)
{
	int luo = hl_luo_open(), sess, a, b, c, d;
	long long nr0;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		sess = hl_luo_create_session(luo, "corrupt");
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));
		a = make_file("A", 600, 3, 0xa);
		b = make_file("B", 4, 4, 0xb);
		c = make_file("C", 2, 2, 0xc);
		d = make_file("D", 2, 2, 0xd);
		preserve_corrupt(sess, a, 1, "nr_folios");
		preserve_corrupt(sess, b, 2, "index");
		preserve_corrupt(sess, c, 3, "size");
		hl_success(hl_luo_preserve_fd(sess, d, 4), errno, "preserve D (good)");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	nr0 = hl_hp(HL_2M, "nr_hugepages");
	hl_ok(nr0 == 64 - 11, "boot pool: %lld pages (64 - 11 preserved)", nr0);
	sess = hl_luo_retrieve_session(luo, "corrupt");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));

	hl_errno(hl_luo_retrieve_fd(sess, 1), errno, EINVAL,
		 "A: nr_folios beyond its page array refused");
	hl_errno(hl_luo_retrieve_fd(sess, 1), errno, EINVAL, "A: again");
	hl_errno(hl_luo_retrieve_fd(sess, 2), errno, EINVAL,
		 "B: an index beyond the file refused");
	hl_errno(hl_luo_retrieve_fd(sess, 3), errno, EINVAL,
		 "C: size beyond MAX_LFS_FILESIZE refused");
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == nr0,
	      "no page of A, B, C joined the pool (nr %lld)",
	      hl_hp(HL_2M, "nr_hugepages"));

	d = hl_luo_retrieve_fd(sess, 4);
	hl_success(d, errno, "D retrieved");
	p = d < 0 ? NULL : hl_map(d, 2 * HL_2M);
	hl_ok(p && hl_pattern_verify(p, 2 * HL_2M, 0, 0xd, NULL), "D intact");

	hl_success(hl_luo_finish(sess), errno, "finish (C never retrieved)");
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == nr0 + 2,
	      "pool: %lld pages, only D's 2 joined (want %lld)",
	      hl_hp(HL_2M, "nr_hugepages"), nr0 + 2);
	hl_ok(hl_luo_stat("released_folios") == 0,
	      "nothing released to the free pool (stats: %lld)",
	      hl_luo_stat("released_folios"));
	hl_ok(hl_luo_stat("leaked_files") == 3 && hl_luo_stat("leaked_folios") == 4,
	      "stats: %lld files leaked (want 3), %lld pages counted (want 4)",
	      hl_luo_stat("leaked_files"), hl_luo_stat("leaked_folios"));
	hl_ok(hl_luo_stat("restored_folios") == 2,
	      "only D's 2 pages restored (stats: %lld)",
	      hl_luo_stat("restored_folios"));
	return hl_exit();
}
