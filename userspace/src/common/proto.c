/* SPDX-License-Identifier: MIT */
#include "proto.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[HL_OP__COUNT] = {
	[HL_OP_UNKNOWN] = "unknown",
	[HL_OP_HELLO] = "hello",
	[HL_OP_STATUS] = "status",
	[HL_OP_CREATE] = "create",
	[HL_OP_PRESERVE] = "preserve",
	[HL_OP_LIST] = "list",
	[HL_OP_RETRIEVE] = "retrieve",
	[HL_OP_FINISH] = "finish",
	[HL_OP_DESTROY] = "destroy",
	[HL_OP_SUBSCRIBE] = "subscribe",
	[HL_OP_READY] = "ready",
	[HL_OP_REFUSE] = "refuse",
	[HL_OP_UPDATE] = "update",
};

const char *hl_op_name(enum hl_op op)
{
	if ((int)op < 0 || op >= HL_OP__COUNT)
		return "unknown";
	return op_names[op];
}

bool hl_op_takes_fd(enum hl_op op)
{
	return op == HL_OP_PRESERVE;
}

enum hl_op hl_op_from_name(const char *name)
{
	for (int i = 1; i < HL_OP__COUNT; i++)
		if (!strcmp(op_names[i], name))
			return (enum hl_op)i;
	return HL_OP_UNKNOWN;
}

struct json_object *hl_json_parse(const char *buf, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t off;

	if (len == 0 || len > HL_MAX_MSG || len > INT32_MAX)
		return NULL;
	/* No NUL bytes inside a message. */
	if (memchr(buf, '\0', len))
		return NULL;
	tok = json_tokener_new_ex(HL_MAX_JSON_DEPTH);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	off = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	/* Only whitespace may follow the object. */
	for (; off < len; off++) {
		char c = buf[off];

		if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			json_object_put(o);
			return NULL;
		}
	}
	return o;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Fetch a string field. Returns 0, or EINVAL for wrong type / bad content. */
static int get_str(struct json_object *root, const char *key, bool required,
		   size_t maxlen, const char **out, char *err, size_t errlen)
{
	struct json_object *v;
	const char *s;

	*out = NULL;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required) {
			seterr(err, errlen, "missing field \"%s\"", key);
			return EINVAL;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "field \"%s\" must be a string", key);
		return EINVAL;
	}
	s = json_object_get_string(v);
	if ((size_t)json_object_get_string_len(v) != strlen(s)) {
		seterr(err, errlen, "field \"%s\" contains NUL", key);
		return EINVAL;
	}
	if (strlen(s) > maxlen) {
		seterr(err, errlen, "field \"%s\" longer than %zu bytes", key, maxlen);
		return EINVAL;
	}
	*out = s;
	return 0;
}

/* Fetch a non-negative integer field in [min, max]. */
static int get_uint(struct json_object *root, const char *key, bool required,
		    uint64_t min, uint64_t max, bool *present, uint64_t *out,
		    char *err, size_t errlen)
{
	struct json_object *v;
	int64_t i;

	if (present)
		*present = false;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required) {
			seterr(err, errlen, "missing field \"%s\"", key);
			return EINVAL;
		}
		return 0;
	}
	if (!json_object_is_type(v, json_type_int)) {
		seterr(err, errlen, "field \"%s\" must be an integer", key);
		return EINVAL;
	}
	errno = 0;
	i = json_object_get_int64(v);
	if (i < 0 || (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX) ||
	    (uint64_t)i < min || (uint64_t)i > max) {
		seterr(err, errlen, "field \"%s\" out of range", key);
		return EINVAL;
	}
	*out = (uint64_t)i;
	if (present)
		*present = true;
	return 0;
}

