/* SPDX-License-Identifier: MIT */
#include "hugelive.h"
#include "../common/proto.h"
#include "../common/sessfd.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct qev {
	struct qev *next;
	struct json_object *o;
};

struct hl_client {
	int fd;
	char path[108];
	bool subscribed;
	int reconnect_ms;	/* 0: off */
	int64_t next_id;
	char err[512];
	struct qev *qh, *qt;
	void (*cb)(const char *, void *);
	void *cb_arg;
};

static struct json_object *req_new_op(const char *op)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	return r;
}

int hl_connect(const char *path, hl_client **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	hl_client *c;
	int rc;

	if (!path || !*path)
		path = getenv("HUGELIVE_SOCKET");
	if (!path || !*path)
		path = HUGELIVE_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->next_id = 1;
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		rc = -errno;
		free(c);
		return rc;
	}
	strcpy(sa.sun_path, path);
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(c->fd);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int hl_set_reconnect(hl_client *c, int max_wait_ms)
{
	if (max_wait_ms < 0)
		return -EINVAL;
	c->reconnect_ms = max_wait_ms;
	return 0;
}

static int call(hl_client *c, struct json_object *req, int fd_in, struct json_object **reply, int *fd_out);

/*
 * The connection is gone (the agent restarted): connect again within
 * c->reconnect_ms and subscribe again if this handle had subscribed.
 */
static int reconnect(hl_client *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = hl_now_ms() + c->reconnect_ms;
	int delay = 50;

	if (!c->reconnect_ms)
		return -ECONNRESET;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
	for (;;) {
		int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			struct json_object *rep = NULL;
			int rc = 0;

			close(c->fd);
			c->fd = s;
			if (c->subscribed) {
				int keep = c->reconnect_ms;

				c->reconnect_ms = 0; /* no nested reconnect */
				rc = call(c, req_new_op("subscribe"), -1, &rep, NULL);
				json_object_put(rep);
				c->reconnect_ms = keep;
			}
			if (rc == 0)
				return 0;
		} else if (s >= 0) {
			close(s);
		}
		if (hl_now_ms() + delay > deadline)
			return -ECONNRESET;
		usleep((useconds_t)delay * 1000);
		delay = delay < 800 ? delay * 2 : 1000;
	}
}

void hl_disconnect(hl_client *c)
{
	if (!c)
		return;
	while (c->qh) {
		struct qev *q = c->qh;

		c->qh = q->next;
		json_object_put(q->o);
		free(q);
	}
	close(c->fd);
	free(c);
}

int hl_get_fd(hl_client *c)
{
	return c->fd;
}

const char *hl_last_error(hl_client *c)
{
	return c ? c->err : "";
}

void hl_set_event_callback(hl_client *c, void (*cb)(const char *, void *), void *arg)
{
	c->cb = cb;
	c->cb_arg = arg;
}

static void queue_event(hl_client *c, struct json_object *o)
{
	struct qev *q;

	if (c->cb) {
		c->cb(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), c->cb_arg);
		json_object_put(o);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		json_object_put(o);
		return;
	}
	q->o = o;
	if (c->qt)
		c->qt->next = q;
	else
		c->qh = q;
	c->qt = q;
}

/* Receive one packet as JSON; timeout_ms < 0 blocks. */
static int recv_json(hl_client *c, int timeout_ms, struct json_object **out, int *fd_out)
{
	static __thread char buf[HL_MAX_MSG + 1];
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int fd = -1, r;
	bool trunc;
	ssize_t n;

	*out = NULL;
	if (fd_out)
		*fd_out = -1;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = hl_recv_packet(c->fd, buf, sizeof(buf) - 1, &fd, NULL, &trunc, false);
	if (n < 0)
		return (int)n;
	if (n == 0) {
		snprintf(c->err, sizeof(c->err), "agent closed the connection");
		return -ECONNRESET;
	}
	*out = hl_json_parse(buf, (size_t)n);
	if (!*out || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		if (fd >= 0)
			close(fd);
		snprintf(c->err, sizeof(c->err), "malformed packet from agent");
		return -EPROTO;
	}
	if (fd_out)
		*fd_out = fd;
	else if (fd >= 0)
		close(fd);
	return 0;
}

