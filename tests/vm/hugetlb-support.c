// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=512 timeout=120 cmdline="hugepages=8"
 *
 * Preserving a hugetlb memfd (memfd_create(MFD_HUGETLB)).
 *
 * A kernel without the hugetlb file handler (stock 7.3: no
 * CONFIG_LIVEUPDATE_HUGETLB in /proc/config.gz) must refuse with ENOENT,
 * "no handler for this file". A kernel with CONFIG_LIVEUPDATE_HUGETLB=y must
 * accept it and carry the contents of four 2 MiB pages across one kexec,
 * word by word. The expectation switches on the kernel's own config, so the
 * test turns positive by itself when the hugetlb series lands.
 */
#include "lib/scenario.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SESSION	"hugetlb-support"
#define TOKEN	0x4854ULL
#define NPAGES	4
#define HPAGE	(2ULL << 20)
#define SIZE	(NPAGES * HPAGE)
#define SEED	0x68756765ULL

int main(void)
{
	const char *cfg = hl_kconfig("LIVEUPDATE_HUGETLB");
	bool supported = cfg && !strcmp(cfg, "y");
	int luo, sess, mfd, r;
	uint8_t *p;

	hl_diag("CONFIG_LIVEUPDATE_HUGETLB=%s: expecting hugetlb preservation to %s",
		cfg ? cfg : "(unset)", supported ? "work" : "fail with ENOENT");
	luo = hl_luo_open();
	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		sess = hl_luo_create_session(luo, SESSION);
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));
		mfd = hl_memfd("hugelive-hugetlb", SIZE, MFD_HUGETLB);
		if (!hl_success(mfd, errno, "memfd_create(MFD_HUGETLB) of %d x 2 MiB", NPAGES))
			return hl_exit();
		p = hl_map(mfd, SIZE);
		if (!hl_ok(p != NULL, "mmap hugetlb memfd"))
			return hl_exit();
		hl_pattern_fill(p, SIZE, 0, SEED);
		r = hl_luo_preserve_fd(sess, mfd, TOKEN);
		if (supported)
			hl_success(r, errno, "preserve hugetlb memfd");
		else
			hl_errno(r, errno, ENOENT,
				 "preserve hugetlb memfd on a kernel without the hugetlb handler");
		if (hl_failures())
			return hl_exit();
		/* The session goes across even when empty. */
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, SESSION);
	if (!hl_success(sess, errno, "retrieve session %s", SESSION))
		return hl_exit();
	mfd = hl_luo_retrieve_fd(sess, TOKEN);
	if (!supported) {
		hl_errno(mfd, errno, ENOENT, "nothing carried for the refused hugetlb memfd");
	} else if (hl_success(mfd, errno, "retrieve hugetlb memfd")) {
		struct hl_mismatch m;

		hl_ok(hl_fd_size(mfd) == (long long)SIZE, "retrieved size %lld",
		      hl_fd_size(mfd));
		p = hl_map(mfd, SIZE);
		if (hl_ok(p != NULL, "mmap retrieved hugetlb memfd")) {
			if (hl_pattern_verify(p, SIZE, 0, SEED, &m))
				hl_ok(true, "%d huge pages verified word by word", NPAGES);
			else
				hl_ok(false, "hugetlb contents: first bad offset 0x%llx: "
				      "expected 0x%016llx actual 0x%016llx; %llu bad words",
				      (unsigned long long)m.offset,
				      (unsigned long long)m.expected,
				      (unsigned long long)m.actual,
				      (unsigned long long)m.bad_words);
		}
	}
	hl_success(hl_luo_finish(sess), errno, "finish session");
	return hl_exit();
}
