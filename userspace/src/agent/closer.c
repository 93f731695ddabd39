/* SPDX-License-Identifier: MIT */
/* Asynchronous close: see closer.h. */
#include "closer.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct batch {
	int *fds;
	size_t n;
};

static struct batch pending;
static size_t pending_cap;
static atomic_int in_threads;	/* fds handed to threads, not yet closed */
static atomic_int nthreads;

void closer_close(int fd)
{
	if (fd < 0)
		return;
	if (pending.n == pending_cap) {
		size_t nc = pending_cap ? pending_cap * 2 : 64;
		int *v = realloc(pending.fds, nc * sizeof(*v));

		if (!v) {
			/* out of memory: blocking here is the lesser evil than leaking */
			LOGE("closer: out of memory; closing fd %d in the loop", fd);
			close(fd);
			return;
		}
		pending.fds = v;
		pending_cap = nc;
	}
	pending.fds[pending.n++] = fd;
}

static void *closer_thread(void *arg)
{
	struct batch *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		close(b->fds[i]);
		atomic_fetch_sub(&in_threads, 1);
	}
	free(b->fds);
	free(b);
	atomic_fetch_sub(&nthreads, 1);
	return NULL;
}

void closer_flush(void)
{
	pthread_attr_t at;
	pthread_t t;
	struct batch *b;
	int rc;

	if (!pending.n || atomic_load(&nthreads) >= HL_CLOSER_MAX_THREADS)
		return;
	b = malloc(sizeof(*b));
	if (!b)
		return;
	*b = pending;
	atomic_fetch_add(&nthreads, 1);
	atomic_fetch_add(&in_threads, (int)b->n);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	rc = pthread_create(&t, &at, closer_thread, b);
	pthread_attr_destroy(&at);
	if (rc) {
		/* keep the batch queued; the next iteration tries again */
		atomic_fetch_sub(&nthreads, 1);
		atomic_fetch_sub(&in_threads, (int)b->n);
		free(b);
		LOGE("closer: cannot start a thread: %s; %zu fd(s) wait", strerror(rc), pending.n);
		return;
	}
	memset(&pending, 0, sizeof(pending));
	pending_cap = 0;
}

int closer_pending(void)
{
	return (int)pending.n + atomic_load(&in_threads);
}
