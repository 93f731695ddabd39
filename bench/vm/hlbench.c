// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive benchmark program, run in the VM as the scenario of a benchmark
 * chain (bench/run.sh writes the chain's metadata; this file has none).
 *
 * Live-update chains (hugelive.bplan=STEP,STEP,...; STEP = n | m:MiB |
 * h:MiB | g:MiB | H:MiB for nothing, a 4 KiB memfd, a 2 MiB and a 1 GiB
 * hugetlb memfd, and a 2 MiB hugetlb memfd retrieved with the vmemmap
 * optimization (HVO) switched off): generation g retrieves what generation g-1 preserved (step g-1),
 * measures, releases it, then preserves step g and kexecs. Every step
 * also preserves a 4 KiB "stamp" memfd that carries the TSC of the moments
 * before the kexec (client quiesced, kexec call) to the next kernel.
 *
 * hugelive.bagent=1 drives the update through hugelived (started by this
 * program with --daemonize in every generation): the data is preserved,
 * the update requested and the barrier answered over the agent protocol,
 * and the next generation retrieves through the agent.
 *
 * Disk baseline (hugelive.bmode=disk-write|disk-read, hugelive.bsizes=
 * MiB,MiB...): the same pattern written with O_DIRECT to /dev/vda at
 * consecutive offsets, read back and verified after a fresh boot.
 *
 * Output: "report: bench ..." lines of key=value pairs on the results port,
 * parsed by bench/collect.py. Times in ms, TSC-based where they cross the
 * kexec.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/reboot.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

extern char **environ;

#define SESSION		"bench"
#define TOK_DATA	1
#define TOK_STAMP	2
#define TOK_WARM	3
#define MAX_STEPS	64
#define HVO_SYSCTL	"/proc/sys/vm/hugetlb_optimize_vmemmap"

struct step {
	char kind;		/* n m h g H */
	uint64_t mib;
};

/* The stamp page, preserved next to the data. */
struct stamp_page {
	uint64_t magic;
	uint64_t step;
	uint64_t quiesce_tsc;	/* client stopped using the memory */
	uint64_t call_tsc;	/* reboot(LINUX_REBOOT_CMD_KEXEC) (direct) or
				   the agent's "rebooting" event (agent) */
	uint64_t call_src;	/* 1 direct, 2 agent event */
	double tsc_hz;		/* of the previous generation */
};
#define STAMP_MAGIC 0x48424e4348424e43ULL

static struct step steps[MAX_STEPS];
static int nsteps;
static bool agent_mode;
static double hz;

static uint64_t seed_of(int idx)
{
	return 0x5eed0000ULL + (uint64_t)idx * 7919;
}

/*
 * A per-4 KiB-page pattern: every word of the page at offset o holds
 * hl_pattern_word(o, seed). A zeroed, stale (other seed) or misplaced page
 * and any changed word are detected, and the loops are plain stores and
 * compares that even TCG runs quickly (the per-word hash of the scenario
 * library costs ~100 ns a word there, 27 s for 2 GiB).
 */
static void fill(void *buf, uint64_t len, uint64_t seed)
{
	for (uint64_t o = 0; o < len; o += 4096) {
		uint64_t v = hl_pattern_word(o, seed), *w = (uint64_t *)((char *)buf + o);

		for (int i = 0; i < 512; i++)
			w[i] = v;
	}
}

/* Number of bad pages; *first gets the offset of the first bad one. */
static uint64_t verify(const void *buf, uint64_t len, uint64_t seed, uint64_t *first)
{
	uint64_t bad = 0;

	for (uint64_t o = 0; o < len; o += 4096) {
		uint64_t v = hl_pattern_word(o, seed), acc = 0;
		const uint64_t *w = (const uint64_t *)((const char *)buf + o);

		for (int i = 0; i < 512; i++)
			acc |= w[i] ^ v;
		if (acc && !bad++)
			*first = o;
	}
	return bad;
}

static const char *kind_name(char k)
{
	switch (k) {
	case 'm': return "memfd4k";
	case 'h': return "hugetlb2m";
	case 'g': return "hugetlb1g";
	case 'H': return "hugetlb2m-nohvo";
	default: return "none";
	}
}

/*
 * Direct chains use a one-page 2 MiB hugetlb "warm-up" memfd for the hugetlb
 * kinds: preserved once in a throwaway session before the data fd, and
 * retrieved right before the data fd. The stamp memfd does the same for the
 * 4 KiB memfd path. So the data fd's preserve and retrieve are timed with
 * their kernel code already run once in this kernel, for every kind alike
 * (under TCG the first run of a code path after a kexec pays for its
 * translation). The retrieve totals with the session, stamp and warm-up fds
 * are reported too.
 */
static bool warm_kind(char k)
{
	return k == 'h' || k == 'H' || k == 'g';
}

static uint64_t page_of(char k)
{
	return k == 'h' || k == 'H' ? HL_2M : k == 'g' ? HL_1G : 4096;
}

static double ms(uint64_t t0, uint64_t t1)
{
	return (double)(int64_t)(t1 - t0) * 1e3 / hz;
}

static void parse_plan(void)
{
	const char *p = hl_param("bplan");

	if (!p)
		hl_bail("no hugelive.bplan");
	while (*p && nsteps < MAX_STEPS) {
		struct step *s = &steps[nsteps++];

		s->kind = *p;
		s->mib = 0;
		if (p[1] == ':')
			s->mib = strtoull(p + 2, NULL, 10);
		p = strchrnul(p, ',');
		if (*p)
			p++;
	}
}

/* Timestamp (us since boot) of the first kmsg record containing s, or -1. */
static long long kmsg_us(const char *s)
{
	static char *buf;
	static size_t len;
	char rec[2048];
	int fd;

	if (!buf) {
		fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
		if (fd < 0)
			return -1;
		buf = calloc(1, 1 << 20);
		for (;;) {
			ssize_t n = read(fd, rec, sizeof(rec) - 1);

			if (n < 0) {
				if (errno == EPIPE)
					continue;
				break;
			}
			if (len + (size_t)n + 1 >= (1 << 20))
				break;
			memcpy(buf + len, rec, (size_t)n);
			len += (size_t)n;
			buf[len] = 0;
		}
		close(fd);
	}
	for (char *l = buf; l && *l;) {
		char *nl = strchr(l, '\n');
		char *semi = strchr(l, ';');

		if (semi && (!nl || semi < nl)) {
			char save = nl ? *nl : 0;

			if (nl)
				*nl = 0;
			if (strstr(semi, s)) {
				unsigned long long a, b, us;

				if (nl)
					*nl = save;
				if (sscanf(l, "%llu,%llu,%llu", &a, &b, &us) == 3)
					return (long long)us;
				return -1;
			}
			if (nl)
				*nl = save;
		}
		l = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* ---- the next kernel ------------------------------------------------- */

static void next_cmdline(char *next, size_t sz)
{
	char cl[4096] = "";
	int fd = open("/proc/cmdline", O_RDONLY);
	size_t len = 0;
	char *save, *w;

	if (fd >= 0) {
		ssize_t n = read(fd, cl, sizeof(cl) - 1);

		cl[n > 0 ? n : 0] = 0;
		close(fd);
	}
	cl[strcspn(cl, "\n")] = 0;
	next[0] = 0;
	for (w = strtok_r(cl, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (!strncmp(w, "hugelive.gen=", 13))
			continue;
		len += (size_t)snprintf(next + len, sz - len, "%s ", w);
	}
	snprintf(next + len, sz - len, "hugelive.gen=%d", hl_gen() + 1);
}

static int kexec_load(void)
{
	char next[4096];
	int kfd = open("/boot/bzImage", O_RDONLY | O_CLOEXEC);
	int ifd = open(getenv("HUGELIVE_NEXT_INITRD") ?: "/tmp/next-initrd.cpio",
		       O_RDONLY | O_CLOEXEC);

	next_cmdline(next, sizeof(next));
	if (kfd < 0 || ifd < 0)
		return -1;
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next, 0UL))
		return -1;
	close(kfd);
	close(ifd);
	return 0;
}

/* ---- a minimal hugelived client (userspace/docs/protocol.md) ---------- */

static int ag_fd = -1;
static int ag_id;

static void squeeze(char *s)
{
	char *d = s;
	bool q = false;

	for (; *s; s++) {
		if (*s == '"')
			q = !q;
		if (!q && (*s == ' ' || *s == '\n' || *s == '\t'))
			continue;
		*d++ = *s;
	}
	*d = 0;
}

static int ag_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/run/hugelive/agent.sock");
	ag_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ag_fd < 0 || connect(ag_fd, (struct sockaddr *)&sa, sizeof(sa)))
		return -1;
	return 0;
}

