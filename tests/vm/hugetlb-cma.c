// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=1 mem=6144 timeout=300 cmdline="hugetlb_cma=1G kho_scratch=64M,128M,64M hugepagesz=2M hugepages=16"
 *
 * Pages from hugetlb CMA cannot be preserved: with hugetlb_cma=1G, a 1 GiB
 * page allocated at run time comes from the CMA area, and preserving a
 * file that holds it must fail with EOPNOTSUPP, never corrupt anything:
 * the file stays usable with its contents, nothing stays frozen, and a
 * file of ordinary 2 MiB pages in the same session is still accepted.
 *
 * KHO sizes its scratch areas from the memory reserved at boot, which here
 * includes the 1 GiB CMA area, and then fails to reserve them ("Failed to
 * reserve nid 0 scratch buffer", KHO and LUO disabled); kho_scratch= with
 * fixed sizes avoids that.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

int main(void)
{
	int luo = hl_luo_open(), sess, fd, fd2;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));
	if (hl_write_str("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "1"))
		hl_bail("allocate a 1 GiB page at run time: %s", strerror(errno));
	hl_ok(hl_hp(HL_1G, "nr_hugepages") == 1, "one 1 GiB page allocated (from hugetlb CMA)");

	fd = hl_hugetlb_memfd("cma", HL_1G, HL_1G);
	p = fd < 0 ? NULL : hl_map(fd, HL_1G);
	if (!p)
		hl_bail("1 GiB memfd: %s", strerror(errno));
	hl_pattern_fill(p, HL_1G, 0, 0xc3a);

	sess = hl_luo_create_session(luo, "cma");
	hl_errno(hl_luo_preserve_fd(sess, fd, 1), errno, EOPNOTSUPP,
		 "preserving a hugetlb CMA page is refused");
	hl_ok(hl_pattern_verify(p, HL_1G, 0, 0xc3a, NULL), "contents intact after refusal");
	hl_ok(hl_luo_stat("preserved_folios") == 0, "nothing left preserved (stats %lld)",
	      hl_luo_stat("preserved_folios"));
	munmap(p, HL_1G);
	hl_success(ftruncate(fd, 0), errno, "file not frozen after refusal");
	hl_ok(hl_hp(HL_1G, "free_hugepages") == 1, "1 GiB page back in the pool");

	fd2 = hl_hugetlb_memfd("plain", HL_2M, 4 * HL_2M);
	p = fd2 < 0 ? NULL : hl_map(fd2, 4 * HL_2M);
	if (p)
		hl_pattern_fill(p, 4 * HL_2M, 0, 1);
	hl_success(hl_luo_preserve_fd(sess, fd2, 2), errno,
		   "2 MiB pages in the same session are accepted");
	close(sess);
	return hl_exit();
}
