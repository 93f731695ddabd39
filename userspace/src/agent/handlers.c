/* SPDX-License-Identifier: MIT */
/* Request handlers: session operations, status, and the claim timeout. */
#include "agent.h"
#include "closer.h"
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
#include <sys/vfs.h>
#include <unistd.h>

/* Close a session for good: drop it from the fd store, then close its fd. */
static void session_close(struct agent *a, struct session *s)
{
	char tag[HL_TAG_MAX];

	session_tag(tag, sizeof(tag), s);
	fdstore_drop(&a->fds, tag);
	session_unlink(&a->sessions, s);
	session_free(s);
}

static void reply_errno(struct client *c, int64_t id, int err, const char *what)
{
	client_send(c, hl_reply_err(id, err, "%s: %s", what, strerror(err)), -1);
}

/* finish all: names listed (knames up to 62 bytes), beyond only counted */
#define HL_FINISH_LIST_MAX 256

/* ---- passed fds ------------------------------------------------------- */

#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/*
 * Is fd, passed by peer uid, one the agent keeps? Only a memfd (shmem or
 * hugetlb) or a hugetlbfs file, open read-write, owned by the peer (root
 * may pass any owner's). F_GET_SEALS comes first: only shmem and hugetlbfs
 * answer it, so the later fstat/fstatfs never reach a FUSE daemon or any
 * other file system that could block the loop.
 * Returns 0 or -errno with a message in why.
 */
static int check_passed_fd(int fd, uid_t peer, char *why, size_t len)
{
	char path[64], link[80] = "";
	struct statfs sfs;
	struct stat st;
	ssize_t n;
	int fl;

	if (fcntl(fd, F_GET_SEALS) < 0) {
		snprintf(why, len, "the fd is not a memfd or hugetlbfs file");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	/*
	 * A memfd, or any shmem file without a link, which is what the
	 * kernel's memfd handler takes (memfd_luo_can_preserve): a memfd that
	 * came back from the previous kernel is one ("/ (deleted)", the
	 * handler recreates it without the "memfd:" name), and a client
	 * carrying it through a second update must be able to preserve it.
	 */
	if (strncmp(link, "/memfd:", 7) && (fstatfs(fd, &sfs) < 0 || (unsigned long)sfs.f_type != HUGETLBFS_MAGIC) &&
	    (fstat(fd, &st) < 0 || st.st_nlink != 0)) {
		snprintf(why, len, "the fd is a shmem file with a link (a file system name), not a memfd");
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR) {
		snprintf(why, len, "the fd is not open read-write");
		return -EBADF;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(why, len, "fstat: %s", strerror(errno));
		return -errno;
	}
	if (peer != 0 && st.st_uid != peer) {
		snprintf(why, len, "the file belongs to uid %u, not to the caller (uid %u)",
			 (unsigned)st.st_uid, (unsigned)peer);
		return -EPERM;
	}
	return 0;
}

/*
 * Every request that changes the bookkeeping is transactional: the state
 * write (and for a new session the fd store) must succeed, or the request
 * fails with that errno and leaves nothing changed. Where the kernel step
 * cannot be undone (preserve, finish, destroy) the state is written first.
 */
static void reply_unsaved(struct client *c, int64_t id, int rc, const char *what)
{
	LOGE("%s rolled back: the agent state could not be saved (%s)", what, strerror(-rc));
	client_send(c, hl_reply_err(id, -rc, "%s rolled back: cannot save the agent state: %s", what,
				    strerror(-rc)), -1);
}

/* ---- session ops ------------------------------------------------------ */

static void op_create(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	uint32_t uid;
	int fd, rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(c, r->id, -rc, "uid");
	if (session_find(&a->sessions, uid, r->session, false))
		return client_send(c, hl_reply_err(r->id, EEXIST, "session \"%s\" already exists", r->session), -1);
	if (session_count_uid(&a->sessions, uid) >= HL_MAX_SESSIONS_PER_UID)
		return client_send(c, hl_reply_err(r->id, EDQUOT, "uid %u has the maximum of %d sessions",
						      (unsigned)uid, HL_MAX_SESSIONS_PER_UID), -1);
	if (a->sessions.count >= HL_MAX_SESSIONS_TOTAL)
		return client_send(c, hl_reply_err(r->id, ENOSPC, "agent session table full"), -1);
	s = session_new(uid, r->session, false);
	if (!s)
		return reply_errno(c, r->id, ENAMETOOLONG, "session name");
	fd = a->be.create_session(&a->be, a->dev, s->kname);
	if (fd < 0) {
		session_free(s);
		return reply_errno(c, r->id, -fd, "LUO create session");
	}
	s->fd = fd;
	s->created = hl_wall_s();
	session_add(&a->sessions, s);
	s->barrier = update_uid_subscribed(a, uid);
	char tag[HL_TAG_MAX];

	session_tag(tag, sizeof(tag), s);
	rc = fdstore_put(&a->fds, tag, s->fd);
	if (rc < 0) {
		LOGE("create of session %s by uid %u rolled back: the fd store did not take it (%s)", s->name,
		     (unsigned)uid, strerror(-rc));
		session_close(a, s);
		return client_send(c, hl_reply_err(r->id, -rc, "create rolled back: the fd store did not take "
						  "the session: %s", strerror(-rc)), -1);
	}
	rc = state_write(a, "create");
	if (rc < 0) {
		session_close(a, s); /* unpreserves the new, empty session */
		return reply_unsaved(c, r->id, rc, "create");
	}
	LOGI("uid %u created session %s", (unsigned)uid, s->name);
	struct json_object *o = hl_reply_ok(r->id);

	json_object_object_add(o, "session", session_to_json(s));
	client_send(c, o, -1);
}

static void op_preserve(struct agent *a, struct client *c, struct hl_req *r, int fd)
{
	struct session *s;
	struct fdrec *nf;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0) {
		reply_errno(c, r->id, -rc, "uid");
		goto out;
	}
	if (fd < 0) {
		client_send(c, hl_reply_err(r->id, EBADF, "preserve needs one fd (SCM_RIGHTS)"), -1);
		goto out;
	}
	s = session_find(&a->sessions, uid, r->session, false);
	if (!s) {
		client_send(c, hl_reply_err(r->id, ENOENT, "no outgoing session \"%s\" (create it first)",
					       r->session), -1);
		goto out;
	}
	{
		char why[160];

		rc = check_passed_fd(fd, c->uid, why, sizeof(why));
		if (rc < 0) {
			client_send(c, hl_reply_err(r->id, -rc, "preserve: %s", why), -1);
			goto out;
		}
	}
	for (size_t i = 0; i < s->nfds; i++)
		if (s->fds[i].token == r->token) {
			client_send(c, hl_reply_err(r->id, EEXIST, "token %" PRIu64 " already used", r->token), -1);
			goto out;
		}
	if (s->nfds >= HL_MAX_TOKENS_PER_SESSION) {
		client_send(c, hl_reply_err(r->id, ENOSPC, "session has the maximum of %d fds",
					       HL_MAX_TOKENS_PER_SESSION), -1);
		goto out;
	}
	nf = realloc(s->fds, (s->nfds + 1) * sizeof(*nf));
	if (!nf) {
		reply_errno(c, r->id, ENOMEM, "preserve");
		goto out;
	}
	s->fds = nf;
	/* saved first: the kernel has no way to unpreserve one file */
	memset(&s->fds[s->nfds], 0, sizeof(s->fds[0]));
	s->fds[s->nfds].token = r->token;
	s->fds[s->nfds].hugetlb = hl_fd_is_hugetlb(fd);
	snprintf(s->fds[s->nfds].label, sizeof(s->fds[0].label), "%s", r->label ? r->label : "");
	s->nfds++;
	rc = state_write(a, "preserve");
	if (rc < 0) {
		s->nfds--;
		reply_unsaved(c, r->id, rc, "preserve");
		goto out;
	}
	rc = a->be.preserve_fd(&a->be, s->fd, fd, r->token);
	if (rc < 0) {
		s->nfds--;
		if (state_write(a, "preserve-failed") < 0)
			LOGE("session %s: the saved state names token %" PRIu64 " that the kernel refused",
			     s->name, r->token);
		client_send(c, hl_reply_err(r->id, -rc, "LUO preserve: %s%s", strerror(-rc),
					       rc == -ENOENT ? " (no kernel handler for this kind of file)" : ""), -1);
		goto out;
	}
	LOGI("uid %u session %s: preserved token %" PRIu64 "%s", (unsigned)uid, s->name, r->token,
	     s->fds[s->nfds - 1].hugetlb ? " (hugetlb)" : "");
	client_send(c, hl_reply_ok(r->id), -1);
out:
	closer_close(fd);
}

static int by_seq(const void *x, const void *y)
{
	const struct session *a = *(const struct session *const *)x, *b = *(const struct session *const *)y;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/*
 * One page of sessions in arrival order: as many as fit in HL_REPLY_BUDGET
 * bytes (one always fits: 128 fds with the longest labels are ~45 KB).
 * "more": true and "next" (the cursor for "after") when the page is not the
 * last one.
 */
static void op_list(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o, *arr;
	struct session **v;
	size_t n = 0, used = 0, i;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(c, r->id, -rc, "uid");
	v = calloc((size_t)a->sessions.count + 1, sizeof(*v));
	if (!v)
		return reply_errno(c, r->id, ENOMEM, "list");
	for (struct session *s = a->sessions.head; s; s = s->next) {
		bool show = (c->uid == 0 && !r->has_uid) ? (r->all || s->uid == uid) : s->uid == uid;

		if (show && hl_authorized(c->uid, s->uid) && (!r->has_after || s->seq > r->after))
			v[n++] = s;
	}
	qsort(v, n, sizeof(*v), by_seq);
	arr = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *j = session_to_json(v[i]);
		size_t len;

		json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
		if (i > 0 && used + len + 1 > HL_REPLY_BUDGET) {
			json_object_put(j);
			break;
		}
		used += len + 1;
		json_object_array_add(arr, j);
	}
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "sessions", arr);
	json_object_object_add(o, "more", json_object_new_boolean(i < n));
	if (i < n)
		json_object_object_add(o, "next", json_object_new_int64((int64_t)v[i - 1]->seq));
	free(v);
	client_send(c, o, -1);
}

