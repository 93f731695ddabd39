/* SPDX-License-Identifier: MIT */
/*
 * Session model: the client sessions the agent holds, their preserved fds
 * and the ownership rule. No I/O here beyond closing a session's fd; the
 * JSON form below is the one used on the wire and in the saved state.
 */
#ifndef HL_AGENT_SESSION_H
#define HL_AGENT_SESSION_H

#include "backend.h"
#include "../common/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct json_object;

#define HL_TAG_MAX 160	/* fd-store tag: "so-"/"si-" + hex kernel name */

struct fdrec {
	uint64_t token;
	char label[HL_MAX_LABEL + 1];
	bool hugetlb;
	bool retrieved;
};

struct session {
	struct session *next;
	char name[HL_MAX_NAME + 1];
	uint32_t uid;
	char kname[HL_KNAME_MAX];
	bool incoming;		/* retrieved from the previous kernel */
	int fd;			/* LUO session fd */
	struct fdrec *fds;
	size_t nfds;
	int64_t created;	/* wall clock, seconds */
	uint64_t seq;		/* order of arrival in this agent: the list cursor */
	bool barrier;		/* its owner subscribed: an update asks the owner first */
	bool leaving;		/* being finished/destroyed: left out of the saved state */
};

struct session_table {
	struct session *head;
	int count;
	uint64_t next_seq;
};

/* A caller may act on a session iff it is root or owns it. */
bool hl_authorized(uid_t caller, uint32_t owner);
/* Resolve the uid namespace a request addresses; only root may name another uid. */
int hl_target_uid(uid_t caller, bool has_uid, uint32_t uid, uint32_t *target);

/* Kernel session name "hl:<uid>:<name>"; -ENAMETOOLONG if it does not fit. */
int session_kname(char out[HL_KNAME_MAX], uint32_t uid, const char *name);
/* fd-store tag of a session ("so-"/"si-" + hex of the kernel name). */
void session_tag(char *out, size_t len, const struct session *s);

/* New session (fd -1, no fds); NULL on ENOMEM or a name that does not fit. */
struct session *session_new(uint32_t uid, const char *name, bool incoming);
void session_free(struct session *s);
struct session *session_find(struct session_table *t, uint32_t uid, const char *name, bool incoming);
struct fdrec *session_fd(struct session *s, uint64_t token);
void session_add(struct session_table *t, struct session *s);
void session_unlink(struct session_table *t, struct session *s);
int session_count_uid(const struct session_table *t, uint32_t uid);

/*
 * The one JSON form of a session: name, uid, kname, state
 * ("incoming"/"outgoing"), created, barrier, fds[{token,label,hugetlb,retrieved}].
 * session_from_json() parses it back (fd -1); it also reads the "dir"
 * ("in"/"out") key of state written by agent 0.1.0. NULL if invalid.
 */
struct json_object *session_to_json(const struct session *s);
struct session *session_from_json(struct json_object *e);

/* How the agent came up: one name table for logs, status and the state. */
enum boot_kind { BOOT_FRESH, BOOT_UPDATED, BOOT_RESTARTED };
const char *boot_kind_name(enum boot_kind b);

#endif