static int call(hl_client *c, struct json_object *req, int fd_in, struct json_object **reply, int *fd_out)
{
	int64_t id = c->next_id++;
	size_t len;
	char *s;
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	*reply = NULL;
	c->err[0] = '\0';
	json_object_object_add(req, "v", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(req, "id", json_object_new_int64(id));
	s = hl_json_dump(req, &len);
	json_object_put(req);
	if (!s)
		return -ENOMEM;
	if (len > HL_MAX_MSG) {
		free(s);
		return -EMSGSIZE;
	}
	n = hl_send_packet(c->fd, s, len, fd_in, false);
	if ((n == -EPIPE || n == -ECONNRESET || n == -ENOTCONN) && c->reconnect_ms && reconnect(c) == 0)
		n = hl_send_packet(c->fd, s, len, fd_in, false); /* it was not sent: safe to send again */
	free(s);
	if (n < 0) {
		struct json_object *o = NULL, *e;

		snprintf(c->err, sizeof(c->err), "send to agent failed: %s", strerror((int)-n));
		/* refused at connect (e.g. too many connections): the reason may be queued */
		if (recv_json(c, 0, &o, NULL) == 0 && !hl_jbool(o, "ok", true) &&
		    json_object_object_get_ex(o, "error", &e) && hl_jint(e, "code", 0) > 0) {
			n = -hl_jint(e, "code", 0);
			snprintf(c->err, sizeof(c->err), "%s", hl_jstr(e, "message") ? hl_jstr(e, "message") : "");
		}
		json_object_put(o);
		return (int)n;
	}
	for (;;) {
		struct json_object *o;
		int fd = -1;
		int rc = recv_json(c, -1, &o, &fd);

		if (rc < 0)
			return rc;
		if (hl_jstr(o, "event")) {
			if (fd >= 0)
				close(fd);
			queue_event(c, o);
			continue;
		}
		/* id -1: an error about the connection itself (refused, idle, malformed) */
		if (hl_jint(o, "id", -2) != id && hl_jint(o, "id", -2) != -2 &&
		    !(hl_jint(o, "id", -2) == -1 && !hl_jbool(o, "ok", true))) {
			if (fd >= 0)
				close(fd);
			json_object_put(o);
			continue; /* stale reply */
		}
		if (!hl_jbool(o, "ok", false)) {
			struct json_object *e;
			int code = EPROTO;

			if (json_object_object_get_ex(o, "error", &e)) {
				const char *m = hl_jstr(e, "message");

				code = (int)hl_jint(e, "code", EPROTO);
				snprintf(c->err, sizeof(c->err), "%s", m ? m : "");
			}
			if (fd >= 0)
				close(fd);
			*reply = o;
			return code > 0 ? -code : -EPROTO;
		}
		*reply = o;
		if (fd_out)
			*fd_out = fd;
		else if (fd >= 0)
			close(fd);
		return 0;
	}
}

static struct json_object *req_new(const char *op, const char *session)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	if (session)
		json_object_object_add(r, "session", json_object_new_string(session));
	return r;
}

static int simple(hl_client *c, struct json_object *req, int fd_in)
{
	struct json_object *rep;
	int rc = call(c, req, fd_in, &rep, NULL);

	json_object_put(rep);
	return rc;
}

int hl_create_session(hl_client *c, const char *session)
{
	return simple(c, req_new("create", session), -1);
}

int hl_destroy_session(hl_client *c, const char *session)
{
	return simple(c, req_new("destroy", session), -1);
}

int hl_finish_session(hl_client *c, const char *session)
{
	return simple(c, req_new("finish", session), -1);
}

int hl_preserve_fd(hl_client *c, const char *session, uint64_t token, int fd, const char *label)
{
	struct json_object *r = req_new("preserve", session);

	if (token > (uint64_t)INT64_MAX) {
		json_object_put(r);
		return -EINVAL;
	}
	json_object_object_add(r, "token", json_object_new_int64((int64_t)token));
	if (label)
		json_object_object_add(r, "label", json_object_new_string(label));
	return simple(c, r, fd);
}

int hl_retrieve_fd(hl_client *c, const char *session, uint64_t token, int *fd_out)
{
	struct json_object *r = req_new("retrieve", session), *rep;
	int rc, fd = -1;

	if (token > (uint64_t)INT64_MAX) {
		json_object_put(r);
		return -EINVAL;
	}
	json_object_object_add(r, "token", json_object_new_int64((int64_t)token));
	rc = call(c, r, -1, &rep, &fd);
	json_object_put(rep);
	if (rc == 0 && fd < 0) {
		snprintf(c->err, sizeof(c->err), "agent replied without an fd");
		rc = -EPROTO;
	}
	if (rc == 0)
		*fd_out = fd;
	return rc;
}