static int ag_send(const char *json, int fd)
{
	struct iovec iov = { (void *)json, strlen(json) };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(ag_fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* One packet (squeezed JSON) into buf; *fd gets a passed fd or -1. */
static int ag_recv(char *buf, size_t sz, int *fd)
{
	struct iovec iov = { buf, sz - 1 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(ag_fd, &mh, MSG_CMSG_CLOEXEC);
	struct cmsghdr *c;

	if (fd)
		*fd = -1;
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_type == SCM_RIGHTS && fd)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	squeeze(buf);
	return 0;
}

/* Request (fmt is the part after "op"), wait for its reply; 0 if ok. */
static int ag_call(int sendfd, int *recvfd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ag_call(int sendfd, int *recvfd, const char *fmt, ...)
{
	char req[1024], rest[900], buf[65536], want[32];
	va_list ap;
	int id = ++ag_id;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	snprintf(req, sizeof(req), "{\"v\":1,\"id\":%d,%s}", id, rest);
	if (ag_send(req, sendfd))
		return -1;
	snprintf(want, sizeof(want), "\"id\":%d,", id);
	for (;;) {
		int fd;

		if (ag_recv(buf, sizeof(buf), &fd))
			return -1;
		if (!strstr(buf, want)) {
			if (fd >= 0)
				close(fd);
			continue;	/* an event */
		}
		if (recvfd)
			*recvfd = fd;
		else if (fd >= 0)
			close(fd);
		if (strstr(buf, "\"ok\":true"))
			return 0;
		hl_diag("agent: %s -> %s", req, buf);
		return -1;
	}
}

static uint64_t start_agent(void)
{
	char *argv[] = { "hugelived", "--daemonize", "--fd-store", "none",
			 "--claim-timeout", "3600", "-q", NULL };
	pid_t pid;
	int st;

	if (posix_spawnp(&pid, "hugelived", NULL, NULL, argv, environ))
		hl_bail("spawn hugelived: %s", strerror(errno));
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		hl_bail("hugelived --daemonize failed (status %d)", st);
	if (ag_connect())
		hl_bail("connect to hugelived: %s", strerror(errno));
	return __rdtsc();
}

/* ---- retrieve side ------------------------------------------------------ */

struct boot_info {
	uint64_t prog_tsc;	/* this program started */
	uint64_t prog_boot_ns;	/* CLOCK_BOOTTIME then */
	long long init_us;	/* "Run /init" in kmsg */
	uint64_t agent_tsc;
};

static void retrieve_step(int luo, int idx, const struct boot_info *bi)
{
	const struct step *st = &steps[idx];
	uint64_t size = st->mib << 20, psz = page_of(st->kind);
	uint64_t t0, t_d0, t_ret, t_map, t_touch, t_read, t_fin;
	long long rf0 = hl_luo_stat("restored_folios");
	long long hvo0 = hl_luo_stat("restored_hvo_folios");
	long long sp0 = hl_luo_stat("restored_struct_pages");
	long long lk0 = hl_luo_stat("restored_locks");
	uint64_t tw0 = 0, tw1 = 0;
	int sess = -1, sfd = -1, dfd = -1, wfd = -1;
	struct stamp_page *sp, spc;
	uint8_t *p = NULL;
	struct hl_mismatch mm;
	bool good = true;

	if (st->kind == 'H' && hl_write_str(HVO_SYSCTL, "0"))
		hl_bail("%s=0: %s", HVO_SYSCTL, strerror(errno));
	t0 = __rdtsc();
	if (agent_mode) {
		if (ag_call(-1, &sfd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d",
			    SESSION, TOK_STAMP))
			hl_bail("agent retrieve stamp");
		t_d0 = __rdtsc();
		if (st->kind != 'n' &&
		    ag_call(-1, &dfd, "\"op\":\"retrieve\",\"session\":\"%s\",\"token\":%d",
			    SESSION, TOK_DATA))
			hl_bail("agent retrieve data");
	} else {
		sess = hl_luo_retrieve_session(luo, SESSION);
		if (sess < 0)
			hl_bail("retrieve session: %s", strerror(errno));
		sfd = hl_luo_retrieve_fd(sess, TOK_STAMP);
		if (warm_kind(st->kind)) {
			wfd = hl_luo_retrieve_fd(sess, TOK_WARM);
			if (wfd < 0)
				hl_bail("retrieve warm-up fd: %s", strerror(errno));
			/* The counters cover the data fd alone; reading them is not timed. */
			tw0 = __rdtsc();
			rf0 = hl_luo_stat("restored_folios");
			hvo0 = hl_luo_stat("restored_hvo_folios");
			sp0 = hl_luo_stat("restored_struct_pages");
			lk0 = hl_luo_stat("restored_locks");
			tw1 = __rdtsc();
		}
		t_d0 = __rdtsc();
		if (st->kind != 'n')
			dfd = hl_luo_retrieve_fd(sess, TOK_DATA);
	}
	t_ret = __rdtsc();
	if (st->kind == 'H')
		hl_write_str(HVO_SYSCTL, "1");
	if (sfd < 0 || (st->kind != 'n' && dfd < 0))
		hl_bail("retrieve fds: %s", strerror(errno));
	if (st->kind != 'n') {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 0);
		if (p == MAP_FAILED)
			hl_bail("mmap retrieved: %s", strerror(errno));
	}
	t_map = __rdtsc();
	/* Mapped again: every page of the file in the page tables. */
	if (p) {
		volatile uint8_t sink = 0;

		for (uint64_t off = 0; off < size; off += psz)
			sink ^= p[off];
		(void)sink;
	}
	t_touch = __rdtsc();
	if (p) {
		mm.bad_words = verify(p, size, seed_of(idx), &mm.offset);
		good = mm.bad_words == 0;
	}
	t_read = __rdtsc();

	sp = mmap(NULL, 4096, PROT_READ, MAP_SHARED, sfd, 0);
	if (sp == MAP_FAILED)
		hl_bail("mmap stamp: %s", strerror(errno));
	spc = *sp;
	munmap(sp, 4096);
	if (p)
		munmap(p, size);
	close(sfd);
	if (wfd >= 0)
		close(wfd);
	if (dfd >= 0)
		close(dfd);
	{
		long long rf1 = hl_luo_stat("restored_folios");
		long long hvo1 = hl_luo_stat("restored_hvo_folios");
		long long sp1 = hl_luo_stat("restored_struct_pages");
		long long lk1 = hl_luo_stat("restored_locks");
		uint64_t tf0;

		/* Calibration sleeps 100 ms: only after the timed part. */
		if (!hz)
			hz = hl_tsc_hz();
		tf0 = __rdtsc();

		if (agent_mode) {
			if (ag_call(-1, NULL, "\"op\":\"finish\",\"session\":\"%s\"", SESSION))
				hl_bail("agent finish");
		} else if (hl_luo_finish(sess) < 0) {
			hl_bail("finish: %s", strerror(errno));
		}
		t_fin = __rdtsc();
		if (sess >= 0)
			close(sess);

		if (!hl_ok(spc.magic == STAMP_MAGIC && spc.step == (uint64_t)idx,
			   "step %d (%s %llu MiB): stamp page came back", idx,
			   kind_name(st->kind), (unsigned long long)st->mib))
			return;
		if (p && !hl_ok(good, "step %d: %llu MiB verified after retrieve", idx,
				(unsigned long long)st->mib))
			hl_diag("first bad page at 0x%llx (%llu bad pages)",
				(unsigned long long)mm.offset,
				(unsigned long long)mm.bad_words);

		/* Kernel entry on the TSC: now minus time since boot. */
		uint64_t entry_tsc = bi->prog_tsc - (uint64_t)((double)bi->prog_boot_ns * hz / 1e9);
		/* Reading the counters between the warm-up and the data fd is not timed. */
		double untimed = ms(tw0, tw1);
		double init_ms = bi->init_us >= 0 ? (double)bi->init_us / 1e3 : -1;
		double prog_ms = (double)bi->prog_boot_ns / 1e6;
		uint64_t ready_tsc = agent_mode ? bi->agent_tsc : bi->prog_tsc;

		hl_report("bench mode=%s step=%d kind=%s mib=%llu rep_key=%s:%llu "
			  "retrieve_ms=%.3f retrieve_fd_ms=%.3f map_ms=%.3f touch_ms=%.3f read_ms=%.3f finish_ms=%.3f "
			  "quiesce_to_call_ms=%.3f call_to_entry_ms=%.3f entry_to_init_ms=%.3f "
			  "init_to_prog_ms=%.3f prog_to_ready_ms=%.3f ready_to_mapped_ms=%.3f "
			  "blackout_ms=%.3f blackout_read_ms=%.3f restored_folios=%lld restored_hvo=%lld "
			  "struct_pages=%lld pool_locks=%lld "
			  "call_src=%llu prev_hz=%.0f hz=%.0f",
			  agent_mode ? "agent" : "direct", idx, kind_name(st->kind),
			  (unsigned long long)st->mib, kind_name(st->kind),
			  (unsigned long long)st->mib,
			  ms(t0, t_ret) - untimed, ms(t_d0, t_ret), ms(t_ret, t_map), ms(t_map, t_touch),
			  ms(t_touch, t_read), ms(tf0, t_fin),
			  ms(spc.quiesce_tsc, spc.call_tsc), ms(spc.call_tsc, entry_tsc),
			  init_ms, init_ms >= 0 ? prog_ms - init_ms : -1,
			  ms(bi->prog_tsc, ready_tsc), ms(ready_tsc, t_touch) - untimed,
			  ms(spc.quiesce_tsc, t_touch) - untimed,
			  ms(spc.quiesce_tsc, t_read) - untimed,
			  rf1 - rf0, hvo1 - hvo0, sp1 - sp0, lk0 < 0 || lk1 < 0 ? -1LL : lk1 - lk0,
			  (unsigned long long)spc.call_src,
			  spc.tsc_hz, hz);
	}
}

/* ---- preserve side ------------------------------------------------------ */

static int make_data(const struct step *st)
{
	uint64_t size = st->mib << 20;

	switch (st->kind) {
	case 'm': return hl_memfd("bench-data", size, 0);
	case 'h':
	case 'H': return hl_hugetlb_memfd("bench-data", HL_2M, size);
	case 'g': return hl_hugetlb_memfd("bench-data", HL_1G, size);
	}
	return -1;
}

/* Upstream memfd-v2 ABI: 48-byte memfd_luo_ser + 16 bytes per folio. */
#define MEMFD_SER_BYTES		48
#define FOLIO_SER_BYTES		16

static void preserve_step(int luo, int idx, volatile struct stamp_page **spp)
{
	const struct step *st = &steps[idx];
	uint64_t size = st->mib << 20;
	int sess = -1, sfd, dfd = -1, wfd = -1;
	struct stamp_page *sp;
	uint64_t tf0, tf1, tp0, tp1, ts0, ts1;
	long long pf0, mb0, pf1, mb1;
	uint8_t *p;

	if (!hz)
		hz = hl_tsc_hz();
	sfd = hl_memfd("bench-stamp", 4096, 0);
	if (sfd < 0)
		hl_bail("stamp memfd: %s", strerror(errno));
	sp = hl_map(sfd, 4096);
	if (!sp)
		hl_bail("map stamp: %s", strerror(errno));
	memset(sp, 0, sizeof(*sp));
	sp->magic = STAMP_MAGIC;
	sp->step = (uint64_t)idx;
	sp->tsc_hz = hz;

	tf0 = tf1 = __rdtsc();
	if (st->kind != 'n') {
		dfd = make_data(st);
		if (dfd < 0)
			hl_bail("step %d: create %s %llu MiB: %s", idx, kind_name(st->kind),
				(unsigned long long)st->mib, strerror(errno));
		p = hl_map(dfd, size);
		if (!p)
			hl_bail("map data: %s", strerror(errno));
		tf0 = __rdtsc();
		fill(p, size, seed_of(idx));
		tf1 = __rdtsc();
		munmap(p, size);
	}

	pf0 = hl_luo_stat("preserved_folios");
	mb0 = hl_luo_stat("metadata_bytes");
	if (agent_mode) {
		tp0 = __rdtsc();
		if (ag_call(-1, NULL, "\"op\":\"create\",\"session\":\"%s\"", SESSION))
			hl_bail("agent create");
		ts0 = __rdtsc();
		if (ag_call(sfd, NULL, "\"op\":\"preserve\",\"session\":\"%s\",\"token\":%d",
			    SESSION, TOK_STAMP))
			hl_bail("agent preserve stamp");
		ts1 = __rdtsc();
		if (dfd >= 0 &&
		    ag_call(dfd, NULL, "\"op\":\"preserve\",\"session\":\"%s\",\"token\":%d",
			    SESSION, TOK_DATA))
			hl_bail("agent preserve data");
		tp1 = __rdtsc();
		tp0 = ts1;
		(void)ts0;
	} else {
		if (warm_kind(st->kind)) {
			uint8_t *w;
			int ws;

			wfd = hl_hugetlb_memfd("bench-warm", HL_2M, HL_2M);
			w = wfd < 0 ? NULL : hl_map(wfd, HL_2M);
			if (!w)
				hl_bail("warm-up memfd: %s", strerror(errno));
			w[0] = 1;
			munmap(w, HL_2M);
			/*
			 * Run the preserve path once in a throwaway session;
			 * closing it unpreserves the file, so the data fd's
			 * preserve below is the first of the update again and
			 * its metadata includes the per-update pool table.
			 */
			ws = hl_luo_create_session(luo, "bench-warm");
			if (ws < 0 || hl_luo_preserve_fd(ws, wfd, TOK_WARM) < 0)
				hl_bail("preserve warm-up: %s", strerror(errno));
			close(ws);
			pf0 = hl_luo_stat("preserved_folios");
			mb0 = hl_luo_stat("metadata_bytes");
		}
		sess = hl_luo_create_session(luo, SESSION);
		if (sess < 0)
			hl_bail("create session: %s", strerror(errno));
		if (hl_luo_preserve_fd(sess, sfd, TOK_STAMP) < 0)
			hl_bail("preserve stamp: %s", strerror(errno));
		tp0 = __rdtsc();
		if (dfd >= 0 && hl_luo_preserve_fd(sess, dfd, TOK_DATA) < 0)
			hl_bail("step %d: preserve data: %s", idx, strerror(errno));
		tp1 = __rdtsc();
	}
	pf1 = hl_luo_stat("preserved_folios");
	mb1 = hl_luo_stat("metadata_bytes");
	/* Preserved for the warm-up at retrieve; not counted above. */
	if (wfd >= 0 && hl_luo_preserve_fd(sess, wfd, TOK_WARM) < 0)
		hl_bail("preserve warm-up: %s", strerror(errno));

	long long entries, meta;

	if (st->kind == 'm') {
		entries = (long long)(size / 4096);
		meta = MEMFD_SER_BYTES + FOLIO_SER_BYTES * entries;
	} else if (st->kind == 'n') {
		entries = 0;
		meta = 0;
	} else {
		entries = pf1 - pf0;
		meta = mb1 - mb0;
	}
	hl_report("bench-preserve mode=%s step=%d kind=%s mib=%llu fill_ms=%.3f preserve_ms=%.3f "
		  "entries=%lld meta_bytes=%lld meta_src=%s luo_meta_total=%lld luo_folios_total=%lld",
		  agent_mode ? "agent" : "direct", idx, kind_name(st->kind),
		  (unsigned long long)st->mib, ms(tf0, tf1), ms(tp0, tp1), entries, meta,
		  st->kind == 'm' ? "abi" : "debugfs", mb1, pf1);
	/* The fds (and the session) stay open until the kexec. */
	*spp = sp;
}

/* A line in the kernel log (and so on the console, with the old kernel's
 * printk time) right before the kexec call: bench/collect.py measures the
 * kernel's kexec path up to "Starting new kernel" from it. */
static void kmsg_mark(void)
{
	int fd = open("/dev/kmsg", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "hlbench: kexec call\n", 20) < 0) {
			/* no marker then */
		}
		close(fd);
	}
}

