/* SPDX-License-Identifier: MIT */
/*
 * hugelive agent protocol, version 1. See docs/protocol.md.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET; one packet = one JSON object (UTF-8,
 * no trailing data) of at most HL_MAX_MSG bytes, with at most
 * HL_MAX_FDS_PER_MSG file descriptors attached by SCM_RIGHTS.
 */
#ifndef HL_PROTO_H
#define HL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define HL_PROTO_VERSION 1
#define HL_MAX_MSG 65536
#define HL_MAX_FDS_PER_MSG 1
#define HL_MAX_NAME 48		/* client session name, bytes */
#define HL_MAX_LABEL 128
#define HL_MAX_REASON 256
#define HL_MAX_CLIENT_NAME 64
#define HL_MAX_PATH 4096
#define HL_MAX_CMDLINE 2048
#define HL_MAX_SESSIONS_PER_UID 64
#define HL_MAX_SESSIONS_TOTAL 1024
#define HL_MAX_TOKENS_PER_SESSION 128
#define HL_MAX_CLIENTS 256
#define HL_ROOT_RESERVED_CLIENTS 16	/* of HL_MAX_CLIENTS, only for uid 0 */
#define HL_MAX_CLIENTS_PER_UID 32	/* non-root uids */
#define HL_IDLE_TIMEOUT_S 60		/* non-root, unsubscribed, no request */
#define HL_MAX_JSON_DEPTH 8
#define HL_MAX_OUTQ_BYTES (1024 * 1024)	/* per client; beyond: dropped */
#define HL_TOKEN_MAX INT64_MAX
#define HL_REPLY_BUDGET 60000	/* list pages and capped arrays stay below HL_MAX_MSG */
#define HL_MAX_REPORT 64	/* status.report entries kept (oldest dropped first) */

#define HL_DEFAULT_SOCKET "/run/hugelive/agent.sock"
#define HL_DEFAULT_DEVICE "/dev/liveupdate"

enum hl_op {
	HL_OP_UNKNOWN = 0,
	HL_OP_HELLO,
	HL_OP_STATUS,
	HL_OP_CREATE,
	HL_OP_PRESERVE,
	HL_OP_LIST,
	HL_OP_RETRIEVE,
	HL_OP_FINISH,
	HL_OP_DESTROY,
	HL_OP_SUBSCRIBE,
	HL_OP_READY,
	HL_OP_REFUSE,
	HL_OP_UPDATE,
	HL_OP__COUNT,
};

const char *hl_op_name(enum hl_op op);
enum hl_op hl_op_from_name(const char *name);
/* The requests that take a passed fd (only preserve); others are refused. */
bool hl_op_takes_fd(enum hl_op op);

/* A parsed, validated request. String pointers point into root. */
struct hl_req {
	struct json_object *root;
	int64_t id;
	enum hl_op op;
	const char *op_name;
	/* hello */
	int64_t version;
	const char *client;
	/* session ops */
	const char *session;
	bool has_uid;
	uint32_t uid;		/* root only: address another uid's namespace */
	bool has_token;
	uint64_t token;
	const char *label;
	bool all;		/* list/finish: all sessions visible to caller */
	bool handoff;		/* retrieve: hand over the session fd, the client retrieves */
	bool has_after;		/* list: page after this cursor ("next" of the previous page) */
	uint64_t after;
	/* barrier */
	uint64_t update_id;
	const char *reason;
	/* update */
	const char *kernel;
	const char *initrd;
	const char *running_kernel;	/* optional: the running kernel's image (its formats) */
	const char *cmdline;
	int64_t timeout_ms;
	bool dry_run;
	bool force;		/* root: refusals, timeouts, missing subscribers do not cancel */
};

/*
 * Parse one packet. Returns 0 on success (req filled; call hl_req_free).
 * On failure returns a positive errno (EPROTO: not a valid v1 message,
 * EINVAL: a field is invalid, EMSGSIZE: too large, EOPNOTSUPP: unknown op)
 * and writes a message to err (always NUL-terminated). req->id is set
 * whenever it could be extracted (else -1) so that the reply can carry it.
 * All errors except EOPNOTSUPP are "fatal": the agent replies and then
 * drops the connection.
 */
int hl_req_parse(const char *buf, size_t len, struct hl_req *req, char *err, size_t errlen);
void hl_req_free(struct hl_req *req);

/* Parse any packet into a JSON object (used by clients for replies/events). */
struct json_object *hl_json_parse(const char *buf, size_t len);

/* Build replies/events; the caller owns the result. */
struct json_object *hl_reply_ok(int64_t id);
struct json_object *hl_reply_err(int64_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct json_object *hl_event_new(const char *event);

/* Serialise to a malloc'd string; *len set. NULL on ENOMEM. */
char *hl_json_dump(struct json_object *o, size_t *len);

/* Small accessors tolerant of missing keys. */
const char *hl_jstr(struct json_object *o, const char *key);
int64_t hl_jint(struct json_object *o, const char *key, int64_t dflt);
bool hl_jbool(struct json_object *o, const char *key, bool dflt);

#endif