int hl_retrieve_fd_self(hl_client *c, const char *session, uint64_t token, int *fd_out)
{
	struct json_object *r = req_new("retrieve", session), *rep = NULL;
	int rc, sfd = -1, fd;
	const char *be;

	if (token > (uint64_t)INT64_MAX) {
		json_object_put(r);
		return -EINVAL;
	}
	json_object_object_add(r, "token", json_object_new_int64((int64_t)token));
	json_object_object_add(r, "handoff", json_object_new_boolean(1));
	rc = call(c, r, -1, &rep, &sfd);
	be = rep ? hl_jstr(rep, "backend") : NULL;
	if (rc == 0 && (sfd < 0 || !hl_jbool(rep, "handoff", false) || !be)) {
		snprintf(c->err, sizeof(c->err), "agent replied without its session fd");
		rc = -EPROTO;
	}
	if (rc == 0) {
		fd = !strcmp(be, "fake") ? hl_fake_retrieve_fd(sfd, token) : hl_luo_retrieve_fd(sfd, token);
		if (fd < 0) {
			snprintf(c->err, sizeof(c->err), "RETRIEVE_FD of token %llu: %s", (unsigned long long)token,
				 strerror(-fd));
			rc = fd;
		} else {
			*fd_out = fd;
		}
	}
	if (sfd >= 0)
		close(sfd);
	json_object_put(rep);
	return rc;
}

/* Append the sessions of one list page to *v (*cnt entries, *cap allocated). */
static int add_page(struct json_object *arr, struct hl_session_info **v, size_t *cnt, size_t *cap)
{
	size_t k = json_object_array_length(arr);

	if (*cnt + k > *cap) {
		size_t nc = (*cnt + k) * 2;
		struct hl_session_info *nv = realloc(*v, (nc ? nc : 1) * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		memset(nv + *cap, 0, (nc - *cap) * sizeof(*nv));
		*v = nv;
		*cap = nc;
	}
	for (size_t i = 0; i < k; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i), *fds;
		struct hl_session_info *x = &(*v)[(*cnt)++];
		const char *st = hl_jstr(s, "state");

		snprintf(x->name, sizeof(x->name), "%s", hl_jstr(s, "name") ? hl_jstr(s, "name") : "");
		x->uid = (uint32_t)hl_jint(s, "uid", 0);
		x->incoming = st && !strcmp(st, "incoming");
		x->created = hl_jint(s, "created", 0);
		if (json_object_object_get_ex(s, "fds", &fds) && json_object_is_type(fds, json_type_array)) {
			size_t nf = json_object_array_length(fds);

			x->fds = calloc(nf ? nf : 1, sizeof(*x->fds));
			if (!x->fds)
				return -ENOMEM;
			for (size_t j = 0; j < nf; j++) {
				struct json_object *f = json_object_array_get_idx(fds, j);
				const char *lb = hl_jstr(f, "label");

				x->fds[j].token = (uint64_t)hl_jint(f, "token", 0);
				snprintf(x->fds[j].label, sizeof(x->fds[j].label), "%s", lb ? lb : "");
				x->fds[j].hugetlb = hl_jbool(f, "hugetlb", false);
				x->fds[j].retrieved = hl_jbool(f, "retrieved", false);
				x->nfds++;
			}
		}
	}
	return 0;
}

int hl_list_sessions(hl_client *c, struct hl_session_info **out, size_t *n)
{
	struct hl_session_info *v = NULL;
	size_t cnt = 0, cap = 0;
	int64_t after = -1;
	int rc;

	*out = NULL;
	*n = 0;
	/* the agent pages its answer: follow "next" until "more" is false */
	for (int page = 0; page < 4096; page++) {
		struct json_object *r = req_new("list", NULL), *rep, *arr;

		if (after >= 0)
			json_object_object_add(r, "after", json_object_new_int64(after));
		rc = call(c, r, -1, &rep, NULL);
		if (rc == 0 && (!json_object_object_get_ex(rep, "sessions", &arr) ||
				!json_object_is_type(arr, json_type_array)))
			rc = -EPROTO;
		if (rc == 0)
			rc = add_page(arr, &v, &cnt, &cap);
		if (rc == 0 && hl_jbool(rep, "more", false)) {
			int64_t nx = hl_jint(rep, "next", -1);

			if (nx <= after)
				rc = -EPROTO;
			after = nx;
		} else if (rc == 0) {
			json_object_put(rep);
			*out = v ? v : calloc(1, sizeof(*v));
			*n = cnt;
			return *out ? 0 : -ENOMEM;
		}
		json_object_put(rep);
		if (rc < 0)
			break;
	}
	hl_free_sessions(v, cnt);
	return rc < 0 ? rc : -EPROTO;
}

