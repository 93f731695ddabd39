// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=32"
 *
 * Retrieved pages are uptodate page cache pages: userfaultfd minor faults
 * work on them.
 *
 * gen 0: an 8-page file filled with a pattern, preserved; kexec.
 * gen 1: the retrieved file is mapped shared and registered with
 *        userfaultfd in minor mode. UFFDIO_CONTINUE maps the first 4 pages
 *        from the page cache (it insists on uptodate folios: a retrieved
 *        page that is not marked uptodate hits a kernel WARNING, which fails
 *        the scenario); then a thread touches page 6, the minor fault is
 *        read from the userfaultfd and resolved with UFFDIO_CONTINUE. Every
 *        word of the 8 pages is verified through that mapping.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>

#define NP	8
#define SIZE	(NP * HL_2M)
#define SEED	0x5ffd

static volatile uint64_t touched;

static void *toucher(void *arg)
{
	touched = *(volatile uint64_t *)arg;
	return NULL;
}

int main(void)
{
	int luo = hl_luo_open(), sess, fd, uffd;
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_MINOR_HUGETLBFS };
	struct uffdio_register reg = {};
	struct uffdio_continue cont = {};
	struct uffd_msg msg;
	struct pollfd pfd;
	pthread_t thr;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		fd = hl_hugetlb_memfd("uffd", HL_2M, SIZE);
		p = fd < 0 ? NULL : hl_map(fd, SIZE);
		if (!p)
			hl_bail("hugetlb memfd: %s", strerror(errno));
		hl_pattern_fill(p, SIZE, 0, SEED);
		munmap(p, SIZE);
		sess = hl_luo_create_session(luo, "uffd");
		hl_success(hl_luo_preserve_fd(sess, fd, 1), errno, "preserve");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "uffd");
	fd = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 1);
	if (fd < 0)
		hl_bail("retrieve: %s", strerror(errno));
	p = hl_map(fd, SIZE);
	if (!p)
		hl_bail("mmap: %s", strerror(errno));

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		hl_bail("userfaultfd: %s", strerror(errno));
	hl_success(ioctl(uffd, UFFDIO_API, &api), errno,
		   "UFFDIO_API with UFFD_FEATURE_MINOR_HUGETLBFS");
	reg.range.start = (uintptr_t)p;
	reg.range.len = SIZE;
	reg.mode = UFFDIO_REGISTER_MODE_MINOR;
	hl_success(ioctl(uffd, UFFDIO_REGISTER, &reg), errno,
		   "register the retrieved file's mapping for minor faults");

	cont.range.start = (uintptr_t)p;
	cont.range.len = 4 * HL_2M;
	hl_success(ioctl(uffd, UFFDIO_CONTINUE, &cont), errno,
		   "UFFDIO_CONTINUE maps pages 0-3 from the page cache");
	hl_ok(cont.mapped == 4 * (long long)HL_2M, "mapped %lld bytes",
	      (long long)cont.mapped);

	/* A real minor fault: a thread touches page 6. */
	pthread_create(&thr, NULL, toucher, p + 6 * HL_2M);
	pfd.fd = uffd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 10000) == 1 && read(uffd, &msg, sizeof(msg)) == sizeof(msg)) {
		hl_ok(msg.event == UFFD_EVENT_PAGEFAULT &&
		      (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR),
		      "minor fault reported for page 6");
		memset(&cont, 0, sizeof(cont));
		cont.range.start = (uintptr_t)p + 6 * HL_2M;
		cont.range.len = HL_2M;
		hl_success(ioctl(uffd, UFFDIO_CONTINUE, &cont), errno,
			   "UFFDIO_CONTINUE resolves it");
	} else {
		hl_ok(false, "no minor fault event: %s", strerror(errno));
	}
	pthread_join(thr, NULL);
	hl_ok(touched == hl_pattern_word(6 * HL_2M, SEED),
	      "the faulting thread read the preserved data");

	/* Pages 4, 5 and 7 are resolved the same way, without a fault. */
	for (int i = 4; i < NP; i++) {
		if (i == 6)
			continue;
		memset(&cont, 0, sizeof(cont));
		cont.range.start = (uintptr_t)p + i * HL_2M;
		cont.range.len = HL_2M;
		if (ioctl(uffd, UFFDIO_CONTINUE, &cont))
			hl_ok(false, "UFFDIO_CONTINUE page %d: %s", i, strerror(errno));
	}
	{
		struct hl_mismatch m;
		/* verify first: the arguments below are read in no set order */
		bool same = hl_pattern_verify(p, SIZE, 0, SEED, &m);

		hl_ok(same,
		      "every word verified through the userfaultfd mapping (%llu bad)",
		      (unsigned long long)m.bad_words);
	}
	close(uffd);
	munmap(p, SIZE);
	close(fd);
	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
