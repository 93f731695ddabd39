// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * The rules of hugetlb preservation, each with its errno:
 *
 * gen 0: frozen while preserved (ftruncate grow/shrink, fallocate, hole punch:
 *        EPERM; same-size truncate and writes through the mapping into
 *        present pages still work; a fault into a hole gets SIGBUS and
 *        takes no page); preserved once (same fd under another token, a
 *        dup, another session: EBUSY); a file of a hugetlbfs mount, with a
 *        name or unlinked: ENOENT; cancel (close the session): unfrozen,
 *        contents and pool counters intact, usable (faults into holes,
 *        fallocate, punch, truncate) and preservable again. Then a file is
 *        preserved for real and a fault into one of its holes after
 *        PRESERVE_FD gets SIGBUS.
 * gen 1: unknown token ENOENT, retrieving the same token twice gives the
 *        same file, exactly the page present at preserve is there and the
 *        hole stayed a hole.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <linux/falloc.h>
#include <sys/wait.h>

#define NP	8
#define SIZE	(NP * HL_2M)
#define TOK	0x52554c45ULL

static void fill_page(uint8_t *p, int i, uint64_t seed)
{
	hl_pattern_fill(p + i * HL_2M, HL_2M, i * HL_2M, seed);
}

static bool page_ok(const uint8_t *p, int i, uint64_t seed)
{
	return hl_pattern_verify(p + i * HL_2M, HL_2M, i * HL_2M, seed, NULL);
}

/* A child writes into huge page i of the mapping: true if SIGBUS killed it. */
static bool write_gets_sigbus(uint8_t *p, int i)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		p[i * HL_2M + 5] = 1;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS;
}

static void cancel_rules(int luo)
{
	long long free0;
	int sess, other, fd, dupfd, lfd;
	uint8_t *p;

	fd = hl_hugetlb_memfd("rules", HL_2M, SIZE);
	p = fd < 0 ? NULL : hl_map(fd, SIZE);
	if (!p)
		hl_bail("hugetlb memfd: %s", strerror(errno));
	for (int i = 0; i < NP; i += 2)
		fill_page(p, i, 0x1000 + i);
	free0 = hl_hp(HL_2M, "free_hugepages");

	sess = hl_luo_create_session(luo, "rules-cancel");
	if (sess < 0)
		hl_bail("create session: %s", strerror(errno));
	hl_success(hl_luo_preserve_fd(sess, fd, TOK), errno, "preserve sparse file");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0,
	      "preserve fills no hole (free %lld, was %lld)",
	      hl_hp(HL_2M, "free_hugepages"), free0);

	hl_errno(ftruncate(fd, SIZE + HL_2M), errno, EPERM, "frozen: ftruncate grow");
	hl_errno(ftruncate(fd, HL_2M), errno, EPERM, "frozen: ftruncate shrink");
	hl_errno(fallocate(fd, 0, 0, SIZE), errno, EPERM, "frozen: fallocate");
	hl_errno(fallocate(fd, FALLOC_FL_KEEP_SIZE, SIZE, HL_2M), errno, EPERM,
		 "frozen: fallocate keep-size");
	hl_errno(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, HL_2M),
		 errno, EPERM, "frozen: punch hole");
	hl_success(ftruncate(fd, SIZE), errno, "frozen: same-size ftruncate is fine");
	fill_page(p, 0, 0x2000);
	hl_ok(page_ok(p, 0, 0x2000), "frozen: writes through the mapping work");
	hl_ok(write_gets_sigbus(p, 1), "frozen: a fault into a hole gets SIGBUS");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0,
	      "frozen: the hole fault took no page (free %lld, was %lld)",
	      hl_hp(HL_2M, "free_hugepages"), free0);

	hl_errno(hl_luo_preserve_fd(sess, fd, TOK + 1), errno, EBUSY,
		 "second preserve, other token");
	dupfd = dup(fd);
	hl_errno(hl_luo_preserve_fd(sess, dupfd, TOK + 2), errno, EBUSY,
		 "second preserve through a dup");
	close(dupfd);
	other = hl_luo_create_session(luo, "rules-other");
	hl_errno(hl_luo_preserve_fd(other, fd, TOK), errno, EBUSY,
		 "second preserve in another session");

	/* Only memfds: a file of a hugetlbfs mount is refused, named or not. */
	mkdir("/mnt", 0755);
	mkdir("/mnt/huge", 0755);
	if (mount("none", "/mnt/huge", "hugetlbfs", 0, "pagesize=2M") == 0) {
		lfd = open("/mnt/huge/named", O_RDWR | O_CREAT, 0600);
		hl_errno(hl_luo_preserve_fd(other, lfd, 9), errno, ENOENT,
			 "hugetlbfs file with a name");
		unlink("/mnt/huge/named");
		hl_errno(hl_luo_preserve_fd(other, lfd, 9), errno, ENOENT,
			 "same file once unlinked");
		close(other);
		close(lfd);
		umount("/mnt/huge");
	} else {
		hl_ok(false, "mount hugetlbfs: %s", strerror(errno));
		close(other);
	}

	/* Cancel: closing the session before any kexec. */
	close(sess);
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0,
	      "cancel returns nothing to or takes nothing from the pool");
	hl_ok(page_ok(p, 0, 0x2000) && page_ok(p, 2, 0x1002) && page_ok(p, 6, 0x1006),
	      "cancel: contents intact");
	hl_ok(!write_gets_sigbus(p, 1), "cancel: faults into holes work again");
	hl_success(fallocate(fd, 0, 0, SIZE), errno, "cancel: fallocate works again");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0 - NP / 2,
	      "the fault and fallocate filled the %d holes", NP / 2);
	hl_success(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, HL_2M, HL_2M),
		   errno, "cancel: punch hole works again");
	munmap(p, SIZE);
	hl_success(ftruncate(fd, 0), errno, "cancel: truncate to 0 works again");
	hl_ok(hl_hp(HL_2M, "free_hugepages") == free0 + NP / 2,
	      "truncate freed every page (free %lld)", hl_hp(HL_2M, "free_hugepages"));
	sess = hl_luo_create_session(luo, "rules-again");
	hl_success(hl_luo_preserve_fd(sess, fd, TOK), errno,
		   "preservable again after cancel");
	close(sess);
	close(fd);
}

