/* SPDX-License-Identifier: MIT */
/* Request handlers, ownership rules and the update orchestration. */
#include "agent.h"
#include "../common/kcheck.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ownership -------------------------------------------------------- */

/* A caller may act on a session iff it is root or owns it. */
bool hl_authorized(uid_t caller, uint32_t owner)
{
	return caller == 0 || (uint32_t)caller == owner;
}

/* Resolve the uid namespace a request addresses; only root may name another uid. */
int hl_target_uid(uid_t caller, bool has_uid, uint32_t uid, uint32_t *target)
{
	if (!has_uid) {
		*target = (uint32_t)caller;
		return 0;
	}
	if (!hl_authorized(caller, uid))
		return -EPERM;
	*target = uid;
	return 0;
}

int session_kname(char out[HL_KNAME_MAX], uint32_t uid, const char *name)
{
	int n = snprintf(out, HL_KNAME_MAX, "hl:%u:%s", (unsigned)uid, name);

	return (n < 0 || n >= HL_KNAME_MAX) ? -ENAMETOOLONG : 0;
}

void session_tag(char *out, size_t len, const struct session *s)
{
	size_t o = (size_t)snprintf(out, len, "%s-", s->incoming ? "si" : "so");

	for (const unsigned char *p = (const unsigned char *)s->kname; *p && o + 3 < len; p++)
		o += (size_t)snprintf(out + o, len - o, "%02x", *p);
}

struct session *session_find(struct agent *a, uint32_t uid, const char *name, bool incoming)
{
	for (struct session *s = a->sessions; s; s = s->next)
		if (s->uid == uid && s->incoming == incoming && !strcmp(s->name, name))
			return s;
	return NULL;
}

void session_free(struct session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->fds);
	free(s);
}

void session_unlink(struct agent *a, struct session *s)
{
	for (struct session **pp = &a->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

static int count_sessions(struct agent *a, bool by_uid, uint32_t uid)
{
	int n = 0;

	for (struct session *s = a->sessions; s; s = s->next)
		if (!by_uid || s->uid == uid)
			n++;
	return n;
}

/* Close a session for good: drop it from the fd store, then close its fd. */
static void session_close(struct agent *a, struct session *s)
{
	char tag[160];

	session_tag(tag, sizeof(tag), s);
	fdstore_drop(a, tag);
	session_unlink(a, s);
	session_free(s);
}

static struct json_object *session_json(const struct session *s)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "uid", json_object_new_int64(s->uid));
	json_object_object_add(o, "kname", json_object_new_string(s->kname));
	json_object_object_add(o, "state", json_object_new_string(s->incoming ? "incoming" : "outgoing"));
	json_object_object_add(o, "created", json_object_new_int64(s->created));
	json_object_object_add(o, "fds", session_fds_json(s));
	return o;
}

static void reply_errno(struct agent *a, struct client *c, int64_t id, int err, const char *what)
{
	client_send(a, c, hl_reply_err(id, err, "%s: %s", what, strerror(err)), -1);
}

/* ---- session ops ------------------------------------------------------ */

static void op_create(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	uint32_t uid;
	int fd, rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(a, c, r->id, -rc, "uid");
	if (session_find(a, uid, r->session, false))
		return client_send(a, c, hl_reply_err(r->id, EEXIST, "session \"%s\" already exists", r->session), -1);
	if (count_sessions(a, true, uid) >= HL_MAX_SESSIONS_PER_UID)
		return client_send(a, c, hl_reply_err(r->id, EDQUOT, "uid %u has the maximum of %d sessions",
						      (unsigned)uid, HL_MAX_SESSIONS_PER_UID), -1);
	if (count_sessions(a, false, 0) >= HL_MAX_SESSIONS_TOTAL)
		return client_send(a, c, hl_reply_err(r->id, ENOSPC, "agent session table full"), -1);
	s = calloc(1, sizeof(*s));
	if (!s)
		return reply_errno(a, c, r->id, ENOMEM, "create");
	s->fd = -1;
	s->uid = uid;
	snprintf(s->name, sizeof(s->name), "%s", r->session);
	if ((rc = session_kname(s->kname, uid, r->session)) < 0) {
		session_free(s);
		return reply_errno(a, c, r->id, -rc, "session name");
	}
	fd = a->be.create_session(&a->be, a->dev, s->kname);
	if (fd < 0) {
		session_free(s);
		return reply_errno(a, c, r->id, -fd, "LUO create session");
	}
	s->fd = fd;
	s->created = hl_wall_s();
	s->next = a->sessions;
	a->sessions = s;
	char tag[160];

	session_tag(tag, sizeof(tag), s);
	fdstore_put(a, tag, s->fd);
	state_write(a, "create");
	LOGI(a, "uid %u created session %s", (unsigned)uid, s->name);
	struct json_object *o = hl_reply_ok(r->id);

	json_object_object_add(o, "session", session_json(s));
	client_send(a, c, o, -1);
}

