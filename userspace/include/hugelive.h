/* SPDX-License-Identifier: MIT */
/*
 * libhugelive: client library for the hugelived live update agent.
 * See libhugelive(3) (source: man/libhugelive.3.scd) and docs/protocol.md.
 *
 * All functions returning int return 0 (or a non-negative value) on
 * success and a negative errno on failure. When the agent answered with an
 * error, hl_last_error() gives its message. A client handle is not
 * thread-safe; use one per thread.
 */
#ifndef HUGELIVE_H
#define HUGELIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HUGELIVE_PROTOCOL_VERSION 1
#define HUGELIVE_DEFAULT_SOCKET "/run/hugelive/agent.sock"
#define HUGELIVE_MAX_NAME 48
#define HUGELIVE_MAX_LABEL 128

typedef struct hl_client hl_client;

struct hl_fd_info {
	uint64_t token;
	char label[HUGELIVE_MAX_LABEL + 1];
	bool hugetlb;
	bool retrieved;
};

struct hl_session_info {
	char name[HUGELIVE_MAX_NAME + 1];
	uint32_t uid;
	bool incoming;		/* from the previous kernel: retrieve + finish */
	int64_t created;	/* unix time */
	size_t nfds;
	struct hl_fd_info *fds;
};

enum hl_event_type {
	HL_EVENT_NONE = 0,
	HL_EVENT_PREPARE,	/* quiesce, then hl_ready() or hl_refuse() */
	HL_EVENT_RESUME,	/* update cancelled: continue normally */
	HL_EVENT_PROGRESS,	/* progress of an update you requested */
	HL_EVENT_OTHER,
	HL_EVENT_RECONNECTED,	/* with hl_set_reconnect(): the agent restarted; reconnected */
};

struct hl_event {
	enum hl_event_type type;
	uint64_t update_id;
	int64_t timeout_ms;	/* PREPARE: time left to answer */
	char stage[32];		/* PROGRESS */
	char text[512];		/* RESUME: reason; PROGRESS: message; PREPARE: kernel */
};

/* Connect to the agent. path NULL: $HUGELIVE_SOCKET or the default. */
int hl_connect(const char *path, hl_client **out);
void hl_disconnect(hl_client *c);
/* Socket fd, for poll(): readable when an event may be pending. */
int hl_get_fd(hl_client *c);
/* Message of the last error reply from the agent ("" if none). */
const char *hl_last_error(hl_client *c);

/* Sessions are named per client uid; names: 1-48 chars of [A-Za-z0-9._-]. */
int hl_create_session(hl_client *c, const char *session);
int hl_destroy_session(hl_client *c, const char *session);
/* Preserve fd (a memfd, a hugetlb memfd, ...) under token (0..2^63-1). */
int hl_preserve_fd(hl_client *c, const char *session, uint64_t token, int fd, const char *label);
/* After an update: get the fd preserved under token back (close it when done). */
int hl_retrieve_fd(hl_client *c, const char *session, uint64_t token, int *fd_out);
/*
 * Like hl_retrieve_fd(), but the caller retrieves the file itself: the agent
 * hands over a copy of the session fd, this process calls RETRIEVE_FD on it
 * and closes it again. The kernel then charges the file's pages to the
 * caller's memory and hugetlb cgroups (with hl_retrieve_fd() they go to the
 * agent's). Tokens the agent has no record of fail with -ENOENT.
 */
int hl_retrieve_fd_self(hl_client *c, const char *session, uint64_t token, int *fd_out);
/* After an update: tell the kernel the session is fully restored. */
int hl_finish_session(hl_client *c, const char *session);
int hl_list_sessions(hl_client *c, struct hl_session_info **out, size_t *n);
void hl_free_sessions(struct hl_session_info *s, size_t n);

/*
 * Reconnect when the agent goes away (it restarted): hl_wait_event() and
 * calls whose request could not be sent reconnect within max_wait_ms, and
 * subscribe again if the handle had subscribed; hl_wait_event() then
 * returns an HL_EVENT_RECONNECTED event. 0 turns it off (the default).
 * A call whose request was sent but not answered still fails.
 */
int hl_set_reconnect(hl_client *c, int max_wait_ms);

/* Update barrier. */
int hl_subscribe(hl_client *c);
/* Wait for an event; timeout_ms < 0: forever. -ETIMEDOUT, -ECONNRESET. */
int hl_wait_event(hl_client *c, int timeout_ms, struct hl_event *ev);
int hl_ready(hl_client *c, uint64_t update_id);
int hl_refuse(hl_client *c, uint64_t update_id, const char *reason);

/*
 * Raw call: request is a JSON object with "op" and its fields; "v" and
 * "id" are filled in. fd_in < 0: no fd. *reply gets the reply JSON
 * (free()), *fd_out a returned fd or -1 (either may be NULL).
 * Returns 0 when the reply has ok:true, else -code of the error.
 */
int hl_call_json(hl_client *c, const char *request, int fd_in, char **reply, int *fd_out);
/* Events that arrive during a call go to cb (if set) instead of the queue. */
void hl_set_event_callback(hl_client *c, void (*cb)(const char *event_json, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