static void op_retrieve(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	struct fdrec *f = NULL;
	struct json_object *o;
	bool marked = false;
	uint32_t uid;
	int rc, fd;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(c, r->id, -rc, "uid");
	s = session_find(&a->sessions, uid, r->session, true);
	if (!s) {
		if (session_find(&a->sessions, uid, r->session, false))
			return client_send(c, hl_reply_err(r->id, EINVAL,
				"session \"%s\" was created in this boot; fds come back after an update", r->session), -1);
		return client_send(c, hl_reply_err(r->id, ENOENT, "no session \"%s\" from the previous kernel",
						      r->session), -1);
	}
	for (size_t i = 0; i < s->nfds; i++)
		if (s->fds[i].token == r->token)
			f = &s->fds[i];
	if (r->handoff && !f)
		return client_send(c, hl_reply_err(r->id, ENOENT, "session \"%s\" has no token %" PRIu64,
						      r->session, r->token), -1);
	if (f && !f->retrieved) {
		f->retrieved = marked = true;
		rc = state_write(a, "retrieve");
		if (rc < 0) {
			f->retrieved = false;
			return reply_unsaved(c, r->id, rc, "retrieve");
		}
	}
	if (r->handoff) {
		/*
		 * The client retrieves the file itself from a copy of its
		 * session fd, so that the kernel charges the pages to the
		 * client's memory and hugetlb cgroups, not to the agent's.
		 */
		fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			rc = -errno;
			if (marked) {
				f->retrieved = false;
				state_write(a, "retrieve-failed");
			}
			return reply_errno(c, r->id, -rc, "dup of the session fd");
		}
		LOGI("uid %u session %s: session fd handed to pid %d to retrieve token %" PRIu64 " itself",
		     (unsigned)uid, s->name, (int)c->pid, r->token);
		o = hl_reply_ok(r->id);
		json_object_object_add(o, "token", json_object_new_int64((int64_t)r->token));
		json_object_object_add(o, "label", json_object_new_string(f->label));
		json_object_object_add(o, "hugetlb", json_object_new_boolean(f->hugetlb));
		json_object_object_add(o, "handoff", json_object_new_boolean(1));
		json_object_object_add(o, "backend", json_object_new_string(a->be.fake ? "fake" : "luo"));
		return client_send(c, o, fd);
	}
	fd = a->be.retrieve_fd(&a->be, s->fd, r->token);
	if (fd < 0) {
		if (marked) {
			f->retrieved = false;
			state_write(a, "retrieve-failed");
		}
		return client_send(c, hl_reply_err(r->id, -fd, "LUO retrieve token %" PRIu64 ": %s",
						      r->token, strerror(-fd)), -1);
	}
	LOGI("uid %u session %s: token %" PRIu64 " handed back to pid %d", (unsigned)uid, s->name,
	     r->token, (int)c->pid);
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "token", json_object_new_int64((int64_t)r->token));
	json_object_object_add(o, "label", json_object_new_string(f ? f->label : ""));
	json_object_object_add(o, "hugetlb", json_object_new_boolean(hl_fd_is_hugetlb(fd)));
	client_send(c, o, fd);
}