void hl_free_sessions(struct hl_session_info *s, size_t n)
{
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i].fds);
	free(s);
}

int hl_subscribe(hl_client *c)
{
	int rc = simple(c, req_new("subscribe", NULL), -1);

	if (rc == 0)
		c->subscribed = true;
	return rc;
}

static int ack(hl_client *c, const char *op, uint64_t update_id, const char *reason)
{
	struct json_object *r = req_new(op, NULL);

	json_object_object_add(r, "update", json_object_new_int64((int64_t)update_id));
	if (reason)
		json_object_object_add(r, "reason", json_object_new_string(reason));
	return simple(c, r, -1);
}

int hl_ready(hl_client *c, uint64_t update_id)
{
	return ack(c, "ready", update_id, NULL);
}

int hl_refuse(hl_client *c, uint64_t update_id, const char *reason)
{
	return ack(c, "refuse", update_id, reason);
}

static void fill_event(struct json_object *o, struct hl_event *ev)
{
	const char *e = hl_jstr(o, "event");
	const char *t;

	memset(ev, 0, sizeof(*ev));
	ev->type = !strcmp(e, "prepare") ? HL_EVENT_PREPARE : !strcmp(e, "resume") ? HL_EVENT_RESUME :
		   !strcmp(e, "progress") ? HL_EVENT_PROGRESS : HL_EVENT_OTHER;
	ev->update_id = (uint64_t)hl_jint(o, "update", 0);
	ev->timeout_ms = hl_jint(o, "timeout_ms", 0);
	if ((t = hl_jstr(o, "stage")))
		snprintf(ev->stage, sizeof(ev->stage), "%s", t);
	t = hl_jstr(o, "reason");
	if (!t)
		t = hl_jstr(o, "message");
	if (!t)
		t = hl_jstr(o, "kernel");
	if (t)
		snprintf(ev->text, sizeof(ev->text), "%s", t);
}

int hl_wait_event(hl_client *c, int timeout_ms, struct hl_event *ev)
{
	int64_t deadline = timeout_ms >= 0 ? hl_now_ms() + timeout_ms : -1;

	for (;;) {
		struct json_object *o;
		int rc, left;

		if (c->qh) {
			struct qev *q = c->qh;

			c->qh = q->next;
			if (!c->qh)
				c->qt = NULL;
			fill_event(q->o, ev);
			json_object_put(q->o);
			free(q);
			return 0;
		}
		left = deadline < 0 ? -1 : (int)(deadline - hl_now_ms());
		if (deadline >= 0 && left < 0)
			left = 0;
		rc = recv_json(c, left, &o, NULL);
		if ((rc == -ECONNRESET || rc == -EPIPE) && c->reconnect_ms) {
			rc = reconnect(c);
			if (rc < 0)
				return rc;
			memset(ev, 0, sizeof(*ev));
			ev->type = HL_EVENT_RECONNECTED;
			snprintf(ev->text, sizeof(ev->text), "reconnected to %s%s", c->path,
				 c->subscribed ? " and subscribed again" : "");
			return 0;
		}
		if (rc < 0)
			return rc;
		if (hl_jstr(o, "event")) {
			fill_event(o, ev);
			json_object_put(o);
			return 0;
		}
		json_object_put(o); /* stray reply */
	}
}

int hl_call_json(hl_client *c, const char *request, int fd_in, char **reply, int *fd_out)
{
	struct json_object *req = hl_json_parse(request, strlen(request)), *rep = NULL;
	int rc;

	if (reply)
		*reply = NULL;
	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return -EINVAL;
	}
	rc = call(c, req, fd_in, &rep, fd_out);
	if (reply && rep)
		*reply = hl_json_dump(rep, NULL);
	json_object_put(rep);
	return rc;
}
