// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=1024 timeout=240
 *
 * A 256 MiB memfd filled with a per-word pattern is preserved and carried
 * across three generations. Every generation after the first verifies every
 * word, finishes the incoming session, preserves the memfd again in a new
 * session, and rewrites two regions with a new seed (one before, one after
 * PRESERVE_FD: writes after preserve must be carried too). The verifier
 * knows which seed every region holds. The last generation finishes.
 *
 * Test switch: hugelive.corrupt=1 (CORRUPT=1 for the runner) flips one word
 * at CORRUPT_OFFSET (or hugelive.corrupt_offset=) after retrieve; the
 * scenario must then fail naming that offset.
 */
#include "lib/scenario.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE		(256ULL << 20)
#define NREGIONS	16
#define REGION		(SIZE / NREGIONS)
#define TOKEN		0x3167656eULL
#define SESSION		"memfd-3gen"
#define CORRUPT_OFFSET	0x7654320ULL

static uint64_t seed_of_gen(int g)
{
	return 0x5eed0000ULL + (uint64_t)g;
}

/* Regions generation g (>= 1) rewrites: one before, one after preserve. */
static int rewrite_before(int g) { return (g * 5) % NREGIONS; }
static int rewrite_after(int g) { return (g * 5 + 3) % NREGIONS; }

/* The seed region r holds once generation g is done writing. */
static uint64_t region_seed(int r, int g)
{
	for (int h = g; h >= 1; h--)
		if (rewrite_before(h) == r || rewrite_after(h) == r)
			return seed_of_gen(h);
	return seed_of_gen(0);
}

static void verify_all(const uint8_t *p, int written_by_gen)
{
	struct hl_mismatch m, first = { 0 };
	uint64_t bad = 0;
	int bad_region = -1;

	for (int r = 0; r < NREGIONS; r++) {
		uint64_t off = (uint64_t)r * REGION;

		if (!hl_pattern_verify(p + off, REGION, off,
				       region_seed(r, written_by_gen), &m)) {
			if (!bad) {
				first = m;
				bad_region = r;
			}
			bad += m.bad_words;
		}
	}
	if (bad)
		hl_ok(false, "256 MiB verified word by word: first bad offset 0x%llx "
		      "(region %d): expected 0x%016llx actual 0x%016llx; %llu bad words",
		      (unsigned long long)first.offset, bad_region,
		      (unsigned long long)first.expected,
		      (unsigned long long)first.actual, (unsigned long long)bad);
	else
		hl_ok(true, "256 MiB verified word by word (%d regions, seeds as of gen %d)",
		      NREGIONS, written_by_gen);
}

static void fill_region(uint8_t *p, int r, int g)
{
	uint64_t off = (uint64_t)r * REGION;

	hl_pattern_fill(p + off, REGION, off, seed_of_gen(g));
}

int main(void)
{
	int g = hl_gen();
	int luo, sess, mfd;
	uint8_t *p;

	luo = hl_luo_open();
	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (g == 0) {
		mfd = hl_memfd("hugelive-3gen", SIZE, 0);
		if (mfd < 0)
			hl_bail("memfd_create 256 MiB: %s", strerror(errno));
		p = hl_map(mfd, SIZE);
		if (!p)
			hl_bail("mmap: %s", strerror(errno));
		for (int r = 0; r < NREGIONS; r++)
			fill_region(p, r, 0);
		hl_ok(true, "256 MiB memfd filled (seed 0x%llx)",
		      (unsigned long long)seed_of_gen(0));
	} else {
		long long size;

		sess = hl_luo_retrieve_session(luo, SESSION);
		if (sess < 0)
			hl_bail("retrieve session %s: %s", SESSION, strerror(errno));
		mfd = hl_luo_retrieve_fd(sess, TOKEN);
		if (mfd < 0)
			hl_bail("retrieve fd token 0x%llx: %s",
				(unsigned long long)TOKEN, strerror(errno));
		size = hl_fd_size(mfd);
		hl_ok(size == (long long)SIZE, "retrieved memfd size %lld", size);
		if (size != (long long)SIZE)
			return hl_exit();
		p = hl_map(mfd, SIZE);
		if (!p)
			hl_bail("mmap retrieved memfd: %s", strerror(errno));
		if (hl_param("corrupt") && hl_param_ll("corrupt", 0)) {
			uint64_t off = (uint64_t)hl_param_ll("corrupt_offset",
							     CORRUPT_OFFSET) & ~7ULL;

			hl_diag("test switch hugelive.corrupt: flipping the word at 0x%llx",
				(unsigned long long)off);
			*(volatile uint64_t *)(p + off) ^= 0x0100000000000001ULL;
		}
		verify_all(p, g - 1);
		hl_success(hl_luo_finish(sess), errno, "finish session %s", SESSION);
		close(sess);
		if (hl_last_gen()) {
			/* Still a working memfd after finish. */
			p[0] ^= 0xff;
			hl_ok(*(volatile uint8_t *)p ==
			      (uint8_t)(hl_pattern_word(0, region_seed(0, g - 1)) ^ 0xff),
			      "memfd writable after finish");
			return hl_exit();
		}
		fill_region(p, rewrite_before(g), g);
	}

	sess = hl_luo_create_session(luo, SESSION);
	if (sess < 0)
		hl_bail("create session %s: %s", SESSION, strerror(errno));
	if (!hl_success(hl_luo_preserve_fd(sess, mfd, TOKEN), errno,
			"preserve 256 MiB memfd, token 0x%llx",
			(unsigned long long)TOKEN))
		return hl_exit();
	if (g > 0)
		fill_region(p, rewrite_after(g), g);
	if (g > 0)
		hl_diag("rewrote regions %d (before preserve) and %d (after) with seed 0x%llx",
			rewrite_before(g), rewrite_after(g),
			(unsigned long long)seed_of_gen(g));
	if (hl_failures())
		return hl_exit();
	hl_kexec_next_generation(NULL);
	return hl_exit();
}
