// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=4096 timeout=600 cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=32" bins="build/vm/kselftest/luo_kexec_hugetlb"
 *
 * Runs the kernel's two-stage kselftest luo_kexec_hugetlb (from the patched
 * tree, tools/testing/selftests/liveupdate) across a real kexec: stage 1
 * ("-s 1") in generation 0 fills and preserves 2 MiB files (one dense, one
 * sparse) and a 1 GiB file and leaves a daemon holding the sessions; this
 * scenario then kexecs (the part do_kexec.sh plays upstream); stage 2
 * ("-s 2") in generation 1 verifies and finishes. Every KTAP result becomes
 * a TAP line of ours; a SKIP is a failure here, since this VM has the 1 GiB
 * page the test needs.
 *
 * Test switch: hugelive.corrupt=1 (CORRUPT=1 for the runner) flips one byte
 * of the dense file between the stages, through the daemon's fd in /proc,
 * after the file was preserved: stage 2 must then fail naming the offset,
 * and so must this scenario.
 */
#include "lib/scenario.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROG		"/usr/local/bin/luo_kexec_hugetlb"
#define DENSE_NAME	"memfd:luo_hugetlb_dense"
#define SZ_2M		(2UL << 20)
#define CORRUPT_PAGE	1
#define CORRUPT_OFFSET	0x12345

/* Runs one stage; returns the daemon's pid that stage 1 printed, or 0. */
static long run_stage(int stage)
{
	char line[512], cmd[128];
	int n = 0, status;
	long child = 0;
	const char *p;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s -s %d 2>&1", PROG, stage);
	f = popen(cmd, "r");
	if (!f) {
		hl_ok(false, "stage %d: popen: %s", stage, strerror(errno));
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		bool okl = !strncmp(line, "ok ", 3), bad = !strncmp(line, "not ok ", 7);

		line[strcspn(line, "\n")] = 0;
		hl_diag("stage %d: %s", stage, line);
		p = strstr(line, "Child PID: ");
		if (p)
			child = strtol(p + strlen("Child PID: "), NULL, 10);
		if (!okl && !bad)
			continue;
		n++;
		hl_ok(okl && !strstr(line, "# SKIP"), "luo_kexec_hugetlb: %s", line);
	}
	status = pclose(f);
	hl_ok(n > 0, "stage %d reported %d results", stage, n);
	hl_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "stage %d exit status %d", stage,
	      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return child;
}

/*
 * Flip a byte of the dense file that the stage 1 daemon holds preserved,
 * opening it again through /proc/PID/fd.
 */
static void corrupt(long child)
{
	char dir[64], path[320], link[256];
	struct dirent *de;
	bool done = false;
	uint8_t *m;
	ssize_t len;
	DIR *d;
	int fd;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", child);
	d = opendir(dir);
	if (!d) {
		hl_ok(false, "corrupt: opendir %s: %s", dir, strerror(errno));
		return;
	}
	while (!done && (de = readdir(d))) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = 0;
		if (strncmp(link, "/" DENSE_NAME, strlen("/" DENSE_NAME)))
			continue;
		fd = open(path, O_RDWR);
		if (fd < 0)
			break;
		m = mmap(NULL, SZ_2M, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 CORRUPT_PAGE * SZ_2M);
		if (m != MAP_FAILED) {
			m[CORRUPT_OFFSET] ^= 0x40;
			munmap(m, SZ_2M);
			done = true;
		}
		close(fd);
	}
	closedir(d);
	hl_ok(done, "test switch hugelive.corrupt: flipped the byte at %#lx of %s",
	      CORRUPT_PAGE * SZ_2M + CORRUPT_OFFSET, DENSE_NAME);
}

int main(void)
{
	long child;

	if (hl_gen() == 0) {
		child = run_stage(1);
		hl_ok(child > 0, "stage 1 left daemon %ld holding the sessions", child);
		if (hl_param("corrupt") && hl_param_ll("corrupt", 0) && child > 0)
			corrupt(child);
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	run_stage(2);
	return hl_exit();
}
