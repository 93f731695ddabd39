// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1536 timeout=400 cmdline="movablecore=640M hugepagesz=2M hugepages=48"
 *
 * Live update must not take ZONE_MOVABLE away from the hugetlb pool. Only
 * the boot-time pool is allocated outside ZONE_MOVABLE and CMA (the pool
 * that a kernel reached by kexec allocates while KHO scratch is CMA); pages
 * added at run time come from ZONE_MOVABLE as on a kernel without live
 * update, and preserving a file that holds them works: pinning migrates
 * them out of ZONE_MOVABLE first, the contents arrive in the next kernel.
 *
 * Both generations, with movablecore=640M and hugepages=48:
 *   - the boot-time pool is not in ZONE_MOVABLE;
 *   - growing the pool by 64 pages at run time takes them from ZONE_MOVABLE
 *     (its free page count drops by 64 huge pages);
 * gen 0: a file of 16 pages faulted in after the growth sits in
 *        ZONE_MOVABLE (pagemap); preserving it succeeds and moves every
 *        page out of ZONE_MOVABLE, contents unchanged;
 * gen 1: the file is retrieved and verified, its pages are where the
 *        previous kernel left them (outside ZONE_MOVABLE).
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <inttypes.h>

#define BOOT	48
#define GROW	64
#define NA	16
#define PER_HP	((long long)(HL_2M / 4096))

struct zone_span {
	unsigned long long start, spanned, free, managed;
	bool found;
};

/* The Movable zone of node 0 from /proc/zoneinfo. */
static struct zone_span movable_zone(void)
{
	struct zone_span z = { 0 };
	char line[256];
	bool in = false;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return z;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (!strncmp(line, "Node ", 5)) {
			in = strstr(line, "zone") && strstr(line, "Movable");
			if (in)
				z.found = true;
			continue;
		}
		if (!in)
			continue;
		if (sscanf(line, " pages free %llu", &v) == 1)
			z.free = v;
		else if (sscanf(line, " spanned %llu", &v) == 1)
			z.spanned = v;
		else if (sscanf(line, " managed %llu", &v) == 1)
			z.managed = v;
		else if (sscanf(line, " start_pfn: %llu", &v) == 1)
			z.start = v;
	}
	fclose(f);
	return z;
}

/* PFN backing addr (mapped and touched), or 0. */
static unsigned long long pfn_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (off_t)((uintptr_t)addr / 4096) * 8;

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), off) != sizeof(e))
		e = 0;
	close(fd);
	if (!(e >> 63))
		return 0;
	return e & ((1ULL << 55) - 1);
}

/* How many of the nr huge pages mapped at p lie in the zone. */
static int pages_in(const struct zone_span *z, const uint8_t *p, int nr)
{
	int i, in = 0;

	for (i = 0; i < nr; i++) {
		unsigned long long pfn = pfn_of(p + (size_t)i * HL_2M);

		if (pfn >= z->start && pfn < z->start + z->spanned)
			in++;
	}
	return in;
}

static void check_pool_zones(void)
{
	struct zone_span z = movable_zone();
	long long before, after, nr = hl_hp(HL_2M, "nr_hugepages");
	char buf[32];

	int fd, in;
	uint8_t *p;

	if (!z.found)
		hl_bail("no Movable zone in /proc/zoneinfo (movablecore= ignored?)");
	hl_diag("Movable zone: start_pfn %llu spanned %llu managed %llu free %llu",
		z.start, z.spanned, z.managed, z.free);
	hl_ok(nr == (hl_gen() ? BOOT - NA : BOOT),
	      "boot-time pool: %lld pages (hugepages=%d minus the preserved ones)", nr, BOOT);
	/* Where the boot-time pages are: a file using all of them. */
	fd = hl_hugetlb_memfd("boot", HL_2M, (size_t)nr * HL_2M);
	p = fd < 0 ? NULL : hl_map(fd, (size_t)nr * HL_2M);
	if (!p)
		hl_bail("memfd of the boot-time pool: %s", strerror(errno));
	memset(p, 1, (size_t)nr * HL_2M);
	in = pages_in(&z, p, (int)nr);
	hl_ok(in == 0, "boot-time pool outside ZONE_MOVABLE (%d of %lld pages in it)", in, nr);
	munmap(p, (size_t)nr * HL_2M);
	close(fd);

	z = movable_zone();
	before = (long long)z.free;
	snprintf(buf, sizeof(buf), "%lld", nr + GROW);
	if (hl_write_str("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", buf))
		hl_bail("grow the pool: %s", strerror(errno));
	hl_ok(hl_hp(HL_2M, "nr_hugepages") == nr + GROW, "pool grown to %lld at run time",
	      nr + GROW);
	z = movable_zone();
	after = (long long)z.free;
	/* Other allocations come and go meanwhile: 90% of the pool's size. */
	hl_ok(before - after >= GROW * PER_HP * 9 / 10,
	      "the %d pages added at run time come from ZONE_MOVABLE (its free pages dropped by %lld, pool pages %lld)",
	      GROW, before - after, GROW * PER_HP);
}

int main(void)
{
	int luo = hl_luo_open(), sess, a;
	struct zone_span z;
	uint8_t *pa;
	int in;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	check_pool_zones();
	z = movable_zone();

	if (hl_gen() == 0) {
		a = hl_hugetlb_memfd("A", HL_2M, NA * HL_2M);
		pa = a < 0 ? NULL : hl_map(a, NA * HL_2M);
		if (!pa)
			hl_bail("memfd A: %s", strerror(errno));
		hl_pattern_fill(pa, NA * HL_2M, 0, 0x30a);
		in = pages_in(&z, pa, NA);
		hl_ok(in == NA, "file A: %d of %d pages in ZONE_MOVABLE before preserve", in, NA);
		munmap(pa, NA * HL_2M);

		sess = hl_luo_create_session(luo, "movable");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno,
			   "preserve A (pages in ZONE_MOVABLE)");
		pa = hl_map(a, NA * HL_2M);
		hl_ok(pa && hl_pattern_verify(pa, NA * HL_2M, 0, 0x30a, NULL),
		      "A intact after preserve");
		in = pa ? pages_in(&z, pa, NA) : -1;
		hl_ok(in == 0, "preserve moved A out of ZONE_MOVABLE (%d pages left there)", in);
		hl_ok(hl_hp(HL_2M, "nr_hugepages") == BOOT + GROW,
		      "pool size unchanged by the migration (%lld)", hl_hp(HL_2M, "nr_hugepages"));
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "movable");
	a = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 1);
	pa = a < 0 ? NULL : hl_map(a, NA * HL_2M);
	hl_ok(pa && hl_pattern_verify(pa, NA * HL_2M, 0, 0x30a, NULL), "A retrieved and verified");
	in = pa ? pages_in(&z, pa, NA) : -1;
	hl_ok(in == 0, "A's pages outside ZONE_MOVABLE (%d inside)", in);
	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
