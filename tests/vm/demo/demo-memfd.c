// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1536 timeout=150
 *
 * The `make demo` live update: a memfd (hugelive.demo_mib=, default 512 MiB)
 * filled with a per-word pattern is preserved through /dev/liveupdate, the
 * kernel is replaced by kexec, and the new kernel retrieves and verifies it.
 * A second small preserved memfd carries the time of the reboot(KEXEC) call
 * (TSC and CLOCK_REALTIME), so generation 1 can report how long it took from
 * the kexec call until the memory was back in a usable fd.
 *
 * "report:" lines are what vm/demo.sh prints.
 */
#include "../lib/scenario.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SESSION		"hugelive-demo"
#define TOKEN_DATA	1
#define TOKEN_STAMP	2
#define SEED		0xdeadbeefcafeULL

int main(void)
{
	uint64_t mib = (uint64_t)hl_param_ll("demo_mib", 512);
	uint64_t size = mib << 20;
	int luo, sess, mfd, sfd;
	struct hl_stamp *stamp, now;
	uint8_t *p;

	luo = hl_luo_open();
	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		uint64_t t0, t1;

		sess = hl_luo_create_session(luo, SESSION);
		mfd = hl_memfd("demo-data", size, 0);
		sfd = hl_memfd("demo-stamp", 4096, 0);
		if (sess < 0 || mfd < 0 || sfd < 0)
			hl_bail("setup: %s", strerror(errno));
		p = hl_map(mfd, size);
		stamp = hl_map(sfd, 4096);
		if (!p || !stamp)
			hl_bail("mmap: %s", strerror(errno));
		t0 = hl_now_ns(CLOCK_MONOTONIC);
		hl_pattern_fill(p, size, 0, SEED);
		t1 = hl_now_ns(CLOCK_MONOTONIC);
		hl_ok(true, "filled %llu MiB memfd in %.0f ms",
		      (unsigned long long)mib, (double)(t1 - t0) / 1e6);
		t0 = hl_now_ns(CLOCK_MONOTONIC);
		if (!hl_success(hl_luo_preserve_fd(sess, mfd, TOKEN_DATA), errno,
				"preserve data memfd"))
			return hl_exit();
		t1 = hl_now_ns(CLOCK_MONOTONIC);
		if (!hl_success(hl_luo_preserve_fd(sess, sfd, TOKEN_STAMP), errno,
				"preserve stamp memfd"))
			return hl_exit();
		hl_diag("preserve of %llu MiB took %.1f ms", (unsigned long long)mib,
			(double)(t1 - t0) / 1e6);
		/* The stamp is written into the preserved memfd just before reboot(). */
		hl_kexec_next_generation(stamp);
		return hl_exit();
	}

	/* Generation 1: the new kernel. */
	{
		uint64_t t_ret0, t_ret1, t_v0, t_v1, boot_ns;
		struct hl_mismatch m;
		struct hl_elapsed el;
		long long got;
		bool good;

		t_ret0 = hl_now_ns(CLOCK_MONOTONIC);
		sess = hl_luo_retrieve_session(luo, SESSION);
		if (sess < 0)
			hl_bail("retrieve session: %s", strerror(errno));
		mfd = hl_luo_retrieve_fd(sess, TOKEN_DATA);
		p = mfd >= 0 ? hl_map(mfd, size) : NULL;
		hl_stamp_now(&now);  /* memory restored: fd retrieved and mapped */
		boot_ns = hl_now_ns(CLOCK_BOOTTIME);
		t_ret1 = hl_now_ns(CLOCK_MONOTONIC);
		if (!p)
			hl_bail("retrieve/mmap data memfd: %s", strerror(errno));
		sfd = hl_luo_retrieve_fd(sess, TOKEN_STAMP);
		stamp = sfd >= 0 ? hl_map(sfd, 4096) : NULL;
		if (!stamp)
			hl_bail("retrieve stamp memfd: %s", strerror(errno));
		got = hl_fd_size(mfd);
		t_v0 = hl_now_ns(CLOCK_MONOTONIC);
		good = hl_pattern_verify(p, size, 0, SEED, &m);
		t_v1 = hl_now_ns(CLOCK_MONOTONIC);
		hl_ok(got == (long long)size, "retrieved size %lld", got);
		if (good)
			hl_ok(true, "%llu MiB verified word by word", (unsigned long long)mib);
		else
			hl_ok(false, "verification: first bad offset 0x%llx: expected "
			      "0x%016llx actual 0x%016llx; %llu bad words",
			      (unsigned long long)m.offset, (unsigned long long)m.expected,
			      (unsigned long long)m.actual, (unsigned long long)m.bad_words);
		hl_ok(stamp->magic == HL_STAMP_MAGIC, "kexec timestamp carried");
		hl_elapsed_since(stamp, &now, &el);
		hl_success(hl_luo_finish(sess), errno, "finish session");

		hl_report("preserved: %llu MiB shmem memfd (4 KiB pages) + 4 KiB stamp memfd, "
			  "session \"%s\"", (unsigned long long)mib, SESSION);
		hl_report("verification: %s (%llu words of %llu MiB checked in %.0f ms)%s",
			  good && got == (long long)size ? "PASS" : "FAIL",
			  (unsigned long long)(size / 8), (unsigned long long)mib,
			  (double)(t_v1 - t_v0) / 1e6, good ? "" : " see not-ok line");
		hl_report("time from reboot(KEXEC) call to memory restored: %.0f ms "
			  "(TSC, %.0f MHz); CLOCK_REALTIME says %.0f ms (+-1 s: RTC resolution)",
			  el.tsc_ms, hl_tsc_hz() / 1e6, el.realtime_ms);
		hl_report("  old kernel shutdown + kexec + new kernel until its clock starts: %.0f ms",
			  el.tsc_ms - (double)boot_ns / 1e6);
		hl_report("  new kernel boot + /init until memory restored: %.0f ms, of which "
			  "retrieve session + fd + mmap: %.1f ms",
			  (double)boot_ns / 1e6, (double)(t_ret1 - t_ret0) / 1e6);
	}
	return hl_exit();
}
