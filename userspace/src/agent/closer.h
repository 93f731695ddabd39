/* SPDX-License-Identifier: MIT */
/*
 * Closing fds off the event loop. The last close() of a file a client
 * passed (or of a client's socket, whose queue can hold in-flight fds) runs
 * that file's release in the closing thread: a TCP socket with SO_LINGER
 * and unsent data waits out its linger time, a FUSE file waits for its
 * daemon. The loop therefore never closes such fds itself: closer_close()
 * queues them and closer_flush(), at the end of each loop iteration, hands
 * the batch to a short-lived detached thread.
 */
#ifndef HL_AGENT_CLOSER_H
#define HL_AGENT_CLOSER_H

#define HL_CLOSER_MAX_THREADS 64	/* beyond: batches wait for a free thread */

/* Queue fd (>= 0) for closing; never blocks. */
void closer_close(int fd);
/* Start a thread for the queued fds, if any. */
void closer_flush(void);
/* Closes queued or in a thread right now (for tests and status). */
int closer_pending(void);

#endif
