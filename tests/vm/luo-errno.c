// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=512 timeout=120
 *
 * The /dev/liveupdate errno rules that tools rely on, as the kernel really
 * implements them (kernel/liveupdate/luo_core.c, luo_session.c, luo_file.c):
 *
 *   open            second opener: EBUSY (closing the device fd keeps sessions)
 *   CREATE_SESSION  duplicate name: EEXIST; empty name or no NUL within 64
 *                   bytes: EINVAL; size below the struct: EINVAL
 *   RETRIEVE_SESSION  unknown name: ENOENT (always, also in the first boot);
 *                   a session already retrieved: EINVAL
 *   PRESERVE_FD     fd type without a handler (pipe, socket, linked tmpfs
 *                   file, hugetlb memfd on a stock kernel): ENOENT; bad fd:
 *                   EBADF; token already used in the session: EEXIST; the
 *                   same file again (any session, other token): EBUSY;
 *                   on an incoming session: EINVAL
 *   RETRIEVE_FD     unknown token: ENOENT; on an outgoing session: EINVAL;
 *                   retrieving a token twice gives the same file
 *   FINISH          on an outgoing session: EINVAL; reserved != 0: EINVAL
 */
#include "lib/scenario.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAIN	"errno-main"
#define S_EMPTY	"errno-empty-63-chars-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define TOKEN	1
#define DATA	"hello from generation 0"

_Static_assert(sizeof(S_EMPTY) == 64, "S_EMPTY must be 63 characters");

static void gen0(void)
{
	int luo, luo2, s, s2, s63, stmp, mfd, mfd2, fds[2], sv[2], tf, r;
	uint8_t raw[64];
	char name[64];

	luo = hl_luo_open();
	if (!hl_success(luo, errno, "open /dev/liveupdate"))
		hl_bail("cannot continue without /dev/liveupdate");
	luo2 = hl_luo_open();
	hl_errno(luo2, errno, EBUSY, "second open of /dev/liveupdate");

	s = hl_luo_create_session(luo, S_MAIN);
	hl_success(s, errno, "create session \"%s\"", S_MAIN);
	r = hl_luo_create_session(luo, S_MAIN);
	hl_errno(r, errno, EEXIST, "create duplicate session name");

	memset(raw, 0, sizeof(raw));
	r = hl_luo_create_session_raw(luo, raw);
	hl_errno(r, errno, EINVAL, "create session with empty name");
	memset(raw, 'x', sizeof(raw));
	r = hl_luo_create_session_raw(luo, raw);
	hl_errno(r, errno, EINVAL, "create session, name not NUL-terminated within 64 bytes");
	s63 = hl_luo_create_session(luo, S_EMPTY);
	hl_success(s63, errno, "create session with a 63-character name");
	if (s63 >= 0) {
		r = hl_luo_get_name(s63, name);
		hl_ok(r == 0 && !strcmp(name, S_EMPTY), "GET_NAME returns the 63-character name");
	}
	{
		struct liveupdate_ioctl_create_session a = { .size = 4 };

		r = ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &a);
		hl_errno(r, errno, EINVAL, "create session with size 4 (below the struct)");
	}

	r = hl_luo_retrieve_session(luo, S_MAIN);
	hl_errno(r, errno, ENOENT, "retrieve session in the first boot (nothing incoming)");
	r = hl_luo_retrieve_session(luo, "no-such-session");
	hl_errno(r, errno, ENOENT, "retrieve unknown session");

	/* fd types nobody can preserve */
	if (pipe(fds) == 0) {
		r = hl_luo_preserve_fd(s, fds[0], 100);
		hl_errno(r, errno, ENOENT, "preserve a pipe");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		r = hl_luo_preserve_fd(s, sv[0], 101);
		hl_errno(r, errno, ENOENT, "preserve a unix socket");
	}
	tf = open("/tmp/regular", O_RDWR | O_CREAT, 0600);
	if (tf >= 0) {
		r = write(tf, "x", 1);
		(void)r;
		r = hl_luo_preserve_fd(s, tf, 102);
		hl_errno(r, errno, ENOENT, "preserve a regular (linked) tmpfs file");
	}
	r = hl_luo_preserve_fd(s, 9999, 103);
	hl_errno(r, errno, EBADF, "preserve a closed fd number");

	/*
	 * Kernel fact: the memfd handler accepts any unlinked shmem file
	 * (shmem_file && !i_nlink), so an O_TMPFILE on tmpfs is preservable.
	 * Checked in a throw-away session that is closed (unpreserved) again.
	 */
	stmp = hl_luo_create_session(luo, "errno-tmpfile");
	tf = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (stmp >= 0 && tf >= 0) {
		r = hl_luo_preserve_fd(stmp, tf, 1);
		hl_success(r, errno, "O_TMPFILE tmpfs file is accepted by the memfd handler");
		close(stmp);
		close(tf);
	}

	mfd = hl_memfd("errno", 4096, 0);
	if (mfd < 0 || pwrite(mfd, DATA, sizeof(DATA), 0) != sizeof(DATA))
		hl_bail("memfd: %s", strerror(errno));
	r = hl_luo_preserve_fd(s, mfd, TOKEN);
	hl_success(r, errno, "preserve memfd with token %d", TOKEN);
	r = hl_luo_preserve_fd(s, mfd, TOKEN + 1);
	hl_errno(r, errno, EBUSY, "preserve the same memfd again with another token");
	mfd2 = hl_memfd("errno2", 4096, 0);
	r = hl_luo_preserve_fd(s, mfd2, TOKEN);
	hl_errno(r, errno, EEXIST, "preserve another memfd with a used token");
	s2 = hl_luo_create_session(luo, "errno-other");
	r = hl_luo_preserve_fd(s2, mfd, TOKEN);
	hl_errno(r, errno, EBUSY, "preserve a memfd already preserved by another session");
	close(s2);
	r = hl_luo_retrieve_fd(s, TOKEN);
	hl_errno(r, errno, EINVAL, "RETRIEVE_FD on an outgoing session");
	r = hl_luo_finish(s);
	hl_errno(r, errno, EINVAL, "FINISH on an outgoing session");

	/* Closing /dev/liveupdate does not drop sessions; reopen works. */
	close(luo);
	luo = hl_luo_open();
	hl_success(luo, errno, "reopen /dev/liveupdate after close");
	r = hl_luo_create_session(luo, S_MAIN);
	hl_errno(r, errno, EEXIST, "session survives closing /dev/liveupdate");

	if (hl_failures())
		return;
	hl_kexec_next_generation(NULL);
}

