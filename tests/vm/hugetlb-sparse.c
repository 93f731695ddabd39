// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * A sparse hugetlb file: 64 pages of size, 6 present. Holes stay holes:
 * preserving allocates nothing, the next kernel's pool lends exactly 6 pages
 * to the file, read() of a hole returns zeros without allocating, and
 * mapping the file reserves exactly the holes.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define NP	64
#define SIZE	(NP * HL_2M)
#define TOK	0x5350ULL
static const int present[] = { 0, 3, 17, 18, 40, 63 };
#define NPRESENT ((int)(sizeof(present) / sizeof(present[0])))

int main(void)
{
	int luo = hl_luo_open(), sess, fd;
	struct hl_pool pl;
	uint8_t *p, *buf;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		fd = hl_hugetlb_memfd("sparse", HL_2M, SIZE);
		if (fd < 0)
			hl_bail("hugetlb memfd: %s", strerror(errno));
		/*
		 * Map only the pages to fill: a shared mapping of the whole
		 * file would reserve its holes for as long as the file lives.
		 */
		for (int i = 0; i < NPRESENT; i++) {
			p = mmap(NULL, HL_2M, PROT_READ | PROT_WRITE, MAP_SHARED,
				 fd, (off_t)present[i] * HL_2M);
			if (p == MAP_FAILED)
				hl_bail("mmap page %d: %s", present[i], strerror(errno));
			hl_pattern_fill(p, HL_2M, present[i] * HL_2M,
					0x5000 + present[i]);
			munmap(p, HL_2M);
		}
		pl = hl_pool_get(HL_2M);
		hl_ok(pl.nr - pl.free == NPRESENT && pl.resv == 0,
		      "%d of %d pages present (in use %lld, resv %lld)",
		      NPRESENT, NP, pl.nr - pl.free, pl.resv);
		sess = hl_luo_create_session(luo, "sparse");
		hl_success(hl_luo_preserve_fd(sess, fd, TOK), errno, "preserve sparse file");
		pl = hl_pool_get(HL_2M);
		hl_ok(pl.nr - pl.free == NPRESENT,
		      "preserve filled no hole (in use %lld)", pl.nr - pl.free);
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	pl = hl_pool_get(HL_2M);
	hl_ok(pl.nr == NP - NPRESENT && pl.free == NP - NPRESENT,
	      "before retrieve the pool holds hugepages=%d minus %d preserved (nr %lld free %lld)",
	      NP, NPRESENT, pl.nr, pl.free);
	sess = hl_luo_retrieve_session(luo, "sparse");
	fd = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, TOK);
	if (fd < 0)
		hl_bail("retrieve: %s", strerror(errno));
	pl = hl_pool_get(HL_2M);
	hl_ok(pl.nr == NP && pl.free == NP - NPRESENT && pl.resv == 0,
	      "after retrieve: nr %lld free %lld resv %lld (memory used = %d present pages)",
	      pl.nr, pl.free, pl.resv, NPRESENT);
	hl_ok(hl_fd_size(fd) == (long long)SIZE, "size %lld", hl_fd_size(fd));

	/* read() every page: present ones verify, holes are zero. */
	buf = malloc(HL_2M);
	if (!buf)
		hl_bail("malloc");
	{
		int bad = 0, zero_ok = 1;

		for (int i = 0; i < NP; i++) {
			bool is_present = false;

			for (int j = 0; j < NPRESENT; j++)
				is_present |= present[j] == i;
			if (pread(fd, buf, HL_2M, (off_t)i * HL_2M) != (ssize_t)HL_2M) {
				bad++;
				continue;
			}
			if (is_present) {
				if (!hl_pattern_verify(buf, HL_2M, i * HL_2M, 0x5000 + i, NULL))
					bad++;
			} else {
				for (size_t k = 0; k < HL_2M; k += 4096)
					zero_ok &= buf[k] == 0 && buf[k + 4095] == 0;
			}
		}
		hl_ok(bad == 0, "the %d present pages verified (%d bad)", NPRESENT, bad);
		hl_ok(zero_ok, "holes read as zeros");
	}
	pl = hl_pool_get(HL_2M);
	hl_ok(pl.nr - pl.free == NPRESENT, "reading holes allocated nothing (in use %lld)",
	      pl.nr - pl.free);

	p = hl_map(fd, SIZE);
	pl = hl_pool_get(HL_2M);
	hl_ok(p && pl.resv == NP - NPRESENT,
	      "mmap reserves exactly the %d holes (resv %lld)", NP - NPRESENT, pl.resv);
	if (p)
		munmap(p, SIZE);
	hl_success(hl_luo_finish(sess), errno, "finish");
	close(sess);
	close(fd);	/* drops the file and with it the hole reservations */
	pl = hl_pool_get(HL_2M);
	hl_ok(pl.nr == NP && pl.free == NP && pl.resv == 0,
	      "after close: nr %lld free %lld resv %lld", pl.nr, pl.free, pl.resv);
	return hl_exit();
}
