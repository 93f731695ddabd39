// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=300 cmdline="hugepagesz=2M hugepages=64"
 *
 * Which hugetlb files can be preserved, and that a file comes back as it
 * left.
 *
 * gen 0: refused, each with its errno: a memfd reopened read-only through
 *        /proc/self/fd (EBADF), the file of a MAP_HUGETLB mapping and of a
 *        SysV SHM_HUGETLB segment, both reopened through
 *        /proc/self/map_files (ENOENT), an unlinked file of a hugetlbfs
 *        mount (ENOENT); none is left frozen (ftruncate works). Preserved:
 *        an MFD_NOEXEC_SEAL memfd (mode 0666, F_SEAL_EXEC only), a memfd
 *        with mode 0640 and F_SEAL_GROW, an MFD_EXEC memfd (0777, no seal).
 * gen 1: each comes back with its mode and exactly its seals: the
 *        MFD_NOEXEC_SEAL file is not write-sealed (ftruncate to grow and
 *        writes through a shared mapping work), the 0640
 *        one still refuses to grow, contents intact.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#define NP	2
#define SIZE	(NP * HL_2M)

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL	0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC	0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC	0x0020
#endif

static int memfd_flags(const char *name, unsigned int flags)
{
	int fd = memfd_create(name, MFD_HUGETLB | MFD_HUGE_2MB | flags);
	uint8_t *p;

	if (fd < 0 || ftruncate(fd, SIZE))
		hl_bail("memfd %s: %s", name, strerror(errno));
	p = hl_map(fd, SIZE);
	if (!p)
		hl_bail("mmap %s: %s", name, strerror(errno));
	hl_pattern_fill(p, SIZE, 0, flags + 7);
	munmap(p, SIZE);
	return fd;
}

/* /proc/self/map_files/<start>-<end> of a mapping, opened O_RDWR. */
static int open_map_file(void *addr, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)addr, (unsigned long)addr + len);
	return open(path, O_RDWR);
}

static mode_t mode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? (mode_t)-1 : (st.st_mode & 07777);
}