/* Finish an incoming session; returns 0 or -errno. Removes it on success. */
static int finish_session(struct agent *a, struct session *s)
{
	int rc = a->be.finish(&a->be, s->fd);

	if (rc < 0) {
		s->leaving = false;
		return rc;
	}
	LOGI("session %s of uid %u finished", s->name, (unsigned)s->uid);
	session_close(a, s);
	return 0;
}

/* Save the state without the sessions marked leaving; on failure unmark them. */
static int save_without_leaving(struct agent *a, const char *reason)
{
	int rc = state_write(a, reason);

	if (rc < 0)
		for (struct session *s = a->sessions.head; s; s = s->next)
			s->leaving = false;
	return rc;
}

/*
 * Finish one incoming session s for request id (finish, or destroy of an
 * incoming session): saved without it first, then finished; the reply is
 * the client's.
 */
static void finish_one(struct agent *a, struct client *c, int64_t id, struct session *s, const char *what)
{
	int rc;

	s->leaving = true;
	rc = save_without_leaving(a, what);
	if (rc < 0)
		return reply_unsaved(c, id, rc, what);
	rc = finish_session(a, s);
	if (rc < 0) {
		state_write(a, "finish-failed");
		return client_send(c, hl_reply_err(id, -rc, "LUO finish: %s", strerror(-rc)), -1);
	}
	client_send(c, hl_reply_ok(id), -1);
}