static int get_bool(struct json_object *root, const char *key, bool *out, char *err, size_t errlen)
{
	struct json_object *v;

	*out = false;
	if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		seterr(err, errlen, "field \"%s\" must be a boolean", key);
		return EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

static int get_session(struct hl_req *r, bool required, char *err, size_t errlen)
{
	int rc = get_str(r->root, "session", required, HL_MAX_NAME, &r->session, err, errlen);

	if (rc)
		return rc;
	if (r->session && !hl_name_valid(r->session)) {
		seterr(err, errlen, "invalid session name (1-%d chars of [A-Za-z0-9._-])", HL_MAX_NAME);
		return EINVAL;
	}
	return 0;
}

static int get_uid(struct hl_req *r, char *err, size_t errlen)
{
	uint64_t u = 0;
	int rc = get_uint(r->root, "uid", false, 0, UINT32_MAX - 1, &r->has_uid, &u, err, errlen);

	r->uid = (uint32_t)u;
	return rc;
}

int hl_req_parse(const char *buf, size_t len, struct hl_req *r, char *err, size_t errlen)
{
	struct json_object *v;
	uint64_t u;
	int rc;

	memset(r, 0, sizeof(*r));
	r->id = -1;
	if (err && errlen)
		err[0] = '\0';
	if (len > HL_MAX_MSG) {
		seterr(err, errlen, "message larger than %d bytes", HL_MAX_MSG);
		return EMSGSIZE;
	}
	r->root = hl_json_parse(buf, len);
	if (!r->root) {
		seterr(err, errlen, "not valid JSON");
		return EPROTO;
	}
	if (!json_object_is_type(r->root, json_type_object)) {
		seterr(err, errlen, "message is not a JSON object");
		goto proto;
	}
	/* id first so that the error reply can carry it. */
	if (json_object_object_get_ex(r->root, "id", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0 && json_object_get_int64(v) < INT64_MAX)
		r->id = json_object_get_int64(v);
	if (!json_object_object_get_ex(r->root, "v", &v) || !json_object_is_type(v, json_type_int)) {
		seterr(err, errlen, "missing protocol version \"v\"");
		goto proto;
	}
	if (json_object_get_int64(v) != HL_PROTO_VERSION) {
		seterr(err, errlen, "unsupported protocol version %lld (agent speaks %d)",
		       (long long)json_object_get_int64(v), HL_PROTO_VERSION);
		goto proto;
	}
	if (r->id < 0) {
		seterr(err, errlen, "missing or invalid \"id\"");
		goto proto;
	}
	if (!json_object_object_get_ex(r->root, "op", &v) || !json_object_is_type(v, json_type_string)) {
		seterr(err, errlen, "missing \"op\"");
		goto proto;
	}
	r->op_name = json_object_get_string(v);
	r->op = hl_op_from_name(r->op_name);
	if ((size_t)json_object_get_string_len(v) != strlen(r->op_name))
		r->op = HL_OP_UNKNOWN;

	switch (r->op) {
	case HL_OP_UNKNOWN:
		seterr(err, errlen, "unknown op");
		rc = EOPNOTSUPP;
		goto fail;
	case HL_OP_HELLO:
		rc = get_uint(r->root, "version", true, 0, 1000000, NULL, &u, err, errlen);
		if (rc)
			goto fail;
		r->version = (int64_t)u;
		rc = get_str(r->root, "client", false, HL_MAX_CLIENT_NAME, &r->client, err, errlen);
		if (!rc && r->client && !hl_label_valid(r->client)) {
			seterr(err, errlen, "client name must be printable ASCII");
			rc = EINVAL;
		}
		if (rc)
			goto fail;
		break;
	case HL_OP_STATUS:
	case HL_OP_SUBSCRIBE:
		break;
	case HL_OP_CREATE:
	case HL_OP_DESTROY:
		if ((rc = get_session(r, true, err, errlen)) || (rc = get_uid(r, err, errlen)))
			goto fail;
		break;
	case HL_OP_PRESERVE:
		if ((rc = get_session(r, true, err, errlen)) || (rc = get_uid(r, err, errlen)))
			goto fail;
		rc = get_uint(r->root, "token", true, 0, HL_TOKEN_MAX, &r->has_token, &r->token, err, errlen);
		if (rc)
			goto fail;
		rc = get_str(r->root, "label", false, HL_MAX_LABEL, &r->label, err, errlen);
		if (!rc && r->label && !hl_label_valid(r->label)) {
			seterr(err, errlen, "label must be printable ASCII");
			rc = EINVAL;
		}
		if (rc)
			goto fail;
		break;
	case HL_OP_RETRIEVE:
		if ((rc = get_session(r, true, err, errlen)) || (rc = get_uid(r, err, errlen)) ||
		    (rc = get_bool(r->root, "handoff", &r->handoff, err, errlen)))
			goto fail;
		rc = get_uint(r->root, "token", true, 0, HL_TOKEN_MAX, &r->has_token, &r->token, err, errlen);
		if (rc)
			goto fail;
		break;
	case HL_OP_LIST:
		if ((rc = get_uid(r, err, errlen)) || (rc = get_bool(r->root, "all", &r->all, err, errlen)) ||
		    (rc = get_uint(r->root, "after", false, 0, HL_TOKEN_MAX, &r->has_after, &r->after, err, errlen)))
			goto fail;
		break;
	case HL_OP_FINISH:
		if ((rc = get_uid(r, err, errlen)) || (rc = get_bool(r->root, "all", &r->all, err, errlen)) ||
		    (rc = get_session(r, false, err, errlen)))
			goto fail;
		if (!r->all && !r->session) {
			seterr(err, errlen, "finish needs \"session\" or \"all\":true");
			rc = EINVAL;
			goto fail;
		}
		break;
	case HL_OP_READY:
	case HL_OP_REFUSE:
		rc = get_uint(r->root, "update", true, 1, HL_TOKEN_MAX, NULL, &r->update_id, err, errlen);
		if (rc)
			goto fail;
		if (r->op == HL_OP_REFUSE) {
			rc = get_str(r->root, "reason", false, HL_MAX_REASON, &r->reason, err, errlen);
			if (!rc && r->reason && !hl_label_valid(r->reason)) {
				seterr(err, errlen, "reason must be printable ASCII");
				rc = EINVAL;
			}
			if (rc)
				goto fail;
		}
		break;
	case HL_OP_UPDATE:
		if ((rc = get_str(r->root, "kernel", true, HL_MAX_PATH, &r->kernel, err, errlen)) ||
		    (rc = get_str(r->root, "initrd", false, HL_MAX_PATH, &r->initrd, err, errlen)) ||
		    (rc = get_str(r->root, "running_kernel", false, HL_MAX_PATH, &r->running_kernel, err, errlen)) ||
		    (rc = get_str(r->root, "cmdline", true, HL_MAX_CMDLINE, &r->cmdline, err, errlen)) ||
		    (rc = get_bool(r->root, "dry_run", &r->dry_run, err, errlen)) ||
		    (rc = get_bool(r->root, "force", &r->force, err, errlen)))
			goto fail;
		if (r->kernel[0] != '/' || (r->initrd && r->initrd[0] != '/') ||
		    (r->running_kernel && r->running_kernel[0] != '/')) {
			seterr(err, errlen, "kernel, initrd and running_kernel must be absolute paths");
			rc = EINVAL;
			goto fail;
		}
		rc = get_uint(r->root, "timeout_ms", false, 1, 3600 * 1000, NULL, &u, err, errlen);
		if (rc)
			goto fail;
		r->timeout_ms = (int64_t)u;
		break;
	default:
		break;
	}
	return 0;
proto:
	rc = EPROTO;
fail:
	json_object_put(r->root);
	r->root = NULL;
	return rc;
}

void hl_req_free(struct hl_req *r)
{
	if (r->root)
		json_object_put(r->root);
	r->root = NULL;
}

struct json_object *hl_reply_ok(int64_t id)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "v", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

struct json_object *hl_reply_err(int64_t id, int code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	struct json_object *e = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "v", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "id", id >= 0 ? json_object_new_int64(id) : NULL);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(e, "code", json_object_new_int(code));
	json_object_object_add(e, "name", json_object_new_string(hl_errno_name(code)));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return o;
}

struct json_object *hl_event_new(const char *event)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "v", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "event", json_object_new_string(event));
	return o;
}

char *hl_json_dump(struct json_object *o, size_t *len)
{
	size_t l = 0;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &l);
	char *r;

	if (!s)
		return NULL;
	r = malloc(l + 1);
	if (!r)
		return NULL;
	memcpy(r, s, l + 1);
	if (len)
		*len = l;
	return r;
}

const char *hl_jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t hl_jint(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	return json_object_get_int64(v);
}

bool hl_jbool(struct json_object *o, const char *key, bool dflt)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return dflt;
	return json_object_get_boolean(v);
}
