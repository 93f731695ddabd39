/* SPDX-License-Identifier: MIT */
/*
 * hugelive-example: a minimal libhugelive client. It keeps a memfd (or a
 * hugetlb memfd) full of a verifiable pattern in a session and survives
 * live updates:
 *
 *   hugelive-example --session demo --size 64M [--hugetlb]   # run as a service
 *   (update)                                                  # hugelivectl update ...
 *   hugelive-example --session demo --verify-only            # check + finish
 *
 * On start it looks for an incoming session of that name (from the previous
 * kernel): if found it retrieves token 1, verifies every word and finishes
 * the session, then preserves the same memory again for the next update.
 * It subscribes to update events and answers "prepare" with ready (or with
 * a refusal when started with --refuse).
 *
 * Outside this tree (libhugelive-dev ships this file):
 *   cc -o hugelive-example hugelive-example.c $(pkg-config --cflags --libs hugelive)
 */
/* memfd_create(); the tree's builds pass -D_GNU_SOURCE, a user's may not */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hugelive.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

#define TOKEN 1
#define MAGIC 0x48554745u /* "HUGE" */

struct hdr {
	uint32_t magic;
	uint32_t generation;
	uint64_t seed;
	uint64_t size;
};

static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	return z ^ (z >> 27);
}

static void fill(uint64_t *m, uint64_t size, uint64_t seed)
{
	for (uint64_t i = 4; i < size / 8; i++)
		m[i] = word(seed, i);
}

static int64_t verify(const uint64_t *m, uint64_t size, uint64_t seed)
{
	for (uint64_t i = 4; i < size / 8; i++)
		if (m[i] != word(seed, i))
			return (int64_t)i;
	return -1;
}

static uint64_t parse_size(const char *s)
{
	char *e;
	uint64_t v = strtoull(s, &e, 0);

	switch (*e) {
	case 'G': case 'g': v <<= 30; break;
	case 'M': case 'm': v <<= 20; break;
	case 'K': case 'k': v <<= 10; break;
	default: break;
	}
	return v;
}