static void op_finish(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o, *done, *failed;
	int rc, ndone = 0, nfailed = 0;
	uint32_t uid;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(c, r->id, -rc, "uid");
	if (!r->all) {
		struct session *s = session_find(&a->sessions, uid, r->session, true);

		if (!s) {
			if (session_find(&a->sessions, uid, r->session, false))
				return client_send(c, hl_reply_err(r->id, EINVAL,
					"session \"%s\" was created in this boot; use destroy", r->session), -1);
			return client_send(c, hl_reply_err(r->id, ENOENT, "no session \"%s\" from the previous kernel",
							      r->session), -1);
		}
		return finish_one(a, c, r->id, s, "finish");
	}
	for (struct session *s = a->sessions.head; s; s = s->next)
		s->leaving = s->incoming && ((c->uid == 0 && !r->has_uid) || s->uid == uid) &&
			     hl_authorized(c->uid, s->uid);
	rc = save_without_leaving(a, "finish");
	if (rc < 0)
		return reply_unsaved(c, r->id, rc, "finish");
	done = json_object_new_array();
	failed = json_object_new_array();
	for (struct session *s = a->sessions.head, *n; s; s = n) {
		n = s->next;
		if (!s->leaving)
			continue;
		char nm[HL_KNAME_MAX];

		snprintf(nm, sizeof(nm), "%s", s->kname);
		rc = finish_session(a, s);
		if (rc < 0) {
			struct json_object *f = json_object_new_object();

			nfailed++;
			json_object_object_add(f, "kname", json_object_new_string(nm));
			json_object_object_add(f, "error", json_object_new_string(strerror(-rc)));
			if (json_object_array_length(failed) < HL_FINISH_LIST_MAX)
				json_object_array_add(failed, f);
			else
				json_object_put(f);
		} else {
			ndone++;
			if (json_object_array_length(done) < HL_FINISH_LIST_MAX)
				json_object_array_add(done, json_object_new_string(nm));
		}
	}
	if (json_object_array_length(failed))
		state_write(a, "finish-failed"); /* they are still ours */
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "finished", done);
	json_object_object_add(o, "failed", failed);
	json_object_object_add(o, "finished_count", json_object_new_int(ndone));
	json_object_object_add(o, "failed_count", json_object_new_int(nfailed));
	client_send(c, o, -1);
}