static void refused(int sess)
{
	char path[64];
	void *anon, *shm;
	int ro, mf, shmid, fd;

	/* Read-only fd of a memfd. */
	fd = memfd_flags("rw", MFD_ALLOW_SEALING);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	hl_ok(ro >= 0, "memfd reopened read-only");
	hl_errno(hl_luo_preserve_fd(sess, ro, 100), errno, EBADF,
		 "read-only fd of a hugetlb memfd");
	close(ro);
	ro = open(path, O_WRONLY);
	hl_errno(hl_luo_preserve_fd(sess, ro, 100), errno, EBADF,
		 "write-only fd of a hugetlb memfd");
	close(ro);
	hl_success(ftruncate(fd, 2 * SIZE), errno, "that memfd is not frozen");
	close(fd);

	/* MAP_HUGETLB: anonymous hugetlb file behind the mapping. */
	anon = mmap(NULL, HL_2M, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (anon == MAP_FAILED) {
		hl_ok(false, "mmap MAP_HUGETLB: %s", strerror(errno));
	} else {
		*(volatile char *)anon = 1;
		mf = open_map_file(anon, HL_2M);
		hl_ok(mf >= 0, "MAP_HUGETLB file opened through map_files (%s)",
		      mf < 0 ? strerror(errno) : "ok");
		hl_errno(hl_luo_preserve_fd(sess, mf, 101), errno, ENOENT,
			 "MAP_HUGETLB mapping's file");
		close(mf);
		munmap(anon, HL_2M);
	}

	/* SysV SHM_HUGETLB segment. */
	shmid = shmget(IPC_PRIVATE, HL_2M, IPC_CREAT | SHM_HUGETLB | 0600);
	if (shmid < 0) {
		hl_ok(false, "shmget SHM_HUGETLB: %s", strerror(errno));
	} else {
		shm = shmat(shmid, NULL, 0);
		shmctl(shmid, IPC_RMID, NULL);
		if (shm == (void *)-1) {
			hl_ok(false, "shmat: %s", strerror(errno));
		} else {
			*(volatile char *)shm = 1;
			mf = open_map_file(shm, HL_2M);
			hl_ok(mf >= 0, "SysV segment opened through map_files (%s)",
			      mf < 0 ? strerror(errno) : "ok");
			hl_errno(hl_luo_preserve_fd(sess, mf, 102), errno, ENOENT,
				 "SysV SHM_HUGETLB segment's file");
			close(mf);
			shmdt(shm);
		}
	}

	/* An unlinked file of a user hugetlbfs mount. */
	mkdir("/mnt", 0755);
	mkdir("/mnt/hk", 0755);
	if (mount("none", "/mnt/hk", "hugetlbfs", 0, "pagesize=2M")) {
		hl_ok(false, "mount hugetlbfs: %s", strerror(errno));
		return;
	}
	fd = open("/mnt/hk/f", O_RDWR | O_CREAT, 0600);
	unlink("/mnt/hk/f");
	hl_errno(hl_luo_preserve_fd(sess, fd, 103), errno, ENOENT,
		 "unlinked file of a hugetlbfs mount");
	hl_success(ftruncate(fd, HL_2M), errno, "that file is not frozen");
	close(fd);
	umount("/mnt/hk");
}

int main(void)
{
	int luo = hl_luo_open(), sess, noexec, mode640, exec, fd;
	bool ok;
	uint8_t *p;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		sess = hl_luo_create_session(luo, "kinds");
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));
		refused(sess);

		noexec = memfd_flags("noexec", MFD_NOEXEC_SEAL);
		hl_ok(mode_of(noexec) == 0666 &&
		      fcntl(noexec, F_GET_SEALS) == F_SEAL_EXEC,
		      "MFD_NOEXEC_SEAL memfd: mode %o, seals %#x",
		      mode_of(noexec), fcntl(noexec, F_GET_SEALS));
		mode640 = memfd_flags("m640", MFD_ALLOW_SEALING);
		hl_success(fchmod(mode640, 0640), errno, "chmod 0640");
		hl_success(fcntl(mode640, F_ADD_SEALS, F_SEAL_GROW), errno,
			   "F_SEAL_GROW");
		exec = memfd_flags("exec", MFD_EXEC | MFD_ALLOW_SEALING);
		ok = hl_success(hl_luo_preserve_fd(sess, noexec, 1), errno,
				"preserve the MFD_NOEXEC_SEAL memfd");
		ok &= hl_success(hl_luo_preserve_fd(sess, mode640, 2), errno,
				 "preserve the 0640 memfd");
		ok &= hl_success(hl_luo_preserve_fd(sess, exec, 3), errno,
				 "preserve the MFD_EXEC memfd");
		/* Carry on after a refusal check failed: gen 1 checks more. */
		if (!ok)
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	sess = hl_luo_retrieve_session(luo, "kinds");
	if (sess < 0)
		hl_bail("retrieve session: %s", strerror(errno));

	fd = hl_luo_retrieve_fd(sess, 1);
	hl_success(fd, errno, "retrieve the MFD_NOEXEC_SEAL memfd");
	hl_ok(mode_of(fd) == 0666, "mode 0666 (is %o)", mode_of(fd));
	hl_ok(fcntl(fd, F_GET_SEALS) == F_SEAL_EXEC,
	      "seals exactly F_SEAL_EXEC (are %#x)", fcntl(fd, F_GET_SEALS));
	p = hl_map(fd, SIZE);
	hl_ok(p != NULL, "writable shared mapping (%s)",
	      p ? "ok" : strerror(errno));
	if (p) {
		hl_ok(hl_pattern_verify(p, SIZE, 0, MFD_NOEXEC_SEAL + 7, NULL),
		      "contents intact");
		p[17] = 1;
		munmap(p, SIZE);
	}
	hl_success(ftruncate(fd, 2 * SIZE), errno, "grows: not write-sealed");
	close(fd);

	fd = hl_luo_retrieve_fd(sess, 2);
	hl_success(fd, errno, "retrieve the 0640 memfd");
	hl_ok(mode_of(fd) == 0640, "mode 0640 (is %o)", mode_of(fd));
	hl_ok(fcntl(fd, F_GET_SEALS) == F_SEAL_GROW,
	      "seals exactly F_SEAL_GROW (are %#x)", fcntl(fd, F_GET_SEALS));
	hl_errno(ftruncate(fd, 2 * SIZE), errno, EPERM, "still refuses to grow");
	close(fd);

	fd = hl_luo_retrieve_fd(sess, 3);
	hl_success(fd, errno, "retrieve the MFD_EXEC memfd");
	hl_ok(mode_of(fd) == 0777, "mode 0777 (is %o)", mode_of(fd));
	hl_ok(fcntl(fd, F_GET_SEALS) == 0, "no seal (are %#x)",
	      fcntl(fd, F_GET_SEALS));
	close(fd);

	hl_success(hl_luo_finish(sess), errno, "finish");
	return hl_exit();
}