static void direct_kexec(volatile struct stamp_page *sp)
{
	if (kexec_load())
		hl_bail("kexec_file_load: %s", strerror(errno));
	fflush(stdout);
	kmsg_mark();
	sp->quiesce_tsc = __rdtsc();
	sp->call_src = 1;
	sp->call_tsc = __rdtsc();
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		LINUX_REBOOT_CMD_KEXEC, NULL);
	hl_bail("reboot(KEXEC): %s", strerror(errno));
}

static void agent_kexec(volatile struct stamp_page *sp)
{
	char next[4096], buf[65536];
	int id;

	next_cmdline(next, sizeof(next));
	if (ag_call(-1, NULL, "\"op\":\"subscribe\""))
		hl_bail("agent subscribe");
	id = ++ag_id;
	snprintf(buf, sizeof(buf),
		 "{\"v\":1,\"id\":%d,\"op\":\"update\",\"kernel\":\"/boot/bzImage\","
		 "\"initrd\":\"%s\",\"cmdline\":\"%s\",\"timeout_ms\":600000}", id,
		 getenv("HUGELIVE_NEXT_INITRD") ?: "/tmp/next-initrd.cpio", next);
	fflush(stdout);
	if (ag_send(buf, -1))
		hl_bail("agent update: %s", strerror(errno));
	for (;;) {
		char *u;

		if (ag_recv(buf, sizeof(buf), NULL))
			hl_bail("agent connection closed before the kexec");
		if (strstr(buf, "\"event\":\"prepare\"")) {
			/* Quiesce: nothing more to do, the data is preserved. */
			sp->quiesce_tsc = __rdtsc();
			kmsg_mark();
			u = strstr(buf, "\"update\":");
			if (!u)
				hl_bail("prepare without update id");
			snprintf(buf, sizeof(buf), "{\"v\":1,\"id\":%d,\"op\":\"ready\",\"update\":%lld}",
				 ++ag_id, strtoll(u + 9, NULL, 10));
			if (ag_send(buf, -1))
				hl_bail("agent ready: %s", strerror(errno));
		} else if (strstr(buf, "\"stage\":\"kexec\"") && strstr(buf, "rebooting")) {
			sp->call_tsc = __rdtsc();
			sp->call_src = 2;
		} else if (strstr(buf, "\"ok\":false")) {
			hl_bail("agent: %s", buf);
		}
	}
}