static void op_preserve(struct agent *a, struct client *c, struct hl_req *r, int fd)
{
	struct session *s;
	struct fdrec *nf;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0) {
		reply_errno(a, c, r->id, -rc, "uid");
		goto out;
	}
	if (fd < 0) {
		client_send(a, c, hl_reply_err(r->id, EBADF, "preserve needs one fd (SCM_RIGHTS)"), -1);
		goto out;
	}
	s = session_find(a, uid, r->session, false);
	if (!s) {
		client_send(a, c, hl_reply_err(r->id, ENOENT, "no outgoing session \"%s\" (create it first)",
					       r->session), -1);
		goto out;
	}
	for (size_t i = 0; i < s->nfds; i++)
		if (s->fds[i].token == r->token) {
			client_send(a, c, hl_reply_err(r->id, EEXIST, "token %" PRIu64 " already used", r->token), -1);
			goto out;
		}
	if (s->nfds >= HL_MAX_TOKENS_PER_SESSION) {
		client_send(a, c, hl_reply_err(r->id, ENOSPC, "session has the maximum of %d fds",
					       HL_MAX_TOKENS_PER_SESSION), -1);
		goto out;
	}
	nf = realloc(s->fds, (s->nfds + 1) * sizeof(*nf));
	if (!nf) {
		reply_errno(a, c, r->id, ENOMEM, "preserve");
		goto out;
	}
	s->fds = nf;
	rc = a->be.preserve_fd(&a->be, s->fd, fd, r->token);
	if (rc < 0) {
		client_send(a, c, hl_reply_err(r->id, -rc, "LUO preserve: %s%s", strerror(-rc),
					       rc == -ENOENT ? " (no kernel handler for this kind of file)" : ""), -1);
		goto out;
	}
	memset(&s->fds[s->nfds], 0, sizeof(s->fds[0]));
	s->fds[s->nfds].token = r->token;
	s->fds[s->nfds].hugetlb = hl_fd_is_hugetlb(fd);
	snprintf(s->fds[s->nfds].label, sizeof(s->fds[0].label), "%s", r->label ? r->label : "");
	s->nfds++;
	state_write(a, "preserve");
	LOGI(a, "uid %u session %s: preserved token %" PRIu64 "%s", (unsigned)uid, s->name, r->token,
	     s->fds[s->nfds - 1].hugetlb ? " (hugetlb)" : "");
	client_send(a, c, hl_reply_ok(r->id), -1);
out:
	if (fd >= 0)
		close(fd);
}

static void op_list(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o, *arr = json_object_new_array();
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0) {
		json_object_put(arr);
		return reply_errno(a, c, r->id, -rc, "uid");
	}
	for (struct session *s = a->sessions; s; s = s->next) {
		bool show = (c->uid == 0 && !r->has_uid) ? (r->all || s->uid == uid) : s->uid == uid;

		if (show && hl_authorized(c->uid, s->uid))
			json_object_array_add(arr, session_json(s));
	}
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "sessions", arr);
	client_send(a, c, o, -1);
}

