// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * The hugetlb cgroup reservation counters (hugetlb.2MB.rsvd.*) are charged
 * for retrieved pages as for pages faulted in through a shared mapping, so
 * that a live update cannot be used to get around rsvd.max.
 *
 * gen 0: a file of 8 pages is written and preserved.
 * gen 1: a reference file of 8 pages faulted in by a task of cgroup "ref";
 *        the preserved file retrieved by a task of cgroup "lim": with
 *        hugetlb.2MB.rsvd.max at 4 pages the retrieve fails with ENOSPC
 *        and charges no more than 4; raised to 8 pages, retrieving again
 *        succeeds. Both cgroups then show the same
 *        current and rsvd.current (16 MiB); mapping one more page in "lim"
 *        fails with ENOMEM (the limit holds); once the retrieved file is
 *        closed, "lim" is uncharged to 0 and the page can be mapped.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define NA	8

static long long cg_val(const char *dir, const char *file)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return hl_read_ll(path);
}

static int cg_set(const char *dir, const char *file, long long v)
{
	char path[200], buf[32];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(buf, sizeof(buf), "%lld", v);
	return hl_write_str(path, buf);
}

int main(void)
{
	static char ref[128], lim[128];
	long long size = NA * HL_2M;
	int luo = hl_luo_open(), sess, a, r, x, e;
	const char *d;
	uint8_t *p, *pa;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		a = hl_hugetlb_memfd("A", HL_2M, size);
		p = a < 0 ? NULL : hl_map(a, size);
		if (!p)
			hl_bail("memfd A: %s", strerror(errno));
		hl_pattern_fill(p, size, 0, 0xc9);
		sess = hl_luo_create_session(luo, "rsvd");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve A (8 pages)");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	/* The reference: the same size faulted in. */
	d = hl_cgroup_enter("ref");
	if (!d)
		hl_bail("cgroup ref: %s", strerror(errno));
	snprintf(ref, sizeof(ref), "%s", d);
	r = hl_hugetlb_memfd("ref", HL_2M, size);
	p = r < 0 ? NULL : hl_map(r, size);
	if (!p)
		hl_bail("memfd ref: %s", strerror(errno));
	hl_pattern_fill(p, size, 0, 1);
	munmap(p, size);

	d = hl_cgroup_enter("lim");
	if (!d)
		hl_bail("cgroup lim: %s", strerror(errno));
	snprintf(lim, sizeof(lim), "%s", d);
	/* Half the file first: the limit refuses, nothing is lost. */
	if (cg_set(lim, "hugetlb.2MB.rsvd.max", size / 2))
		hl_bail("set rsvd.max: %s", strerror(errno));
	sess = hl_luo_retrieve_session(luo, "rsvd");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));
	hl_errno(hl_luo_retrieve_fd(sess, 1), errno, ENOSPC,
		 "retrieve with rsvd.max = half the file is refused");
	hl_ok(cg_val(lim, "hugetlb.2MB.rsvd.current") <= size / 2,
	      "rsvd.current %lld within rsvd.max %lld",
	      cg_val(lim, "hugetlb.2MB.rsvd.current"), size / 2);
	if (cg_set(lim, "hugetlb.2MB.rsvd.max", size))
		hl_bail("set rsvd.max: %s", strerror(errno));

	a = hl_luo_retrieve_fd(sess, 1);
	if (a < 0)
		hl_bail("retrieve A under rsvd.max = its size: %s", strerror(errno));
	hl_ok(1, "A retrieved in cgroup lim once rsvd.max is %lld", size);
	hl_ok(cg_val(ref, "hugetlb.2MB.current") == size &&
	      cg_val(ref, "hugetlb.2MB.rsvd.current") == size,
	      "fault-in reference: current %lld rsvd.current %lld (want %lld)",
	      cg_val(ref, "hugetlb.2MB.current"),
	      cg_val(ref, "hugetlb.2MB.rsvd.current"), size);
	hl_ok(cg_val(lim, "hugetlb.2MB.current") == cg_val(ref, "hugetlb.2MB.current"),
	      "after retrieve: current %lld, as a fault-in",
	      cg_val(lim, "hugetlb.2MB.current"));
	hl_ok(cg_val(lim, "hugetlb.2MB.rsvd.current") ==
	      cg_val(ref, "hugetlb.2MB.rsvd.current"),
	      "after retrieve: rsvd.current %lld, as a fault-in (%lld)",
	      cg_val(lim, "hugetlb.2MB.rsvd.current"),
	      cg_val(ref, "hugetlb.2MB.rsvd.current"));

	pa = hl_map(a, size);
	hl_ok(pa && hl_pattern_verify(pa, size, 0, 0xc9, NULL), "A verified");
	hl_ok(cg_val(lim, "hugetlb.2MB.rsvd.current") == size,
	      "mapping A reserves nothing more (rsvd.current %lld)",
	      cg_val(lim, "hugetlb.2MB.rsvd.current"));

	x = hl_hugetlb_memfd("extra", HL_2M, HL_2M);
	if (x < 0)
		hl_bail("memfd extra: %s", strerror(errno));
	errno = 0;
	p = hl_map(x, HL_2M);
	e = errno;
	hl_ok(!p && e == ENOMEM, "one page more than rsvd.max cannot be mapped (%s)",
	      p ? "mapped" : strerror(e));
	if (p)
		munmap(p, HL_2M);

	hl_success(hl_luo_finish(sess), errno, "finish");
	close(sess);
	if (pa)
		munmap(pa, size);
	close(a);
	hl_ok(cg_val(lim, "hugetlb.2MB.current") == 0 &&
	      cg_val(lim, "hugetlb.2MB.rsvd.current") == 0,
	      "A closed: current %lld rsvd.current %lld (want 0 0)",
	      cg_val(lim, "hugetlb.2MB.current"),
	      cg_val(lim, "hugetlb.2MB.rsvd.current"));
	p = hl_map(x, HL_2M);
	hl_ok(p != NULL, "now the extra page can be mapped");
	if (p)
		munmap(p, HL_2M);
	close(x);
	close(r);
	return hl_exit();
}
