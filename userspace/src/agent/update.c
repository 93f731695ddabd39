/* SPDX-License-Identifier: MIT */
/* The update state machine: see update.h. */
#include "agent.h"
#include "../common/kcheck.h"
#include "../common/kimage.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void update_init(struct update_sm *u)
{
	memset(u, 0, sizeof(*u));
	u->next_id = 1;
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
	LOGI("update %" PRIu64 ": %s: %s", a->upd.id, stage, msg);
	a->upd.stage = stage;
	if (!a->upd.updater)
		return;
	e = hl_event_new("progress");
	json_object_object_add(e, "update", json_object_new_int64((int64_t)a->upd.id));
	json_object_object_add(e, "stage", json_object_new_string(stage));
	json_object_object_add(e, "message", json_object_new_string(msg));
	client_send(a->upd.updater, e, -1);
}

/*
 * last_update keeps the full message for root and, when it names another
 * client (its name, pid, uid or refusal reason), a public one for everyone
 * else: "public_message", and "cause_uid" whose own clients see the full
 * text. update_last_for() makes the copy a caller sees.
 */
static void set_last_update_pub(struct agent *a, const char *result, int code, const char *msg,
				const char *pub, int64_t cause_uid)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int64((int64_t)a->upd.id));
	json_object_object_add(o, "result", json_object_new_string(result));
	json_object_object_add(o, "code", json_object_new_int(code));
	json_object_object_add(o, "message", json_object_new_string(msg));
	if (pub)
		json_object_object_add(o, "public_message", json_object_new_string(pub));
	if (pub && cause_uid >= 0)
		json_object_object_add(o, "cause_uid", json_object_new_int64(cause_uid));
	json_object_object_add(o, "time", json_object_new_int64(hl_wall_s()));
	json_object_put(a->upd.last);
	a->upd.last = o;
}

static void set_last_update(struct agent *a, const char *result, int code, const char *msg)
{
	set_last_update_pub(a, result, code, msg, NULL, -1);
}

struct json_object *update_last_for(const struct agent *a, uint32_t uid)
{
	struct json_object *o, *v;
	int64_t cause;

	if (!a->upd.last)
		return NULL;
	if (uid == 0)
		return json_object_get(a->upd.last);
	cause = json_object_object_get_ex(a->upd.last, "cause_uid", &v) ? json_object_get_int64(v) : -1;
	o = json_object_new_object();
	json_object_object_foreach(a->upd.last, k, val) {
		if (!strcmp(k, "public_message") || !strcmp(k, "cause_uid"))
			continue;
		if (!strcmp(k, "message") && json_object_object_get_ex(a->upd.last, "public_message", &v) &&
		    cause != (int64_t)uid) {
			json_object_object_add(o, k, json_object_get(v));
			continue;
		}
		json_object_object_add(o, k, json_object_get(val));
	}
	return o;
}

/*
 * Cancel the update. msg is the full reason (root's); pub, when not NULL,
 * is what a client of another uid than cause_uid sees instead, because msg
 * names another client (issue 9 item 10).
 */