static void op_retrieve(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	struct fdrec *f = NULL;
	struct json_object *o;
	uint32_t uid;
	int rc, fd;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(a, c, r->id, -rc, "uid");
	s = session_find(a, uid, r->session, true);
	if (!s) {
		if (session_find(a, uid, r->session, false))
			return client_send(a, c, hl_reply_err(r->id, EINVAL,
				"session \"%s\" was created in this boot; fds come back after an update", r->session), -1);
		return client_send(a, c, hl_reply_err(r->id, ENOENT, "no session \"%s\" from the previous kernel",
						      r->session), -1);
	}
	for (size_t i = 0; i < s->nfds; i++)
		if (s->fds[i].token == r->token)
			f = &s->fds[i];
	fd = a->be.retrieve_fd(&a->be, s->fd, r->token);
	if (fd < 0)
		return client_send(a, c, hl_reply_err(r->id, -fd, "LUO retrieve token %" PRIu64 ": %s",
						      r->token, strerror(-fd)), -1);
	if (f && !f->retrieved) {
		f->retrieved = true;
		state_write(a, "retrieve");
	}
	LOGI(a, "uid %u session %s: token %" PRIu64 " handed back to pid %d", (unsigned)uid, s->name,
	     r->token, (int)c->pid);
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "token", json_object_new_int64((int64_t)r->token));
	json_object_object_add(o, "label", json_object_new_string(f ? f->label : ""));
	json_object_object_add(o, "hugetlb", json_object_new_boolean(hl_fd_is_hugetlb(fd)));
	client_send(a, c, o, fd);
}

/* Finish an incoming session; returns 0 or -errno. Removes it on success. */
static int finish_session(struct agent *a, struct session *s)
{
	int rc = a->be.finish(&a->be, s->fd);

	if (rc < 0)
		return rc;
	LOGI(a, "session %s of uid %u finished", s->name, (unsigned)s->uid);
	session_close(a, s);
	return 0;
}

static void op_finish(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o, *done, *failed;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(a, c, r->id, -rc, "uid");
	if (!r->all) {
		struct session *s = session_find(a, uid, r->session, true);

		if (!s) {
			if (session_find(a, uid, r->session, false))
				return client_send(a, c, hl_reply_err(r->id, EINVAL,
					"session \"%s\" was created in this boot; use destroy", r->session), -1);
			return client_send(a, c, hl_reply_err(r->id, ENOENT, "no session \"%s\" from the previous kernel",
							      r->session), -1);
		}
		rc = finish_session(a, s);
		state_write(a, "finish");
		if (rc < 0)
			return client_send(a, c, hl_reply_err(r->id, -rc, "LUO finish: %s", strerror(-rc)), -1);
		return client_send(a, c, hl_reply_ok(r->id), -1);
	}
	done = json_object_new_array();
	failed = json_object_new_array();
	for (struct session *s = a->sessions, *n; s; s = n) {
		n = s->next;
		if (!s->incoming)
			continue;
		if (!(c->uid == 0 && !r->has_uid) && s->uid != uid)
			continue;
		if (!hl_authorized(c->uid, s->uid))
			continue;
		char nm[HL_KNAME_MAX];

		snprintf(nm, sizeof(nm), "%s", s->kname);
		rc = finish_session(a, s);
		if (rc < 0) {
			struct json_object *f = json_object_new_object();

			json_object_object_add(f, "kname", json_object_new_string(nm));
			json_object_object_add(f, "error", json_object_new_string(strerror(-rc)));
			json_object_array_add(failed, f);
		} else {
			json_object_array_add(done, json_object_new_string(nm));
		}
	}
	state_write(a, "finish");
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "finished", done);
	json_object_object_add(o, "failed", failed);
	client_send(a, c, o, -1);
}

static void op_destroy(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(a, c, r->id, -rc, "uid");
	s = session_find(a, uid, r->session, false);
	if (!s) {
		s = session_find(a, uid, r->session, true);
		if (!s)
			return client_send(a, c, hl_reply_err(r->id, ENOENT, "no session \"%s\"", r->session), -1);
		rc = finish_session(a, s);
		state_write(a, "destroy");
		if (rc < 0)
			return client_send(a, c, hl_reply_err(r->id, -rc, "LUO finish: %s", strerror(-rc)), -1);
		return client_send(a, c, hl_reply_ok(r->id), -1);
	}
	LOGI(a, "uid %u destroyed session %s (%zu fds unpreserved)", (unsigned)uid, s->name, s->nfds);
	session_close(a, s); /* closing an outgoing session unpreserves its files */
	state_write(a, "destroy");
	client_send(a, c, hl_reply_ok(r->id), -1);
}

/* ---- status ----------------------------------------------------------- */

static const char *boot_name(enum boot_kind b)
{
	return b == BOOT_UPDATED ? "updated" : b == BOOT_RESTARTED ? "restarted" : "fresh";
}

