// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * KHO cannot carry a page's memory error mark, so a poisoned page must not
 * travel (the next kernel would map it as good memory).
 *
 * gen 0: A (4 pages): page 1 poisoned with MADV_HWPOISON (in a child that
 *        maps it), then preserving A fails with EHWPOISON and leaves A
 *        unfrozen. B (4 pages): preserved, then page 2 poisoned; the kexec
 *        (reboot) fails with EHWPOISON when LUO freezes B, and the system
 *        stays up. Closing B's session lets C (4 pages, clean) go through
 *        a real kexec.
 * gen 1: C arrives intact.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <linux/reboot.h>
#include <sys/wait.h>

#ifndef MADV_HWPOISON
#define MADV_HWPOISON	100
#endif

#define NP	4
#define SIZE	(NP * HL_2M)

static int filled(const char *name, uint64_t seed)
{
	int fd = hl_hugetlb_memfd(name, HL_2M, SIZE);
	uint8_t *p = fd < 0 ? NULL : hl_map(fd, SIZE);

	if (!p)
		hl_bail("memfd %s: %s", name, strerror(errno));
	hl_pattern_fill(p, SIZE, 0, seed);
	munmap(p, SIZE);
	return fd;
}

/* Poison huge page i of fd from a child, which the kernel may kill. */
static bool poison(int fd, int i)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		uint8_t *p = hl_map(fd, SIZE);

		if (!p)
			_exit(2);
		/* Exit status 10 + errno if madvise() fails. */
		_exit(madvise(p + i * HL_2M, 4096, MADV_HWPOISON) ? 10 + errno : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return false;
	hl_diag("poisoning child: %s %d", WIFEXITED(status) ? "exit" : "signal",
		WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
}

/*
 * kexec_file_load + reboot(KEXEC) into generation 1, expected to fail;
 * returns its errno. (If it does not fail, generation 1 finds no session
 * "clean" and fails.)
 */
static int try_kexec(void)
{
	int kfd = open("/boot/bzImage", O_RDONLY | O_CLOEXEC);
	int ifd = open("/tmp/next-initrd.cpio", O_RDONLY | O_CLOEXEC);
	char next[4096] = "", *g;
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(next, sizeof(next), f))
			next[0] = 0;
		fclose(f);
	}
	next[strcspn(next, "\n")] = 0;
	g = strstr(next, "hugelive.gen=0");
	if (g)
		g[13] = '1';

	if (kfd < 0 || ifd < 0 ||
	    syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next, 0UL))
		return -errno;
	close(kfd);
	close(ifd);
	if (syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		    LINUX_REBOOT_CMD_KEXEC, NULL))
		return errno;
	return 0;
}

int main(void)
{
	int luo = hl_luo_open(), sess, a, b, c, err;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		sess = hl_luo_create_session(luo, "poison");
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));

		a = filled("A", 0xa);
		hl_ok(poison(a, 1), "A: page 1 poisoned (MADV_HWPOISON)");
		hl_errno(hl_luo_preserve_fd(sess, a, 1), errno, EHWPOISON,
			 "preserving a file with a poisoned page");
		hl_success(ftruncate(a, 2 * SIZE), errno, "A is not left frozen");
		close(a);

		b = filled("B", 0xb);
		hl_success(hl_luo_preserve_fd(sess, b, 2), errno, "preserve B");
		hl_ok(poison(b, 2), "B: page 2 poisoned after preserve");
		err = try_kexec();
		hl_ok(err == EHWPOISON,
		      "kexec refused when LUO freezes B: %s (want EHWPOISON)",
		      strerror(err < 0 ? -err : err));
		close(sess);
		hl_success(ftruncate(b, 2 * SIZE), errno,
			   "B unfrozen once its session is closed");
		close(b);

		sess = hl_luo_create_session(luo, "clean");
		c = filled("C", 0xc);
		hl_success(hl_luo_preserve_fd(sess, c, 3), errno, "preserve C");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "clean");
	c = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 3);
	hl_success(c, errno, "retrieve C");
	p = c < 0 ? NULL : hl_map(c, SIZE);
	hl_ok(p && hl_pattern_verify(p, SIZE, 0, 0xc, NULL), "C intact");
	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