static void gen1(void)
{
	int luo, s, s63, mfd, mfd2, r;
	char buf[sizeof(DATA)];
	struct stat a, b;

	luo = hl_luo_open();
	if (!hl_success(luo, errno, "open /dev/liveupdate after kexec"))
		hl_bail("cannot continue");
	r = hl_luo_retrieve_session(luo, "no-such-session");
	hl_errno(r, errno, ENOENT, "retrieve unknown session after kexec");
	r = hl_luo_retrieve_session(luo, "errno-other");
	hl_errno(r, errno, ENOENT, "a session closed before kexec is not carried");
	s = hl_luo_retrieve_session(luo, S_MAIN);
	if (!hl_success(s, errno, "retrieve session \"%s\"", S_MAIN))
		return;
	r = hl_luo_retrieve_session(luo, S_MAIN);
	hl_errno(r, errno, EINVAL, "retrieve the same session twice");

	mfd2 = hl_memfd("errno3", 4096, 0);
	r = hl_luo_preserve_fd(s, mfd2, 7);
	hl_errno(r, errno, EINVAL, "PRESERVE_FD on an incoming session");
	r = hl_luo_retrieve_fd(s, 42);
	hl_errno(r, errno, ENOENT, "RETRIEVE_FD of an unknown token");
	mfd = hl_luo_retrieve_fd(s, TOKEN);
	if (hl_success(mfd, errno, "RETRIEVE_FD token %d", TOKEN)) {
		hl_ok(pread(mfd, buf, sizeof(buf), 0) == sizeof(buf) &&
		      !memcmp(buf, DATA, sizeof(DATA)), "memfd content carried");
		r = hl_luo_retrieve_fd(s, TOKEN);
		hl_ok(r >= 0 && !fstat(r, &a) && !fstat(mfd, &b) &&
		      a.st_ino == b.st_ino, "RETRIEVE_FD twice gives the same file");
	}
	{
		struct liveupdate_session_finish f = { .size = sizeof(f), .reserved = 1 };

		r = ioctl(s, LIVEUPDATE_SESSION_FINISH, &f);
		hl_errno(r, errno, EINVAL, "FINISH with reserved != 0");
	}
	hl_success(hl_luo_finish(s), errno, "FINISH session \"%s\"", S_MAIN);

	s63 = hl_luo_retrieve_session(luo, S_EMPTY);
	hl_success(s63, errno, "an empty session is carried too");
	if (s63 >= 0)
		hl_success(hl_luo_finish(s63), errno, "FINISH the empty session");
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
