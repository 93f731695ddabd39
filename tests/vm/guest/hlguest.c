// SPDX-License-Identifier: GPL-2.0
/*
 * hlguest: the workload of the nested guest (a VM run by hugelive-vm inside
 * the test VM). It shows from inside the guest that the machine never
 * stopped being the same one across a live update of its host's kernel.
 *
 *  - fills most of its RAM (hlguest.mib=N on the kernel command line, else
 *    75% of MemAvailable) with a per-page pattern: every 64-bit word of page
 *    p is a hash of (seed, p, word index, version[p]); the seed comes from
 *    the boot id, so another boot could not reproduce it;
 *  - every tick (hlguest.tick_ms, default 500) increments a counter,
 *    rewrites one page with the next version and keeps a running checksum
 *    of all pages up to date incrementally, then prints a heartbeat:
 *      hlguest: hb boot=<boot id> n=<counter> mono=<s> csum=<hex>
 *    (mono: CLOCK_MONOTONIC, the guest's own uptime clock);
 *  - every hlguest.sweep_ticks ticks (default 8) sweeps all of RAM: every
 *    word of every page against its expected value and the sum of all pages
 *    against the running checksum:
 *      hlguest: sweep <k> ok pages=<N> mib=<M> n=<first>..<last> csum=<hex> ms=<t>
 *      hlguest: sweep <k> BAD page=<p> word=<w> expected=<x> actual=<y> bad_pages=<b>
 *  - "hlguest: verify-now" on the console's input (a line "v") makes the
 *    next tick sweep at once.
 *
 * A host-side reader (tests/vm/lib/vmguest.h) checks the lines: the same
 * boot id throughout, the counter continuing by one, the guest's clock
 * never going back, and sweeps made after the update passing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096UL
#define WORDS		(PAGE / 8)

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t seed;

static inline uint64_t word_of(uint64_t page, uint64_t w, uint32_t version)
{
	/* never 0: a page of zeroes (lost memory) cannot pass */
	return mix(seed ^ (page * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)version << 40) ^ w) | 1;
}

/* Fill page p with version v; returns its sum. */
static uint64_t fill_page(uint64_t *pg, uint64_t p, uint32_t v)
{
	uint64_t s = 0;

	for (uint64_t w = 0; w < WORDS; w++) {
		pg[w] = word_of(p, w, v);
		s += pg[w];
	}
	return s;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long cmdline_ll(const char *key, long long dflt)
{
	char buf[4096], *p;
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f)
		return dflt;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	for (p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtoll(p + kl + 1, NULL, 0);
	return dflt;
}

static long long meminfo_kb(const char *key)
{
	char line[256];
	long long v = -1;
	size_t kl = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

int main(void)
{
	char boot[64] = "";
	long long mib = cmdline_ll("hlguest.mib", 0);
	long tick_ms = (long)cmdline_ll("hlguest.tick_ms", 500);
	long sweep_ticks = (long)cmdline_ll("hlguest.sweep_ticks", 8);
	uint64_t npages, counter = 0, csum = 0, sweep_no = 0, sweep_from = 0;
	uint32_t *version;
	uint8_t *mem;
	double t0;
	bool want_sweep = false;
	FILE *f;

	setvbuf(stdout, NULL, _IOLBF, 0);
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f || !fgets(boot, sizeof(boot), f)) {
		/* no sysctl: an id of our own (still new at every boot) */
		int r = open("/dev/urandom", O_RDONLY);
		uint64_t a = 0, b = 0;

		if (r >= 0) {
			if (read(r, &a, 8) != 8 || read(r, &b, 8) != 8)
				a ^= (uint64_t)time(NULL);
			close(r);
		}
		snprintf(boot, sizeof(boot), "%016" PRIx64 "%016" PRIx64, a, b);
	}
	if (f)
		fclose(f);
	boot[strcspn(boot, "\n")] = 0;
	for (char *c = boot; *c; c++)
		seed = seed * 131 + (uint8_t)*c;
	seed = mix(seed);

	if (mib <= 0) {
		long long avail = meminfo_kb("MemAvailable");

		mib = avail > 0 ? avail * 3 / 4 / 1024 : 64;
	}
	npages = (uint64_t)mib * (1 << 20) / PAGE;
	version = calloc(npages, sizeof(*version));
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		   -1, 0);
	if (!version || mem == MAP_FAILED) {
		printf("hlguest: FAIL cannot allocate %lld MiB: %s\n", mib, strerror(errno));
		return 1;
	}
	printf("hlguest: start boot=%s mib=%lld pages=%" PRIu64 " memtotal_kb=%lld tick_ms=%ld\n", boot, mib,
	       npages, meminfo_kb("MemTotal"), tick_ms);
	t0 = mono();
	for (uint64_t p = 0; p < npages; p++)
		csum += fill_page((uint64_t *)(mem + p * PAGE), p, 0);
	printf("hlguest: filled %lld MiB in %.0f ms csum=%016" PRIx64 "\n", mib, (mono() - t0) * 1e3, csum);

	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		uint64_t p, *pg, old = 0;

		if (poll(&pfd, 1, (int)tick_ms) > 0) {
			char in[64];
			ssize_t n = read(STDIN_FILENO, in, sizeof(in));

			if (n > 0 && memchr(in, 'v', (size_t)n)) {
				printf("hlguest: verify-now\n");
				want_sweep = true;
			}
		}
		counter++;
		p = counter % npages;
		pg = (uint64_t *)(mem + p * PAGE);
		for (uint64_t w = 0; w < WORDS; w++)
			old += pg[w];
		csum = csum - old + fill_page(pg, p, ++version[p]);
		printf("hlguest: hb boot=%s n=%" PRIu64 " mono=%.3f csum=%016" PRIx64 "\n", boot, counter, mono(),
		       csum);

		if (!want_sweep && (sweep_ticks <= 0 || counter % (uint64_t)sweep_ticks))
			continue;
		want_sweep = false;
		sweep_no++;
		sweep_from = counter;
		t0 = mono();
		uint64_t sum = 0, bad_pages = 0, bp = 0, bw = 0, be = 0, ba = 0;

		for (p = 0; p < npages; p++) {
			uint64_t *q = (uint64_t *)(mem + p * PAGE);
			bool bad = false;

			for (uint64_t w = 0; w < WORDS; w++) {
				uint64_t e = word_of(p, w, version[p]);

				sum += q[w];
				if (q[w] != e && !bad) {
					bad = true;
					if (!bad_pages) {
						bp = p, bw = w, be = e, ba = q[w];
					}
				}
			}
			bad_pages += bad;
		}
		if (bad_pages)
			printf("hlguest: sweep %" PRIu64 " BAD page=%" PRIu64 " word=%" PRIu64 " expected=%016" PRIx64
			       " actual=%016" PRIx64 " bad_pages=%" PRIu64 "\n", sweep_no, bp, bw, be, ba, bad_pages);
		else if (sum != csum)
			printf("hlguest: sweep %" PRIu64 " BAD csum running=%016" PRIx64 " summed=%016" PRIx64 "\n",
			       sweep_no, csum, sum);
		else
			printf("hlguest: sweep %" PRIu64 " ok pages=%" PRIu64 " mib=%lld n=%" PRIu64 "..%" PRIu64
			       " csum=%016" PRIx64 " ms=%.0f\n", sweep_no, npages, mib, sweep_from, counter, csum,
			       (mono() - t0) * 1e3);
	}
}
