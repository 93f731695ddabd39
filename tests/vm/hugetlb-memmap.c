// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=6144 timeout=600 cmdline="hugetlb_free_vmemmap=on hugepagesz=1G hugepages=2 hugepagesz=2M hugepages=64"
 *
 * The struct pages of restored huge pages. KHO hands preserved pages over
 * with only the head struct page prepared; the handler writes the struct
 * pages that HVO keeps (64 per huge page: one vmemmap page) and leaves the
 * rest to the vmemmap remap, or writes every tail when HVO is off.
 *
 * gen 0: two pairs of files, each a 2 MiB-page file of 16 pages and a
 *        1 GiB-page file of one page, filled with the pattern; preserve
 *        all four, kexec.
 * gen 1: retrieve the first pair with HVO on: 17 huge pages optimized,
 *        64 struct pages written each. Turn HVO off
 *        (vm.hugetlb_optimize_vmemmap=0) and retrieve the second pair:
 *        every struct page written (16 * 512 + 262144), none optimized.
 *        Every word of the four files is verified. Then the files are
 *        closed and both pools shrunk to zero, so that every restored page
 *        goes back to the buddy allocator through the checks of a debug
 *        kernel (compound tails, vmemmap restore); then the pools grow
 *        again and the pages are used once more.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define SESSION		"memmap"
#define NR_2M		16ULL
#define KEPT		64LL	/* struct pages in one vmemmap page */
#define TAILS_2M	512LL
#define TAILS_1G	262144LL
#define HVO_SYSCTL	"/proc/sys/vm/hugetlb_optimize_vmemmap"

struct hfile {
	const char *name;
	unsigned long long hsize, size;
	uint64_t token, seed;
	int fd;
	uint8_t *p;
};

static struct hfile files[] = {
	{ "hvo-2m",   HL_2M, NR_2M * HL_2M, 1, 0x2001, -1, NULL },
	{ "hvo-1g",   HL_1G, HL_1G,         2, 0x1001, -1, NULL },
	{ "nohvo-2m", HL_2M, NR_2M * HL_2M, 3, 0x2002, -1, NULL },
	{ "nohvo-1g", HL_1G, HL_1G,         4, 0x1002, -1, NULL },
};

#define NFILES	(int)(sizeof(files) / sizeof(files[0]))

static bool pool_nr(unsigned long long hsize, const char *what, long long nr,
		    long long fr)
{
	struct hl_pool p = hl_pool_get(hsize);

	return hl_ok(p.nr == nr && p.free == fr,
		     "%s, %s pages: nr %lld free %lld (want %lld, %lld)", what,
		     hsize == HL_1G ? "1G" : "2M", p.nr, p.free, nr, fr);
}

static bool set_pool(unsigned long long hsize, long long nr)
{
	char path[128], val[32];

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/nr_hugepages",
		 hl_size_dir(hsize));
	snprintf(val, sizeof(val), "%lld", nr);
	return hl_write_str(path, val) == 0;
}

/* Retrieve files [first, first + 2) and check what the handler counted. */
static void retrieve_pair(int sess, int first, bool hvo)
{
	long long sp0 = hl_luo_stat("restored_struct_pages");
	long long hvo0 = hl_luo_stat("restored_hvo_folios");
	long long want_sp, sp, nhvo;
	int i;

	for (i = first; i < first + 2; i++) {
		files[i].fd = hl_luo_retrieve_fd(sess, files[i].token);
		if (files[i].fd < 0)
			hl_bail("retrieve %s: %s", files[i].name, strerror(errno));
	}
	sp = hl_luo_stat("restored_struct_pages") - sp0;
	nhvo = hl_luo_stat("restored_hvo_folios") - hvo0;
	want_sp = hvo ? (NR_2M + 1) * KEPT : NR_2M * TAILS_2M + TAILS_1G;
	hl_ok(sp == want_sp,
	      "HVO %s: %lld struct pages written for %llu + 1 huge pages (want %lld)",
	      hvo ? "on" : "off", sp, NR_2M, want_sp);
	hl_ok(nhvo == (hvo ? (long long)NR_2M + 1 : 0),
	      "HVO %s: %lld restored pages optimized", hvo ? "on" : "off", nhvo);
}