int main(void)
{
	int luo = hl_luo_open(), sess, fd, fd2;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		cancel_rules(luo);

		fd = hl_hugetlb_memfd("rules-carry", HL_2M, SIZE);
		p = fd < 0 ? NULL : hl_map(fd, SIZE);
		if (!p)
			hl_bail("hugetlb memfd: %s", strerror(errno));
		fill_page(p, 1, 0x3001);
		sess = hl_luo_create_session(luo, "rules-carry");
		hl_success(hl_luo_preserve_fd(sess, fd, TOK), errno, "preserve for kexec");
		/* A fault into a hole after PRESERVE_FD: refused. */
		hl_ok(write_gets_sigbus(p, 4),
		      "a fault into a hole after preserve gets SIGBUS");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "rules-carry");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));
	hl_errno(hl_luo_retrieve_fd(sess, TOK + 77), errno, ENOENT, "unknown token");
	fd = hl_luo_retrieve_fd(sess, TOK);
	hl_success(fd, errno, "retrieve");
	fd2 = hl_luo_retrieve_fd(sess, TOK);
	if (fd >= 0 && fd2 >= 0) {
		struct stat a, b;

		fstat(fd, &a);
		fstat(fd2, &b);
		hl_ok(a.st_ino == b.st_ino, "second retrieve gives the same file");
		close(fd2);
	}
	p = hl_map(fd, SIZE);
	if (!p)
		hl_bail("mmap: %s", strerror(errno));
	hl_ok(hl_hp(HL_2M, "nr_hugepages") - hl_hp(HL_2M, "free_hugepages") == 1,
	      "exactly the page present at preserve is in use");
	hl_ok(page_ok(p, 1, 0x3001), "page written before preserve arrived");
	{
		const uint64_t *w = (const uint64_t *)(p + 4 * HL_2M);
		size_t nz = 0;

		for (size_t k = 0; k < HL_2M / 8; k++)
			nz += w[k] != 0;
		hl_ok(nz == 0, "the hole stayed a hole (%zu nonzero words)", nz);
	}
	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
