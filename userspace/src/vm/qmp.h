/* SPDX-License-Identifier: MIT */
/*
 * hugelive-vm: a small QMP client (QEMU Machine Protocol: one JSON object
 * per line over a unix socket). The parsing functions take no socket, so
 * the host tests exercise them on canned text.
 */
#ifndef HLVM_QMP_H
#define HLVM_QMP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct qmp {
	int fd;
	char buf[65536];
	size_t len;		/* bytes of buf not consumed yet */
	char err[512];		/* last error: "GenericError: ..." or a socket error */
	int major, minor, micro;	/* from the greeting */
	void (*on_event)(const char *name, json_object *data, void *arg);
	void *arg;
};

enum qmp_kind {
	QMP_INVALID = 0,	/* not JSON, not an object, or none of the below */
	QMP_GREETING,		/* {"QMP": {"version": ...}} */
	QMP_RETURN,		/* {"return": ...} */
	QMP_ERROR,		/* {"error": {"class": ..., "desc": ...}} */
	QMP_EVENT,		/* {"event": ...} */
};

/* What a parsed message is; for QMP_ERROR, "class: desc" goes to err. */
enum qmp_kind qmp_classify(json_object *msg, char *err, size_t errlen);
/* Version from a greeting: 0, or -EINVAL. */
int qmp_greeting_version(json_object *msg, int *major, int *minor, int *micro);
/*
 * The first line of `qemu-system-x86_64 --version`, e.g. "QEMU emulator
 * version 7.2.22 (Debian 1:7.2+dfsg-7)": 0, or -EINVAL.
 */
int qmp_parse_version_text(const char *text, int *major, int *minor, int *micro);
/*
 * A query-migrate reply's "return": status (e.g. "completed", "failed",
 * "active", "setup"; "none" when absent) and error-desc. 0, or -EINVAL.
 */
int qmp_migrate_status(json_object *ret, char *status, size_t slen, char *errdesc, size_t elen);
/* Whether a query-migrate-capabilities "return" lists capability name. */
bool qmp_has_capability(json_object *ret, const char *name);
/*
 * Take one line (up to '\n') off buf/len and parse it. Returns the object
 * (json_object_put() it), or NULL with *complete false when no whole line
 * is there yet, or NULL with *complete true for a line that is not JSON.
 */
json_object *qmp_take_line(char *buf, size_t *len, bool *complete);

/*
 * Connect to the QMP socket at path, retrying until timeout_ms (QEMU creates
 * it while starting), read the greeting and leave capabilities negotiation
 * (up to 30 s once connected).
 * 0, or a negative errno with q->err set.
 */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms);
/*
 * Execute cmd with args (may be NULL; the reference is taken). fd >= 0 is
 * passed along with SCM_RIGHTS (for getfd). On success *ret (if not NULL)
 * gets the "return" value (json_object_put() it). Events that arrive
 * meanwhile go to q->on_event. Returns 0, -EIO on a QMP error (q->err:
 * "class: desc"), -ETIMEDOUT, or another negative errno.
 */
int qmp_exec(struct qmp *q, const char *cmd, json_object *args, int fd, json_object **ret, int timeout_ms);
void qmp_close(struct qmp *q);

#endif