int main(void)
{
	int luo = hl_luo_open(), sess, i;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		sess = hl_luo_create_session(luo, SESSION);
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));
		for (i = 0; i < NFILES; i++) {
			struct hfile *f = &files[i];

			f->fd = hl_hugetlb_memfd(f->name, f->hsize, f->size);
			f->p = f->fd < 0 ? NULL : hl_map(f->fd, f->size);
			if (!f->p)
				hl_bail("%s: %s", f->name, strerror(errno));
			hl_pattern_fill(f->p, f->size, 0, f->seed);
			hl_success(hl_luo_preserve_fd(sess, f->fd, f->token),
				   errno, "preserve %s", f->name);
		}
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	pool_nr(HL_2M, "before retrieve", 64 - 2 * NR_2M, 64 - 2 * NR_2M);
	pool_nr(HL_1G, "before retrieve", 0, 0);
	sess = hl_luo_retrieve_session(luo, SESSION);
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));

	hl_ok(hl_read_ll(HVO_SYSCTL) == 1, "vm.hugetlb_optimize_vmemmap is 1");
	retrieve_pair(sess, 0, true);
	hl_ok(hl_write_str(HVO_SYSCTL, "0") == 0, "vm.hugetlb_optimize_vmemmap=0");
	retrieve_pair(sess, 2, false);
	hl_write_str(HVO_SYSCTL, "1");
	pool_nr(HL_2M, "after retrieve", 64, 64 - 2 * NR_2M);
	pool_nr(HL_1G, "after retrieve", 2, 0);

	for (i = 0; i < NFILES; i++) {
		struct hfile *f = &files[i];
		struct hl_mismatch m = { 0 };

		f->p = hl_map(f->fd, f->size);
		hl_ok(f->p && hl_pattern_verify(f->p, f->size, 0, f->seed, &m),
		      "%s: every word arrived (%llu words differ)", f->name,
		      (unsigned long long)m.bad_words);
	}
	hl_success(hl_luo_finish(sess), errno, "finish session");
	close(sess);
	for (i = 0; i < NFILES; i++) {
		if (files[i].p)
			munmap(files[i].p, files[i].size);
		close(files[i].fd);
	}
	pool_nr(HL_2M, "after close", 64, 64);
	pool_nr(HL_1G, "after close", 2, 2);

	/* Every restored page goes back to the buddy allocator. */
	hl_ok(set_pool(HL_2M, 0) && set_pool(HL_1G, 0), "shrink both pools to 0");
	pool_nr(HL_2M, "pool shrunk", 0, 0);
	pool_nr(HL_1G, "pool shrunk", 0, 0);

	/* And the memory is usable again as huge pages. */
	hl_ok(set_pool(HL_2M, 64) && set_pool(HL_1G, 2), "grow both pools again");
	pool_nr(HL_2M, "pool grown", 64, 64);
	pool_nr(HL_1G, "pool grown", 2, 2);
	for (i = 0; i < 2; i++) {
		struct hfile *f = &files[i];

		f->fd = hl_hugetlb_memfd(f->name, f->hsize, f->size);
		f->p = f->fd < 0 ? NULL : hl_map(f->fd, f->size);
		if (!f->p) {
			hl_ok(false, "%s again: %s", f->name, strerror(errno));
			continue;
		}
		hl_pattern_fill(f->p, f->size, 0, f->seed + 0x100);
		hl_ok(hl_pattern_verify(f->p, f->size, 0, f->seed + 0x100, NULL),
		      "%s: pages usable after the round trip through buddy",
		      f->name);
		munmap(f->p, f->size);
		close(f->fd);
	}
	return hl_exit();
}