static void update_cancel_v(struct agent *a, int code, int64_t cause_uid, const char *pub,
			    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void update_cancel_v(struct agent *a, int code, int64_t cause_uid, const char *pub,
			    const char *fmt, va_list ap)
{
	char msg[1024];
	bool was_barrier;
	int rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* first, so that a client dropped while we notify does not re-enter */
	was_barrier = a->upd.in_barrier;
	a->upd.in_barrier = false;
	rc = a->be.kexec_unload(&a->be, a->dev);
	if (rc < 0)
		LOGE("kexec unload failed: %s", strerror(-rc));
	LOGI("update %" PRIu64 " cancelled: %s; kernel unloaded, sessions intact", a->upd.id, msg);
	server_for_each_client(&a->srv, k) {
		if (!was_barrier)
			break;
		if (!k->subscribed || k->dead)
			continue;
		struct json_object *e = hl_event_new("resume");

		json_object_object_add(e, "update", json_object_new_int64((int64_t)a->upd.id));
		json_object_object_add(e, "reason", json_object_new_string(
			pub && k->uid != 0 && (int64_t)k->uid != cause_uid ? pub : msg));
		client_send(k, e, -1);
		k->ack = 0;
	}
	set_last_update_pub(a, "cancelled", code, msg, pub, cause_uid);
	if (a->upd.active) {
		/* replaces a saved active update (or a for-kexec state): nothing is left on disk */
		a->upd.active = false;
		rc = state_write(a, "cancel");
		if (rc < 0)
			LOGE("update %" PRIu64 ": the cancel could not be saved: %s", a->upd.id, strerror(-rc));
	}
	if (a->upd.updater) {
		struct client *u = a->upd.updater;
		struct json_object *e = hl_reply_err(a->upd.updater_req, code, "update cancelled: %s", msg);

		/* the stage tells a preflight failure from one after the barrier */
		if (a->upd.stage)
			json_object_object_add(e, "stage", json_object_new_string(a->upd.stage));
		a->upd.updater = NULL;
		client_send(u, e, -1);
	}
}

static void update_cancel(struct agent *a, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void update_cancel(struct agent *a, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	update_cancel_v(a, code, -1, NULL, fmt, ap);
	va_end(ap);
}

static void update_cancel_pub(struct agent *a, int code, int64_t cause_uid, const char *pub,
			      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void update_cancel_pub(struct agent *a, int code, int64_t cause_uid, const char *pub,
			      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	update_cancel_v(a, code, cause_uid, pub, fmt, ap);
	va_end(ap);
}

static void update_kexec(struct agent *a)
{
	struct session *s;
	int lost = 0, rc;

	a->upd.in_barrier = false;
	for (s = a->sessions.head; s; s = s->next)
		if (s->incoming)
			lost++;
	if (lost)
		LOGI("%d unfinished session(s) from the previous kernel will not survive this update", lost);
	progress(a, "kexec", "all clients ready; saving agent state");
	{
		char m[sizeof(a->upd.kernel) + 32];

		/* before the state write: the next kernel's agent reports it */
		snprintf(m, sizeof(m), "kexec into %s", a->upd.kernel);
		set_last_update(a, "kexec", 0, m);
	}
	rc = state_write(a, "kexec");
	if (rc < 0) {
		a->upd.in_barrier = true; /* clients prepared: they must get resume */
		return update_cancel(a, -rc, "cannot save agent state: %s", strerror(-rc));
	}
	if (a->kexec_via == KEXEC_VIA_SYSTEMD && !a->be.fake) {
		char why[256];

		/*
		 * systemd stops every service and unmounts the file systems;
		 * systemd-shutdown then executes the loaded image. We stay, with
		 * every session fd, until then (SIGTERM no longer stops us).
		 */
		rc = systemd_kexec(why, sizeof(why));
		if (rc < 0) {
			a->upd.in_barrier = true;
			return update_cancel(a, -rc, "systemctl kexec failed: %s", why);
		}
		a->upd.handed_off = true;
		progress(a, "reboot", "agent state saved; kexec.target started: systemd shuts down and kexecs");
		return;
	}
	/* only this event means the kexec is under way (hugelivectl relies on it) */
	progress(a, "reboot", "agent state saved; rebooting into the new kernel");
	/* Progress packets are small: they are in the socket buffer by now. */
	rc = a->be.kexec_reboot(&a->be, a->dev);
	if (rc < 0) {
		a->upd.in_barrier = true;
		return update_cancel(a, -rc, "kexec reboot failed: %s", strerror(-rc));
	}
	/* Only the fake backend gets here: the "machine" has rebooted. */
	if (a->upd.updater) {
		struct json_object *o = hl_reply_ok(a->upd.updater_req);
		struct client *u = a->upd.updater;

		a->upd.updater = NULL;
		json_object_object_add(o, "update", json_object_new_int64((int64_t)a->upd.id));
		json_object_object_add(o, "kexec", json_object_new_boolean(1));
		client_send(u, o, -1);
	}
	a->upd.active = false;
	fdstore_exit(&a->fds);
	a->upd.exit_after_kexec = true;
	a->srv.quit = 1;
}

/* Does this subscriber's answer count (its refusal cancels, the barrier waits for it)? */
static bool can_veto(const struct agent *a, uid_t uid)
{
	if (uid == 0)
		return true;
	for (size_t i = 0; i < a->upd.nallow; i++)
		if (a->upd.allow[i] == (uint32_t)uid)
			return true;
	for (const struct session *s = a->sessions.head; s; s = s->next)
		if (!s->incoming && s->uid == (uint32_t)uid)
			return true;
	return false;
}

static bool counted(const struct client *k)
{
	return k->subscribed && !k->dead && k->veto;
}

static void barrier_check(struct agent *a)
{
	if (!a->upd.in_barrier)
		return;
	server_for_each_client(&a->srv, k)
		if (counted(k) && (a->upd.force ? k->ack == 0 : k->ack != 1))
			return;
	update_kexec(a);
}

static void send_prepare(struct agent *a, struct client *k)
{
	struct json_object *e = hl_event_new("prepare");
	int64_t left = a->upd.deadline_ms - hl_now_ms();

	k->ack = 0;
	k->veto = can_veto(a, k->uid);
	json_object_object_add(e, "update", json_object_new_int64((int64_t)a->upd.id));
	json_object_object_add(e, "timeout_ms", json_object_new_int64(left > 0 ? left : 0));
	json_object_object_add(e, "kernel", json_object_new_string(a->upd.kernel));
	json_object_object_add(e, "counted", json_object_new_boolean(k->veto));
	client_send(k, e, -1);
}

bool update_uid_subscribed(const struct agent *a, uint32_t uid)
{
	server_for_each_client(&a->srv, k)
		if (k->subscribed && !k->dead && (uint32_t)k->uid == uid)
			return true;
	return false;
}

/*
 * Sessions marked "barrier" (their owner subscribed once) whose owner has
 * no subscribed client now: the update would carry them without asking.
 * Lists the owners in who; returns how many sessions.
 */
static int unattended(const struct agent *a, char *who, size_t len)
{
	size_t o = 0;
	int n = 0;

	who[0] = '\0';
	for (const struct session *s = a->sessions.head; s; s = s->next) {
		char u[16];

		if (s->incoming || !s->barrier || update_uid_subscribed(a, s->uid))
			continue;
		n++;
		snprintf(u, sizeof(u), "uid %u", (unsigned)s->uid);
		if (!strstr(who, u) && o + strlen(u) + 3 < len)
			o += (size_t)snprintf(who + o, len - o, "%s%s", o ? ", " : "", u);
	}
	return n;
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

/*
 * What the running kernel writes (kimage.h hl_running_formats), looked up
 * once per image path: the running kernel does not change under the agent.
 */
static const struct hl_running *running_formats(struct agent *a, const char *want)
{
	static struct hl_running r;
	static char done_for[HL_MAX_PATH + 2];
	static bool done;
	const char *img = want && *want ? want : a->upd.running_kernel;

	if (!done || strcmp(done_for, img)) {
		if (hl_running_formats(img, &r))
			LOGE("warning: the running kernel's formats: %s", r.note);
		else
			LOGI("the running kernel's formats come from %s", r.image);
		snprintf(done_for, sizeof(done_for), "%s", img);
		done = true;
	}
	return &r;
}

/*
 * Issue 10 item 3: can the image carry what is preserved? Read from the
 * very fd that is loaded next, before anything is loaded or frozen. The
 * needs come from the sessions: the agent's own state (a memfd in a LUO
 * session) needs KHO, LUO and memfd; a hugetlb file the hugetlb formats.
 * Cancels the update and returns -errno when the image cannot.
 */
static int preflight_image(struct agent *a, int kfd, const char *path, const char *running_kernel)
{
	const struct hl_running *run = running_formats(a, running_kernel);
	struct hl_kimage ki;
	char err[512], missing[768];
	const char *fix;
	int hfiles = 0, hsess = 0, rc, n;

	for (struct session *s = a->sessions.head; s; s = s->next) {
		int h = 0;

		for (size_t i = 0; !s->incoming && i < s->nfds; i++)
			h += s->fds[i].hugetlb;
		hfiles += h;
		hsess += h > 0;
	}
	progress(a, "preflight", "inspecting %s", path);
	rc = hl_kimage_inspect_fd(kfd, path, 0, &ki, err, sizeof(err));
	if (rc < 0) {
		update_cancel(a, -rc, "kernel image refused: %s; %s; nothing was loaded or frozen", err, HL_KIMAGE_FIX);
		return rc;
	}
	n = hl_kimage_missing_run(&ki, run, hl_needs_of(hfiles), missing, sizeof(missing), &fix);
	if (n) {
		char need[96] = "the agent's state";
		char from[700] = "";

		if (hfiles)
			snprintf(need, sizeof(need), "%d hugetlb file(s) in %d session(s)", hfiles, hsess);
		if (run->from_image)
			snprintf(from, sizeof(from), " (the running kernel's formats from %.400s)", run->image);
		update_cancel(a, EOPNOTSUPP, "kernel %s cannot take what is preserved: it lacks %s, needed by %s%s; "
			      "%s; nothing was loaded or frozen", path, missing, need, from, fix);
		return -EOPNOTSUPP;
	}
	progress(a, "preflight", "%s: %s kernel, %llu bytes decompressed, has every format needed%s", path,
		 ki.compression, (unsigned long long)ki.out_len, hfiles ? " (hugetlb included)" : "");
	return 0;
}

void update_start(struct agent *a, struct client *c, struct hl_req *r)
{
	int kfd = -1, ifd = -1, rc, nsubs = 0;
	bool want_hugetlb = false;

	char why[160];

	if (c->uid != 0)
		return client_send(c, hl_reply_err(r->id, EPERM, "only root may start an update"), -1);
	/* uid 0 alone is not enough: the caller must be allowed to reboot the machine */
	if (!client_has_cap_sys_boot(c, why, sizeof(why)))
		return client_send(c, hl_reply_err(r->id, EPERM, "an update needs CAP_SYS_BOOT: %s", why), -1);
	if (a->upd.handed_off)
		return client_send(c, hl_reply_err(r->id, EBUSY, "update %" PRIu64 " handed to systemd: the kexec "
						      "is under way", a->upd.id), -1);
	if (a->upd.in_barrier)
		return client_send(c, hl_reply_err(r->id, EBUSY, "update %" PRIu64 " already in progress",
						      a->upd.id), -1);
	a->upd.id = a->upd.next_id++;
	a->upd.recovered_id = 0;
	a->upd.stage = NULL;
	a->upd.updater = c;
	a->upd.updater_req = r->id;
	snprintf(a->upd.kernel, sizeof(a->upd.kernel), "%s", r->kernel);
	a->upd.timeout_ms = r->timeout_ms ? r->timeout_ms : 30000;
	a->upd.force = r->force;
	if (r->force)
		LOGE("update %" PRIu64 " forced by pid %d: refusals, timeouts and missing subscribers do not cancel it",
		     a->upd.id, (int)c->pid);

	progress(a, "preflight", "checking the new command line and kernel support");
	if (!hl_param_on(r->cmdline, "kho") || !hl_param_on(r->cmdline, "liveupdate"))
		return update_cancel(a, EINVAL, "the new command line must keep kho=on and liveupdate=on");
	if (!a->be.fake && !kho_enabled())
		return update_cancel(a, EOPNOTSUPP, "KHO is not enabled in the running kernel");
	for (struct session *s = a->sessions.head; s; s = s->next)
		for (size_t i = 0; i < s->nfds; i++)
			if (!s->incoming && s->fds[i].hugetlb)
				want_hugetlb = true;
	if (want_hugetlb && a->be.hugetlb_supported(&a->be, a->dev) != 1)
		return update_cancel(a, EOPNOTSUPP, "hugetlb fds are preserved but the kernel has no hugetlb LUO support");
	{
		char who[256];
		int n = unattended(a, who, sizeof(who));

		if (n && !r->force)
			return update_cancel_pub(a, ENOTCONN, -1, "sessions of other users expect a barrier but "
						 "their owner is not subscribed",
						 "%d session(s) of %s expect a barrier but no client of "
					     "their owner is subscribed (--force updates anyway)", n, who);
		if (n)
			progress(a, "preflight", "forced: %d session(s) of %s expect a barrier, owner not subscribed",
				 n, who);
	}
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
	rc = preflight_image(a, kfd, r->kernel, r->running_kernel);
	if (rc < 0) {
		close(kfd);
		if (ifd >= 0)
			close(ifd);
		return;
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

		json_object_object_add(o, "update", json_object_new_int64((int64_t)a->upd.id));
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
		a->upd.updater = NULL;
		client_send(c, o, -1);
		return;
	}
	/* saved as active before anyone is quiesced: a restarted agent finishes it */
	a->upd.active = true;
	a->upd.stage = "barrier";
	rc = state_write(a, "barrier");
	if (rc < 0)
		return update_cancel(a, -rc, "cannot save agent state: %s", strerror(-rc));
	a->upd.in_barrier = true;
	a->upd.deadline_ms = hl_now_ms() + a->upd.timeout_ms;
	server_for_each_client(&a->srv, k) {
		if (!k->subscribed || k->dead)
			continue;
		send_prepare(a, k);
		nsubs += k->veto;
	}
	progress(a, "barrier", "waiting up to %lld ms for %d subscribed client(s)%s",
		 (long long)a->upd.timeout_ms, nsubs, a->upd.force ? " (forced)" : "");
	barrier_check(a);
}

void update_ack(struct agent *a, struct client *c, struct hl_req *r)
{
	const char *who = c->name[0] ? c->name : "?";

	if (!a->upd.in_barrier || r->update_id != a->upd.id)
		return client_send(c, hl_reply_err(r->id, ESRCH, "no update %" PRIu64 " in progress", r->update_id), -1);
	if (!c->subscribed)
		return client_send(c, hl_reply_err(r->id, EINVAL, "not subscribed"), -1);
	if (!c->veto) {
		/* not an owner of a session nor on the allow-list: informed, not asked */
		if (r->op == HL_OP_READY)
			return client_send(c, hl_reply_ok(r->id), -1);
		LOGI("update %" PRIu64 ": refusal of client %s (pid %d, uid %u) ignored: it owns no session",
		     a->upd.id, who, (int)c->pid, (unsigned)c->uid);
		return client_send(c, hl_reply_err(r->id, EPERM, "uid %u owns no session and is not on the barrier "
						   "allow-list: its refusal does not count", (unsigned)c->uid), -1);
	}
	client_send(c, hl_reply_ok(r->id), -1);
	if (r->op == HL_OP_REFUSE) {
		c->ack = -1;
		if (a->upd.force) {
			LOGE("update %" PRIu64 ": client %s (pid %d, uid %u) refused (%s); forced: going on", a->upd.id,
			     who, (int)c->pid, (unsigned)c->uid, r->reason ? r->reason : "no reason given");
			progress(a, "barrier", "client %s (pid %d, uid %u) refused: %s; ignored (forced)", who,
				 (int)c->pid, (unsigned)c->uid, r->reason ? r->reason : "no reason given");
			return barrier_check(a);
		}
		update_cancel_pub(a, ECANCELED, c->uid, "a subscribed client refused the update",
				  "client %s (pid %d, uid %u) refused: %s", who,
			      (int)c->pid, (unsigned)c->uid, r->reason ? r->reason : "no reason given");
		return;
	}
	c->ack = 1;
	LOGI("update %" PRIu64 ": client pid %d ready", a->upd.id, (int)c->pid);
	barrier_check(a);
}

void update_client_gone(struct agent *a, struct client *c)
{
	if (c == a->upd.updater) {
		a->upd.updater = NULL;
		if (a->upd.in_barrier)
			update_cancel(a, ECANCELED, "the requesting client disconnected");
	} else if (a->upd.in_barrier && c->subscribed && c->veto) {
		if (a->upd.force) {
			LOGE("update %" PRIu64 ": subscribed client pid %d (uid %u) disconnected; forced: going on",
			     a->upd.id, (int)c->pid, (unsigned)c->uid);
			c->dead = true;
			return barrier_check(a);
		}
		update_cancel_pub(a, ECANCELED, c->uid, "a subscribed client disconnected during the barrier",
				  "subscribed client pid %d (uid %u) disconnected during the barrier",
			      (int)c->pid, (unsigned)c->uid);
	}
}

/*
 * Subscribing marks the caller's outgoing sessions: from now on they expect
 * a barrier (persisted with the session), and an update refuses to start
 * while their owner has no subscribed client, unless forced. A client that
 * subscribes during a barrier gets its prepare at once.
 */
void update_subscribe(struct agent *a, struct client *c, struct hl_req *r)
{
	bool changed = false;

	c->subscribed = true;
	for (struct session *s = a->sessions.head; s; s = s->next)
		if (!s->incoming && s->uid == (uint32_t)c->uid && !s->barrier)
			changed = s->barrier = true;
	if (changed)
		state_write(a, "subscribe");
	client_send(c, hl_reply_ok(r->id), -1);
	if (a->upd.in_barrier)
		send_prepare(a, c);
	if (a->upd.recovered_id && !a->upd.in_barrier) {
		/* it may have been quiesced for the update the previous agent left */
		struct json_object *e = hl_event_new("resume");

		json_object_object_add(e, "update", json_object_new_int64((int64_t)a->upd.recovered_id));
		json_object_object_add(e, "reason", json_object_new_string(a->upd.recovered_msg));
		json_object_object_add(e, "recovered", json_object_new_boolean(1));
		client_send(c, e, -1);
	}
}

struct json_object *update_state_json(const struct agent *a)
{
	struct json_object *o;

	if (!a->upd.active)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64((int64_t)a->upd.id));
	json_object_object_add(o, "kernel", json_object_new_string(a->upd.kernel));
	json_object_object_add(o, "stage", json_object_new_string(a->upd.stage ? a->upd.stage : "barrier"));
	json_object_object_add(o, "time", json_object_new_int64(hl_wall_s()));
	return o;
}

void update_recover(struct agent *a)
{
	struct json_object *u = a->upd.interrupted;
	const char *stage;
	int rc;

	if (!u)
		return;
	a->upd.interrupted = NULL;
	a->upd.id = (uint64_t)hl_jint(u, "id", 0);
	stage = hl_jstr(u, "stage") ? hl_jstr(u, "stage") : "?";
	rc = a->be.kexec_unload(&a->be, a->dev);
	if (rc < 0)
		LOGE("update %" PRIu64 ": kexec unload failed: %s", a->upd.id, strerror(-rc));
	snprintf(a->upd.recovered_msg, sizeof(a->upd.recovered_msg),
		 "the agent restarted during update %" PRIu64 " (stage %s); the new kernel was unloaded, "
		 "sessions intact", a->upd.id, stage);
	LOGE("%s", a->upd.recovered_msg);
	set_last_update(a, "interrupted", ECONNABORTED, a->upd.recovered_msg);
	a->upd.recovered_id = a->upd.id;
	json_object_put(u);
	rc = state_write(a, "recovered");
	if (rc < 0)
		LOGE("update %" PRIu64 ": the outcome could not be saved: %s", a->upd.id, strerror(-rc));
}

void update_tick(struct agent *a, int64_t now)
{
	if (a->upd.in_barrier && now >= a->upd.deadline_ms) {
		char who[256] = "";
		size_t o = 0;

		server_for_each_client(&a->srv, k)
			if (counted(k) && k->ack == 0 && o < sizeof(who) - 40)
				o += (size_t)snprintf(who + o, sizeof(who) - o, "%spid %d", o ? ", " : "", (int)k->pid);
		if (a->upd.force) {
			LOGE("update %" PRIu64 ": no answer within %lld ms from %s; forced: going on", a->upd.id,
			     (long long)a->upd.timeout_ms, who);
			progress(a, "barrier", "no answer from %s; going on (forced)", who);
			return update_kexec(a);
		}
		{
			char pub[96];

			snprintf(pub, sizeof(pub), "no answer within %lld ms from every subscribed client",
				 (long long)a->upd.timeout_ms);
			update_cancel_pub(a, ETIMEDOUT, -1, pub, "no answer within %lld ms from %s",
					  (long long)a->upd.timeout_ms, who);
		}
	}
}

int64_t update_deadline(const struct agent *a)
{
	return a->upd.in_barrier ? a->upd.deadline_ms : -1;
}

struct json_object *update_status_json(const struct agent *a)
{
	struct json_object *u = json_object_new_object();

	json_object_object_add(u, "state", json_object_new_string(a->upd.in_barrier ? "barrier" : "idle"));
	if (a->upd.in_barrier) {
		json_object_object_add(u, "id", json_object_new_int64((int64_t)a->upd.id));
		json_object_object_add(u, "kernel", json_object_new_string(a->upd.kernel));
		json_object_object_add(u, "remaining_ms", json_object_new_int64(a->upd.deadline_ms - hl_now_ms()));
	}
	return u;
}