static void op_destroy(struct agent *a, struct client *c, struct hl_req *r)
{
	struct session *s;
	uint32_t uid;
	int rc;

	if ((rc = hl_target_uid(c->uid, r->has_uid, r->uid, &uid)) < 0)
		return reply_errno(c, r->id, -rc, "uid");
	s = session_find(&a->sessions, uid, r->session, false);
	if (!s) {
		s = session_find(&a->sessions, uid, r->session, true);
		if (!s)
			return client_send(c, hl_reply_err(r->id, ENOENT, "no session \"%s\"", r->session), -1);
		return finish_one(a, c, r->id, s, "destroy");
	}
	s->leaving = true;
	rc = save_without_leaving(a, "destroy");
	if (rc < 0)
		return reply_unsaved(c, r->id, rc, "destroy");
	LOGI("uid %u destroyed session %s (%zu fds unpreserved)", (unsigned)uid, s->name, s->nfds);
	session_close(a, s); /* closing an outgoing session unpreserves its files */
	client_send(c, hl_reply_ok(r->id), -1);
}

/* ---- status ----------------------------------------------------------- */

static void op_hello(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o;

	if (r->version != HL_PROTO_VERSION) {
		client_send(c, hl_reply_err(r->id, EPROTONOSUPPORT, "client speaks %lld, agent speaks %d",
					       (long long)r->version, HL_PROTO_VERSION), -1);
		return;
	}
	if (r->client)
		snprintf(c->name, sizeof(c->name), "%s", r->client);
	o = hl_reply_ok(r->id);
	json_object_object_add(o, "agent", json_object_new_string(HL_VERSION));
	json_object_object_add(o, "version", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "uid", json_object_new_int64(c->uid));
	json_object_object_add(o, "boot", json_object_new_string(boot_kind_name(a->boot)));
	client_send(c, o, -1);
}

static void op_status(struct agent *a, struct client *c, struct hl_req *r)
{
	struct json_object *o = hl_reply_ok(r->id);
	int out = 0, in = 0, subs = 0, mine = 0, files = 0, hfiles = 0;

	for (struct session *s = a->sessions.head; s; s = s->next) {
		if (s->incoming)
			in++;
		else
			out++;
		for (size_t i = 0; !s->incoming && i < s->nfds; i++) {
			files++;
			hfiles += s->fds[i].hugetlb;
		}
		if (s->uid == (uint32_t)c->uid)
			mine++;
	}
	server_for_each_client(&a->srv, k)
		if (k->subscribed && !k->dead)
			subs++;
	json_object_object_add(o, "agent", json_object_new_string(HL_VERSION));
	json_object_object_add(o, "protocol", json_object_new_int(HL_PROTO_VERSION));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "backend", json_object_new_string(a->be.name));
	json_object_object_add(o, "device", json_object_new_string(a->be.path));
	json_object_object_add(o, "boot", json_object_new_string(boot_kind_name(a->boot)));
	json_object_object_add(o, "uptime_s", json_object_new_int64((hl_now_ms() - a->start_ms) / 1000));
	json_object_object_add(o, "fd_store", json_object_new_string(fdstore_mode_name(&a->fds)));
	json_object_object_add(o, "kexec_via", json_object_new_string(kexec_via_name(a->kexec_via)));
	if (a->fds.mode == FDSTORE_KEEPER)
		json_object_object_add(o, "keeper_restarts", json_object_new_int64(a->fds.keeper_restarts));
	json_object_object_add(o, "outgoing_sessions", json_object_new_int(out));
	json_object_object_add(o, "incoming_sessions", json_object_new_int(in));
	/* what an update would carry: hugelivectl check --kernel judges an image by it */
	json_object_object_add(o, "outgoing_files", json_object_new_int(files));
	json_object_object_add(o, "outgoing_hugetlb_files", json_object_new_int(hfiles));
	json_object_object_add(o, "your_sessions", json_object_new_int(mine));
	json_object_object_add(o, "clients", json_object_new_int(a->srv.nclients));
	json_object_object_add(o, "subscribers", json_object_new_int(subs));
	json_object_object_add(o, "update", update_status_json(a));
	if (a->upd.last)
		json_object_object_add(o, "last_update", update_last_for(a, (uint32_t)c->uid));
	json_object_object_add(o, "claim_timeout_s", json_object_new_int(a->claim_timeout_s));
	json_object_object_add(o, "claim_remaining_s", a->claim_deadline_ms ?
		json_object_new_int64((a->claim_deadline_ms - hl_now_ms()) / 1000) : NULL);
	json_object_object_add(o, "unclaimed_policy",
			       json_object_new_string(a->unclaimed == UNCLAIMED_KEEP ? "keep" : "finish"));
	if (a->report.entries) {
		/* a non-root caller sees only its own sessions' entries */
		json_object_object_add(o, "report", report_for(&a->report, (uint32_t)c->uid));
		if (c->uid == 0 && a->report.dropped)
			json_object_object_add(o, "report_dropped", json_object_new_int64((int64_t)a->report.dropped));
	}
	json_object_object_add(o, "hugetlb_support", a->hugetlb_support < 0 ? NULL :
			       json_object_new_boolean(a->hugetlb_support == 1));
	json_object_object_add(o, "state_seq", json_object_new_int64((int64_t)a->st.seq));
	client_send(c, o, -1);
}