static void die(hl_client *c, const char *what, int rc)
{
	fprintf(stderr, "hugelive-example: %s: %s (%s)\n", what, strerror(-rc), c ? hl_last_error(c) : "");
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option o[] = {
		{ "socket", required_argument, NULL, 's' }, { "session", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'z' }, { "hugetlb", no_argument, NULL, 'H' },
		{ "refuse", required_argument, NULL, 'r' }, { "seed", required_argument, NULL, 'S' },
		{ "once", no_argument, NULL, '1' }, { "verify-only", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	const char *sock = NULL, *session = "example", *refuse = NULL;
	uint64_t size = 16 << 20, seed = 0;
	bool hugetlb = false, once = false, verify_only = false, restored = false;
	struct hl_session_info *ss;
	size_t n;
	hl_client *c;
	int opt, rc, mfd = -1;
	struct hdr *h;

	while ((opt = getopt_long(argc, argv, "h", o, NULL)) != -1) {
		switch (opt) {
		case 's': sock = optarg; break;
		case 'n': session = optarg; break;
		case 'z': size = parse_size(optarg); break;
		case 'H': hugetlb = true; break;
		case 'r': refuse = optarg; break;
		case 'S': seed = strtoull(optarg, NULL, 0); break;
		case '1': once = true; break;
		case 'v': verify_only = true; break;
		default:
			fprintf(stderr, "usage: hugelive-example [--socket P] [--session NAME] [--size N[KMG]] "
					"[--hugetlb] [--seed N] [--refuse REASON] [--once | --verify-only]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((rc = hl_connect(sock, &c)) < 0)
		die(NULL, "connect", rc);

	/* 1. Anything from the previous kernel? */
	if ((rc = hl_list_sessions(c, &ss, &n)) < 0)
		die(c, "list", rc);
	for (size_t i = 0; i < n; i++)
		if (ss[i].incoming && !strcmp(ss[i].name, session))
			restored = true;
	hl_free_sessions(ss, n);
	if (restored) {
		int64_t bad;

		if ((rc = hl_retrieve_fd(c, session, TOKEN, &mfd)) < 0)
			die(c, "retrieve", rc);
		size = (uint64_t)lseek(mfd, 0, SEEK_END);
		h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		if (h == MAP_FAILED)
			die(c, "mmap", -errno);
		if (h->magic != MAGIC || h->size != size) {
			fprintf(stderr, "hugelive-example: retrieved memory has a bad header\n");
			return 1;
		}
		bad = verify((uint64_t *)h, size, h->seed);
		if (bad >= 0) {
			fprintf(stderr, "hugelive-example: MISMATCH at word %" PRId64 " of %s\n", bad, session);
			return 1;
		}
		h->generation++;
		printf("hugelive-example: session %s: verified %" PRIu64 " bytes from the previous kernel "
		       "(generation %u)\n", session, size, h->generation);
		if ((rc = hl_finish_session(c, session)) < 0)
			die(c, "finish", rc);
		if (verify_only)
			return 0;
	} else if (verify_only) {
		fprintf(stderr, "hugelive-example: no session %s from the previous kernel\n", session);
		return 1;
	} else {
		mfd = memfd_create(session, MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0));
		if (mfd < 0)
			die(c, "memfd_create", -errno);
		if (ftruncate(mfd, (off_t)size) < 0)
			die(c, "ftruncate", -errno);
		h = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, mfd, 0);
		if (h == MAP_FAILED)
			die(c, "mmap", -errno);
		if (!seed)
			seed = (uint64_t)getpid() * 2654435761u + (uint64_t)time(NULL);
		h->magic = MAGIC;
		h->generation = 0;
		h->seed = seed;
		h->size = size;
		fill((uint64_t *)h, size, seed);
		printf("hugelive-example: session %s: filled %" PRIu64 " bytes%s\n", session, size,
		       hugetlb ? " (hugetlb)" : "");
	}

	/* 2. Preserve it for the next update. */
	rc = hl_create_session(c, session);
	if (rc == -EEXIST) {
		/* a stale outgoing session from an earlier run of ours: replace it */
		hl_destroy_session(c, session);
		rc = hl_create_session(c, session);
	}
	if (rc < 0)
		die(c, "create", rc);
	if ((rc = hl_preserve_fd(c, session, TOKEN, mfd, hugetlb ? "pattern (hugetlb)" : "pattern")) < 0)
		die(c, "preserve", rc);
	printf("hugelive-example: session %s: preserved token %d\n", session, TOKEN);
	if (once)
		return 0;

	/* 3. Take part in update barriers. */
	if ((rc = hl_subscribe(c)) < 0)
		die(c, "subscribe", rc);
	printf("hugelive-example: subscribed; waiting for updates\n");
	for (;;) {
		struct hl_event ev;

		rc = hl_wait_event(c, -1, &ev);
		if (rc < 0) {
			printf("hugelive-example: agent connection ended (%s)\n", strerror(-rc));
			return 0;
		}
		if (ev.type == HL_EVENT_PREPARE) {
			if (refuse) {
				printf("hugelive-example: refusing update %" PRIu64 ": %s\n", ev.update_id, refuse);
				hl_refuse(c, ev.update_id, refuse);
			} else {
				msync(h, size, MS_SYNC);
				printf("hugelive-example: ready for update %" PRIu64 "\n", ev.update_id);
				hl_ready(c, ev.update_id);
			}
		} else if (ev.type == HL_EVENT_RESUME) {
			int64_t bad = verify((uint64_t *)h, size, h->seed);

			printf("hugelive-example: update %" PRIu64 " cancelled (%s); memory %s\n", ev.update_id, ev.text,
			       bad < 0 ? "intact" : "CORRUPT");
		}
	}
}