/* ---- disk baseline ------------------------------------------------------ */

#define CHUNK (4ULL << 20)

static void disk(bool write_side)
{
	const char *p = hl_param("bsizes");
	int fd = open("/dev/vda", (write_side ? O_RDWR : O_RDONLY) | O_DIRECT);
	uint64_t off = 0;
	int idx = 0;

	if (fd < 0)
		hl_bail("open /dev/vda: %s", strerror(errno));
	while (p && *p) {
		uint64_t mib = strtoull(p, NULL, 10), size = mib << 20;
		uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		uint64_t t0, t1, t2;

		if (buf == MAP_FAILED)
			hl_bail("buffer: %s", strerror(errno));
		if (write_side) {
			fill(buf, size, seed_of(idx));
			t0 = __rdtsc();
			for (uint64_t o = 0; o < size; o += CHUNK)
				if (pwrite(fd, buf + o, CHUNK, (off_t)(off + o)) != (ssize_t)CHUNK)
					hl_bail("pwrite: %s", strerror(errno));
			if (fdatasync(fd))
				hl_bail("fdatasync: %s", strerror(errno));
			t1 = __rdtsc();
			hz = hl_tsc_hz();
			hl_ok(true, "disk: saved %llu MiB", (unsigned long long)mib);
			hl_report("bench-disk side=save kind=disk mib=%llu save_ms=%.3f",
				  (unsigned long long)mib, ms(t0, t1));
		} else {
			uint64_t first = 0;

			t0 = __rdtsc();
			for (uint64_t o = 0; o < size; o += CHUNK)
				if (pread(fd, buf + o, CHUNK, (off_t)(off + o)) != (ssize_t)CHUNK)
					hl_bail("pread: %s", strerror(errno));
			t1 = __rdtsc();
			bool good = verify(buf, size, seed_of(idx), &first) == 0;
			t2 = __rdtsc();
			hz = hl_tsc_hz();
			hl_ok(good, "disk: %llu MiB read back and verified", (unsigned long long)mib);
			hl_report("bench-disk side=load kind=disk mib=%llu load_ms=%.3f read_ms=%.3f",
				  (unsigned long long)mib, ms(t0, t1), ms(t1, t2));
		}
		munmap(buf, size);
		off += size;
		idx++;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	close(fd);
}

int main(void)
{
	struct boot_info bi = { 0 };
	volatile struct stamp_page *sp = NULL;
	const char *mode = hl_param("bmode");
	int luo = -1, g = hl_gen();

	bi.prog_tsc = __rdtsc();
	bi.prog_boot_ns = hl_now_ns(CLOCK_BOOTTIME);

	if (mode && !strncmp(mode, "disk-", 5)) {
		hl_report("bench-disk side=boot prog_boot_ms=%.3f init_ms=%.3f",
			  (double)bi.prog_boot_ns / 1e6, (double)kmsg_us("Run /init as init process") / 1e3);
		disk(!strcmp(mode, "disk-write"));
		return hl_exit();
	}

	agent_mode = hl_param_ll("bagent", 0) != 0;
	parse_plan();
	if (hl_generations() != nsteps + 1)
		hl_bail("plan has %d steps but %d generations", nsteps, hl_generations());

	if (agent_mode) {
		bi.agent_tsc = start_agent();
	} else {
		luo = hl_luo_open();
		if (luo < 0)
			hl_bail("open /dev/liveupdate: %s", strerror(errno));
	}
	bi.init_us = kmsg_us("Run /init as init process");
	if (g > 0)
		retrieve_step(luo, g - 1, &bi);
	if (g < nsteps) {
		preserve_step(luo, g, &sp);
		if (agent_mode)
			agent_kexec(sp);
		else
			direct_kexec(sp);
	}
	return hl_exit();
}