static void op_hello(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o;

	if (r->version != HL_PROTO_VERSION) {
		client_send(a, c, hl_reply_err(r->id, EPROTONOSUPPORT, "client speaks %lld, agent speaks %d",
					       (long long)r->version, HL_PROTO_VERSION), -1);
		return;
	}
	if (r->client)
		snprintf(c->name, sizeof(c->name), "%s", r->client);
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "agent", json_object_new_string(HL_VERSION));
	json_object_object_add(o, "version", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "uid", json_object_new_int64(c->uid));
	json_object_object_add(o, "boot", json_object_new_string(boot_name(a->boot)));
	client_send(a, c, o, -1);
}

static void op_status(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o = hl_reply_ok(r->id), *u = json_object_new_object();
	int out = 0, in = 0, subs = 0, mine = 0;

	for (struct session *s = a->sessions; s; s = s->next) {
		if (s->incoming)
			in++;
		else
			out++;
		if (s->uid == (uint32_t)c->uid)
			mine++;
	}
	for (struct client *k = a->clients; k; k = k->next)
		if (k->subscribed && !k->dead)
			subs++;
	json_object_object_add(o, "agent", json_object_new_string(HL_VERSION));
	json_object_object_add(o, "protocol", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "backend", json_object_new_string(a->be.name));
	json_object_object_add(o, "device", json_object_new_string(a->be.path));
	json_object_object_add(o, "boot", json_object_new_string(boot_name(a->boot)));
	json_object_object_add(o, "uptime_s", json_object_new_int64((hl_now_ms() - a->start_ms) / 1000));
	json_object_object_add(o, "fd_store", json_object_new_string(
		a->fdstore == FDSTORE_SYSTEMD ? "systemd" : a->fdstore == FDSTORE_KEEPER ?
		(a->keeper_fd >= 0 ? "keeper" : "keeper (not connected)") : "none"));
	json_object_object_add(o, "outgoing_sessions", json_object_new_int(out));
	json_object_object_add(o, "incoming_sessions", json_object_new_int(in));
	json_object_object_add(o, "your_sessions", json_object_new_int(mine));
	json_object_object_add(o, "clients", json_object_new_int(a->nclients));
	json_object_object_add(o, "subscribers", json_object_new_int(subs));
	json_object_object_add(u, "state", json_object_new_string(a->in_barrier ? "barrier" : "idle"));
	if (a->in_barrier) {
		json_object_object_add(u, "id", json_object_new_int64((int64_t)a->update_id));
		json_object_object_add(u, "kernel", json_object_new_string(a->update_kernel));
		json_object_object_add(u, "remaining_ms", json_object_new_int64(a->barrier_deadline_ms - hl_now_ms()));
	}
	json_object_object_add(o, "update", u);
	if (a->last_update)
		json_object_object_add(o, "last_update", json_object_get(a->last_update));
	json_object_object_add(o, "claim_timeout_s", json_object_new_int(a->claim_timeout_s));
	json_object_object_add(o, "claim_remaining_s", a->claim_deadline_ms ?
		json_object_new_int64((a->claim_deadline_ms - hl_now_ms()) / 1000) : NULL);
	json_object_object_add(o, "unclaimed_policy",
			       json_object_new_string(a->unclaimed == UNCLAIMED_KEEP ? "keep" : "finish"));
	if (a->report)
		json_object_object_add(o, "report", json_object_get(a->report));
	json_object_object_add(o, "hugetlb_support", a->hugetlb_support < 0 ? NULL :
			       json_object_new_boolean(a->hugetlb_support == 1));
	json_object_object_add(o, "state_seq", json_object_new_int64((int64_t)a->state_seq));
	client_send(a, c, o, -1);
}

/* ---- update orchestration --------------------------------------------- */

static void progress(struct agent *a, const char *stage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void progress(struct agent *a, const char *stage, const char *fmt, ...)
{
	struct json_object *e;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOGI(a, "update %" PRIu64 ": %s: %s", a->update_id, stage, msg);
	if (!a->updater)
		return;
	e = hl_event_new("progress");
	json_object_object_add(e, "update", json_object_new_int64((int64_t)a->update_id));
	json_object_object_add(e, "stage", json_object_new_string(stage));
	json_object_object_add(e, "message", json_object_new_string(msg));
	client_send(a, a->updater, e, -1);
}

static void set_last_update(struct agent *a, const char *result, int code, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64((int64_t)a->update_id));
	json_object_object_add(o, "result", json_object_new_string(result));
	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, "time", json_object_new_int64(hl_wall_s()));
	json_object_put(a->last_update);
	a->last_update = o;
}