void handlers_tick(struct agent *a, int64_t now)
{
	if (a->claim_deadline_ms && now >= a->claim_deadline_ms) {
		int n = 0;

		a->claim_deadline_ms = 0;
		for (struct session *s = a->sessions.head, *nx; s; s = nx) {
			nx = s->next;
			if (!s->incoming)
				continue;
			size_t got = 0;

			for (size_t i = 0; i < s->nfds; i++)
				got += s->fds[i].retrieved;
			LOGE("unclaimed session %s of uid %u: %zu of %zu fd(s) retrieved; policy %s",
			     s->name, (unsigned)s->uid, got, s->nfds, a->unclaimed == UNCLAIMED_KEEP ? "keep" : "finish");
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "kname", json_object_new_string(s->kname));
			json_object_object_add(e, "name", json_object_new_string(s->name));
			json_object_object_add(e, "uid", json_object_new_int64(s->uid));
			json_object_object_add(e, "fds", json_object_new_int64((int64_t)s->nfds));
			json_object_object_add(e, "retrieved", json_object_new_int64((int64_t)got));
			json_object_object_add(e, "problem", json_object_new_string("unclaimed"));
			json_object_object_add(e, "action", json_object_new_string(
				a->unclaimed == UNCLAIMED_KEEP ? "kept" : "finished"));
			report_add(&a->report, e);
			if (a->unclaimed == UNCLAIMED_FINISH) {
				int rc = finish_session(a, s);

				if (rc < 0) {
					LOGE("finish %s failed: %s; closing it", s->name, strerror(-rc));
					session_close(a, s);
				}
			}
			n++;
		}
		if (n)
			state_write(a, "claim-timeout");
	}
}

int64_t handlers_deadline(const struct agent *a)
{
	return a->claim_deadline_ms ? a->claim_deadline_ms : -1;
}

void handle_request(struct agent *a, struct client *c, struct hl_req *r, int fd)
{
	LOGD("pid %d uid %u: %s", (int)c->pid, (unsigned)c->uid, r->op_name);
	switch (r->op) {
	case HL_OP_HELLO: op_hello(a, c, r); break;
	case HL_OP_STATUS: op_status(a, c, r); break;
	case HL_OP_CREATE: op_create(a, c, r); break;
	case HL_OP_PRESERVE: op_preserve(a, c, r, fd); fd = -1; break;
	case HL_OP_LIST: op_list(a, c, r); break;
	case HL_OP_RETRIEVE: op_retrieve(a, c, r); break;
	case HL_OP_FINISH: op_finish(a, c, r); break;
	case HL_OP_DESTROY: op_destroy(a, c, r); break;
	case HL_OP_SUBSCRIBE: update_subscribe(a, c, r); break;
	case HL_OP_READY:
	case HL_OP_REFUSE: update_ack(a, c, r); break;
	case HL_OP_UPDATE: update_start(a, c, r); break;
	default:
		client_send(c, hl_reply_err(r->id, EOPNOTSUPP, "unknown op"), -1);
	}
	closer_close(fd);
}