static void update_cancel(struct agent *a, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void update_cancel(struct agent *a, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	bool was_barrier;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* first, so that a client dropped while we notify does not re-enter */
	was_barrier = a->in_barrier;
	a->in_barrier = false;
	rc = a->be.kexec_unload(&a->be, a->dev);
	if (rc < 0)
		LOGE(a, "kexec unload failed: %s", strerror(-rc));
	LOGI(a, "update %" PRIu64 " cancelled: %s; kernel unloaded, sessions intact", a->update_id, msg);
	for (struct client *k = a->clients; k && was_barrier; k = k->next) {
		if (!k->subscribed || k->dead)
			continue;
		struct json_object *e = hl_event_new("resume");

		json_object_object_add(e, "update", json_object_new_int64((int64_t)a->update_id));
		json_object_object_add(e, "reason", json_object_new_string(msg));
		client_send(a, k, e, -1);
		k->ack = 0;
	}
	set_last_update(a, "cancelled", code, msg);
	if (a->updater) {
		struct client *u = a->updater;

		a->updater = NULL;
		client_send(a, u, hl_reply_err(a->updater_req, code, "update cancelled: %s", msg), -1);
	}
}

static void update_kexec(struct agent *a)
{
	struct session *s;
	int lost = 0, rc;

	a->in_barrier = false;
	for (s = a->sessions; s; s = s->next)
		if (s->incoming)
			lost++;
	if (lost)
		LOGI(a, "%d unfinished session(s) from the previous kernel will not survive this update", lost);
	progress(a, "kexec", "all clients ready; saving agent state");
	{
		char m[sizeof(a->update_kernel) + 32];

		/* before the state write: the next kernel's agent reports it */
		snprintf(m, sizeof(m), "kexec into %s", a->update_kernel);
		set_last_update(a, "kexec", 0, m);
	}
	rc = state_write(a, "kexec");
	if (rc < 0) {
		a->in_barrier = true; /* clients prepared: they must get resume */
		return update_cancel(a, -rc, "cannot save agent state: %s", strerror(-rc));
	}
	progress(a, "kexec", "rebooting into the new kernel");
	/* Progress packets are small: they are in the socket buffer by now. */
	rc = a->be.kexec_reboot(&a->be, a->dev);
	if (rc < 0) {
		a->in_barrier = true;
		return update_cancel(a, -rc, "kexec reboot failed: %s", strerror(-rc));
	}
	/* Only the fake backend gets here: the "machine" has rebooted. */
	if (a->updater) {
		struct json_object *o = hl_reply_ok(a->updater_req);
		struct client *u = a->updater;

		a->updater = NULL;
		json_object_object_add(o, "update", json_object_new_int64((int64_t)a->update_id));
		json_object_object_add(o, "kexec", json_object_new_boolean(1));
		client_send(a, u, o, -1);
	}
	fdstore_exit(a);
	a->exit_after_kexec = true;
	a->quit = 1;
}

static void barrier_check(struct agent *a)
{
	if (!a->in_barrier)
		return;
	for (struct client *k = a->clients; k; k = k->next)
		if (k->subscribed && !k->dead && k->ack != 1)
			return;
	update_kexec(a);
}

static bool kho_enabled(void)
{
	char *cl = hl_read_file("/proc/cmdline", 8192, NULL);
	char *v = hl_cmdline_param(cl, "kho");
	bool on;

	if (v)
		on = hl_param_on(cl, "kho");
	else
		on = access("/sys/kernel/debug/kho", F_OK) == 0 || hl_kconfig("KEXEC_HANDOVER_ENABLE_DEFAULT") == 'y';
	free(v);
	free(cl);
	return on;
}

static void op_update(struct agent *a, struct client *c, struct hl_req *r)
{
	int kfd = -1, ifd = -1, rc, nsubs = 0;
	bool want_hugetlb = false;

	if (c->uid != 0)
		return client_send(a, c, hl_reply_err(r->id, EPERM, "only root may start an update"), -1);
	if (a->in_barrier)
		return client_send(a, c, hl_reply_err(r->id, EBUSY, "update %" PRIu64 " already in progress",
						      a->update_id), -1);
	a->update_id = a->next_update_id++;
	a->updater = c;
	a->updater_req = r->id;
	snprintf(a->update_kernel, sizeof(a->update_kernel), "%s", r->kernel);
	a->barrier_timeout_ms = r->timeout_ms ? r->timeout_ms : 30000;

	progress(a, "preflight", "checking the new command line and kernel support");
	if (!hl_param_on(r->cmdline, "kho") || !hl_param_on(r->cmdline, "liveupdate"))
		return update_cancel(a, EINVAL, "the new command line must keep kho=on and liveupdate=on");
	if (!a->be.fake && !kho_enabled())
		return update_cancel(a, EOPNOTSUPP, "KHO is not enabled in the running kernel");
	for (struct session *s = a->sessions; s; s = s->next)
		for (size_t i = 0; i < s->nfds; i++)
			if (!s->incoming && s->fds[i].hugetlb)
				want_hugetlb = true;
	if (want_hugetlb && a->be.hugetlb_supported(&a->be, a->dev) != 1)
		return update_cancel(a, EOPNOTSUPP, "hugetlb fds are preserved but the kernel has no hugetlb LUO support");
	kfd = open(r->kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return update_cancel(a, errno, "cannot open kernel %s: %s", r->kernel, strerror(errno));
	if (r->initrd) {
		ifd = open(r->initrd, O_RDONLY | O_CLOEXEC);
		if (ifd < 0) {
			rc = errno;
			close(kfd);
			return update_cancel(a, rc, "cannot open initrd %s: %s", r->initrd, strerror(rc));
		}
	}
	progress(a, "load", "loading %s with kexec_file_load", r->kernel);
	rc = a->be.kexec_load(&a->be, a->dev, kfd, ifd, r->cmdline);
	close(kfd);
	if (ifd >= 0)
		close(ifd);
	if (rc < 0)
		return update_cancel(a, -rc, "kexec_file_load failed: %s", strerror(-rc));
	if (r->dry_run) {
		a->be.kexec_unload(&a->be, a->dev);
		set_last_update(a, "dry-run", 0, "preflight and load succeeded");
		struct json_object *o = hl_reply_ok(r->id);

		json_object_object_add(o, "update", json_object_new_int64((int64_t)a->update_id));
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
		a->updater = NULL;
		client_send(a, c, o, -1);
		return;
	}
	a->in_barrier = true;
	a->barrier_deadline_ms = hl_now_ms() + a->barrier_timeout_ms;
	for (struct client *k = a->clients; k; k = k->next) {
		if (!k->subscribed || k->dead)
			continue;
		struct json_object *e = hl_event_new("prepare");

		k->ack = 0;
		json_object_object_add(e, "update", json_object_new_int64((int64_t)a->update_id));
		json_object_object_add(e, "timeout_ms", json_object_new_int64(a->barrier_timeout_ms));
		json_object_object_add(e, "kernel", json_object_new_string(r->kernel));
		client_send(a, k, e, -1);
		nsubs++;
	}
	progress(a, "barrier", "waiting up to %lld ms for %d subscribed client(s)",
		 (long long)a->barrier_timeout_ms, nsubs);
	barrier_check(a);
}

static void op_ack(struct agent *a, struct client *c, struct hl_req *r)
{
	if (!a->in_barrier || r->update_id != a->update_id)
		return client_send(a, c, hl_reply_err(r->id, ESRCH, "no update %" PRIu64 " in progress", r->update_id), -1);
	if (!c->subscribed)
		return client_send(a, c, hl_reply_err(r->id, EINVAL, "not subscribed"), -1);
	client_send(a, c, hl_reply_ok(r->id), -1);
	if (r->op == HL_OP_REFUSE) {
		c->ack = -1;
		update_cancel(a, ECANCELED, "client %s (pid %d, uid %u) refused: %s", c->name[0] ? c->name : "?",
			      (int)c->pid, (unsigned)c->uid, r->reason ? r->reason : "no reason given");
		return;
	}
	c->ack = 1;
	LOGI(a, "update %" PRIu64 ": client pid %d ready", a->update_id, (int)c->pid);
	barrier_check(a);
}

void agent_client_gone(struct agent *a, struct client *c)
{
	if (c == a->updater) {
		a->updater = NULL;
		if (a->in_barrier)
			update_cancel(a, ECANCELED, "the requesting client disconnected");
	} else if (a->in_barrier && c->subscribed) {
		update_cancel(a, ECANCELED, "subscribed client pid %d (uid %u) disconnected during the barrier",
			      (int)c->pid, (unsigned)c->uid);
	}
}

void agent_tick(struct agent *a)
{
	int64_t now = hl_now_ms();

	if (a->in_barrier && now >= a->barrier_deadline_ms) {
		char who[256] = "";
		size_t o = 0;

		for (struct client *k = a->clients; k; k = k->next)
			if (k->subscribed && !k->dead && k->ack != 1 && o < sizeof(who) - 40)
				o += (size_t)snprintf(who + o, sizeof(who) - o, "%spid %d", o ? ", " : "", (int)k->pid);
		update_cancel(a, ETIMEDOUT, "no answer within %lld ms from %s", (long long)a->barrier_timeout_ms, who);
	}
	if (a->claim_deadline_ms && now >= a->claim_deadline_ms) {
		int n = 0;

		a->claim_deadline_ms = 0;
		if (!a->report)
			a->report = json_object_new_array();
		for (struct session *s = a->sessions, *nx; s; s = nx) {
			nx = s->next;
			if (!s->incoming)
				continue;
			size_t got = 0;

			for (size_t i = 0; i < s->nfds; i++)
				got += s->fds[i].retrieved;
			LOGE(a, "unclaimed session %s of uid %u: %zu of %zu fd(s) retrieved; policy %s",
			     s->name, (unsigned)s->uid, got, s->nfds, a->unclaimed == UNCLAIMED_KEEP ? "keep" : "finish");
			struct json_object *e = session_json(s);

			json_object_object_add(e, "problem", json_object_new_string("unclaimed"));
			json_object_object_add(e, "action", json_object_new_string(
				a->unclaimed == UNCLAIMED_KEEP ? "kept" : "finished"));
			json_object_array_add(a->report, e);
			if (a->unclaimed == UNCLAIMED_FINISH) {
				int rc = finish_session(a, s);

				if (rc < 0) {
					LOGE(a, "finish %s failed: %s; closing it", s->name, strerror(-rc));
					session_close(a, s);
				}
			}
			n++;
		}
		if (n)
			state_write(a, "claim-timeout");
	}
}

int64_t agent_next_deadline(struct agent *a)
{
	int64_t d = -1;

	if (a->in_barrier)
		d = a->barrier_deadline_ms;
	if (a->claim_deadline_ms && (d < 0 || a->claim_deadline_ms < d))
		d = a->claim_deadline_ms;
	return d;
}

void agent_handle_request(struct agent *a, struct client *c, struct hl_req *r, int fd)
{
	LOGD(a, "pid %d uid %u: %s", (int)c->pid, (unsigned)c->uid, r->op_name);
	switch (r->op) {
	case HL_OP_HELLO: op_hello(a, c, r); break;
	case HL_OP_STATUS: op_status(a, c, r); break;
	case HL_OP_CREATE: op_create(a, c, r); break;
	case HL_OP_PRESERVE: op_preserve(a, c, r, fd); fd = -1; break;
	case HL_OP_LIST: op_list(a, c, r); break;
	case HL_OP_RETRIEVE: op_retrieve(a, c, r); break;
	case HL_OP_FINISH: op_finish(a, c, r); break;
	case HL_OP_DESTROY: op_destroy(a, c, r); break;
	case HL_OP_SUBSCRIBE:
		c->subscribed = true;
		client_send(a, c, hl_reply_ok(r->id), -1);
		break;
	case HL_OP_READY:
	case HL_OP_REFUSE: op_ack(a, c, r); break;
	case HL_OP_UPDATE: op_update(a, c, r); break;
	default:
		client_send(a, c, hl_reply_err(r->id, EOPNOTSUPP, "unknown op"), -1);
	}
	if (fd >= 0)
		close(fd);
}
