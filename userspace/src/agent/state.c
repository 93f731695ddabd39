/* SPDX-License-Identifier: MIT */
/*
 * Agent bookkeeping that crosses the kexec: LUO session "hugelived", token 0
 * is a memfd holding the state as JSON. The memfd has a fixed size (LUO
 * freezes the size of a preserved memfd) and two slots; every write goes to
 * the older slot with a higher sequence number and a CRC, so a crash in the
 * middle of a write leaves the previous state readable.
 *
 * Slot layout: "HLSTATE1" | u64 seq | u32 len | u32 crc32 | 8 bytes 0 | JSON
 */
#include "agent.h"
#include "../common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

void state_init_struct(struct persist *p)
{
	p->sess = p->mfd = -1;
	p->cap = 0;
	p->copy = 0;
	p->seq = 0;
}

#define SLOT_HDR 32
#define STATE_MIN_CAP (256 * 1024)
#define STATE_MAX_CAP (64 * 1024 * 1024)

static uint32_t crc32_buf(const void *data, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths: feed it in chunks */
	for (const Bytef *p = data; len;) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		crc = crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)crc;
}

int state_encode_slot(char *mem, size_t cap, uint64_t seq, const char *json, size_t len, int slot)
{
	size_t slot_size = cap / 2;
	char *p = mem + (size_t)slot * slot_size;
	uint32_t l32 = (uint32_t)len, crc;

	if (len + SLOT_HDR > slot_size)
		return -ENOSPC;
	crc = crc32_buf(json, len);
	memcpy(p, "HLSTATE1", 8);
	memcpy(p + 8, &seq, 8);
	memcpy(p + 16, &l32, 4);
	memcpy(p + 20, &crc, 4);
	memset(p + 24, 0, 8);
	memcpy(p + SLOT_HDR, json, len);
	return 0;
}

/* Returns the slot index with the newest valid content, or -1. */
static int best_slot(const char *mem, size_t cap, uint64_t *seq_out, size_t *len_out)
{
	int best = -1;
	uint64_t bseq = 0;

	for (int s = 0; s < 2; s++) {
		const char *p = mem + (size_t)s * (cap / 2);
		uint64_t seq;
		uint32_t len, crc;

		if (memcmp(p, "HLSTATE1", 8))
			continue;
		memcpy(&seq, p + 8, 8);
		memcpy(&len, p + 16, 4);
		memcpy(&crc, p + 20, 4);
		if ((size_t)len + SLOT_HDR > cap / 2 || crc32_buf(p + SLOT_HDR, len) != crc)
			continue;
		if (best < 0 || seq > bseq) {
			best = s;
			bseq = seq;
			*len_out = len;
		}
	}
	*seq_out = bseq;
	return best;
}

int state_read_fd(int mfd, struct json_object **out)
{
	off_t size = lseek(mfd, 0, SEEK_END);
	uint64_t seq;
	size_t len = 0;
	char *mem;
	int slot;

	*out = NULL;
	if (size <= 0 || size > STATE_MAX_CAP)
		return -EINVAL;
	mem = malloc((size_t)size);
	if (!mem)
		return -ENOMEM;
	if (pread(mfd, mem, (size_t)size, 0) != size) {
		free(mem);
		return -EIO;
	}
	slot = best_slot(mem, (size_t)size, &seq, &len);
	if (slot < 0) {
		free(mem);
		return -EBADMSG;
	}
	struct json_tokener *tok = json_tokener_new();

	*out = json_tokener_parse_ex(tok, mem + (size_t)slot * ((size_t)size / 2) + SLOT_HDR, (int)len);
	json_tokener_free(tok);
	free(mem);
	if (!*out || !json_object_is_type(*out, json_type_object)) {
		json_object_put(*out);
		*out = NULL;
		return -EBADMSG;
	}
	if (!hl_jstr(*out, "format") || strcmp(hl_jstr(*out, "format"), HL_STATE_FORMAT) ||
	    hl_jint(*out, "version", 0) != HL_STATE_VERSION) {
		json_object_put(*out);
		*out = NULL;
		return -EPROTONOSUPPORT;
	}
	return 0;
}

struct json_object *state_to_json(struct agent *a, const char *reason, bool for_kexec)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

	json_object_object_add(o, "format", json_object_new_string(HL_STATE_FORMAT));
	json_object_object_add(o, "version", json_object_new_int(HL_STATE_VERSION));
	json_object_object_add(o, "agent", json_object_new_string(HL_VERSION));
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)a->st.seq));
	json_object_object_add(o, "written", json_object_new_int64(hl_wall_s()));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "for_kexec", json_object_new_boolean(for_kexec));
	json_object_object_add(o, "boot", json_object_new_string(boot_kind_name(a->boot)));
	json_object_object_add(o, "next_update_id", json_object_new_int64((int64_t)a->upd.next_id));
	if (a->upd.last)
		json_object_object_add(o, "last_update", json_object_get(a->upd.last));
	{
		struct json_object *u = update_state_json(a);

		if (u)
			json_object_object_add(o, "update", u);
	}
	if (a->claim_deadline_ms)
		json_object_object_add(o, "claim_deadline", json_object_new_int64(
			hl_wall_s() + (a->claim_deadline_ms - hl_now_ms()) / 1000));
	for (struct session *s = a->sessions.head; s; s = s->next) {
		/*
		 * Unfinished incoming sessions do not survive a kexec, but stay in
		 * the for-kexec state: the next kernel's agent reports them as
		 * lost, and an agent restarted before the reboot still knows them.
		 */
		if (s->leaving)
			continue; /* saved without it first, then finished or destroyed */
		struct json_object *e = session_to_json(s);

		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "sessions", arr);
	return o;
}

/*
 * The state lives in one of two copies, each its own LUO session with one
 * memfd: "hugelived" (fd store tags hs/st) and "hugelived.1" (hs1/st1).
 * Growing the state means a bigger memfd (LUO freezes the size of a
 * preserved memfd), so it goes into a new copy under the other name; the
 * old copy is retired only once the new one is preserved and in the fd
 * store. A crash at any point leaves at least one complete copy; readers
 * take the valid copy with the highest sequence number.
 */
static const char *const own_name[2] = { HL_AGENT_SESSION, HL_AGENT_SESSION ".1" };
static const char *const own_stag[2] = { "hs", "hs1" };
static const char *const own_mtag[2] = { "st", "st1" };

static int fault(struct agent *a, const char *point)
{
	return a->be.fault ? a->be.fault(&a->be, point) : 0;
}

/* Write one state into the older slot of a state memfd. */
static int write_slot(int mfd, size_t cap, uint64_t seq, const char *js, size_t len)
{
	uint64_t cseq;
	size_t l;
	char *mem = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	int cur, rc;

	if (mem == MAP_FAILED)
		return -errno;
	cur = best_slot(mem, cap, &cseq, &l);
	rc = state_encode_slot(mem, cap, seq, js, len, cur < 0 ? 0 : 1 - cur);
	munmap(mem, cap);
	return rc;
}

/*
 * Create copy idx with a memfd of cap bytes that already holds js (if not
 * NULL), preserve it and put both fds in the fd store. Nothing of the new
 * copy is left behind on failure.
 */
static int own_copy_create(struct agent *a, int idx, size_t cap, const char *js, size_t len,
			   int *sfd_out, int *mfd_out)
{
	int mfd, sfd, rc;

	mfd = memfd_create("hugelived-state", MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, (off_t)cap) < 0) {
		rc = -errno;
		close(mfd);
		return rc;
	}
	if (js && (rc = write_slot(mfd, cap, a->st.seq, js, len)) < 0) {
		close(mfd);
		return rc;
	}
	sfd = a->be.create_session(&a->be, a->dev, own_name[idx]);
	if (sfd < 0) {
		LOGE("cannot create own session \"%s\": %s", own_name[idx], strerror(-sfd));
		close(mfd);
		return sfd;
	}
	rc = a->be.preserve_fd(&a->be, sfd, mfd, HL_STATE_TOKEN);
	if (rc < 0) {
		LOGE("cannot preserve the state memfd in \"%s\": %s", own_name[idx], strerror(-rc));
		close(sfd);
		close(mfd);
		return rc;
	}
	rc = fdstore_put(&a->fds, own_stag[idx], sfd);
	if (rc >= 0)
		rc = fdstore_put(&a->fds, own_mtag[idx], mfd);
	if (rc < 0) {
		LOGE("cannot put the state copy \"%s\" in the fd store: %s", own_name[idx], strerror(-rc));
		fdstore_drop(&a->fds, own_stag[idx]);
		fdstore_drop(&a->fds, own_mtag[idx]);
		close(sfd); /* unpreserves the new copy */
		close(mfd);
		return rc;
	}
	*sfd_out = sfd;
	*mfd_out = mfd;
	return 0;
}

/* Retire the copy in use (after a newer one exists): fd store first, then our fds. */
static void own_copy_retire(struct agent *a)
{
	fdstore_drop(&a->fds, own_stag[a->st.copy]);
	fdstore_drop(&a->fds, own_mtag[a->st.copy]);
	if (a->st.sess >= 0)
		close(a->st.sess); /* unpreserves the old memfd */
	if (a->st.mfd >= 0)
		close(a->st.mfd);
	a->st.sess = a->st.mfd = -1;
}

int state_write(struct agent *a, const char *reason)
{
	struct json_object *o;
	char point[64];
	size_t len;
	char *js;
	int rc;

	if (a->st.mfd < 0) {
		LOGE("state write (%s): no state memfd", reason);
		return -EBADF;
	}
	snprintf(point, sizeof(point), "state:%s", reason);
	rc = fault(a, point);
	if (rc < 0) {
		LOGE("state write (%s) failed: %s (injected)", reason, strerror(-rc));
		return rc;
	}
	a->st.seq++;
	o = state_to_json(a, reason, !strcmp(reason, "kexec"));
	js = hl_json_dump(o, &len);
	json_object_put(o);
	if (!js) {
		LOGE("state write (%s): out of memory", reason);
		return -ENOMEM;
	}
	if (len + SLOT_HDR > a->st.cap / 2) {
		size_t cap = a->st.cap;
		int idx = 1 - a->st.copy, sfd, mfd;

		while (len + SLOT_HDR > cap / 2 && cap < STATE_MAX_CAP)
			cap *= 2;
		if (len + SLOT_HDR > cap / 2) {
			LOGE("state write (%s): %zu bytes exceed the %d MiB limit", reason, len,
			     STATE_MAX_CAP >> 20);
			free(js);
			return -EFBIG;
		}
		rc = own_copy_create(a, idx, cap, js, len, &sfd, &mfd);
		free(js);
		if (rc < 0) {
			LOGE("state write (%s): cannot grow the state to %zu bytes: %s", reason, cap, strerror(-rc));
			return rc;
		}
		/* the new copy is complete and held by the fd store: retire the old one */
		own_copy_retire(a);
		LOGI("state grew to %zu bytes: now in session \"%s\"", cap, own_name[idx]);
		a->st.sess = sfd;
		a->st.mfd = mfd;
		a->st.cap = cap;
		a->st.copy = idx;
		return 0;
	}
	rc = write_slot(a->st.mfd, a->st.cap, a->st.seq, js, len);
	free(js);
	if (rc < 0)
		LOGE("state write (%s) failed: %s", reason, strerror(-rc));
	return rc;
}

int state_restore_sessions(struct agent *a, struct json_object *st, bool after_kexec)
{
	struct json_object *arr;
	int n = 0;

	if (!json_object_object_get_ex(st, "sessions", &arr) || !json_object_is_type(arr, json_type_array))
		return 0;
	if (hl_jint(st, "next_update_id", 0) > 0)
		a->upd.next_id = (uint64_t)hl_jint(st, "next_update_id", 1);
	{
		struct json_object *lu;

		/* the result of the update that booted us (or of the last one before a restart) */
		if (!a->upd.last && json_object_object_get_ex(st, "last_update", &lu) &&
		    json_object_is_type(lu, json_type_object))
			a->upd.last = json_object_get(lu);
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct session *s = session_from_json(json_object_array_get_idx(arr, i));
		char tag[HL_TAG_MAX];

		if (!s) {
			LOGE("ignoring an invalid session entry in the saved state");
			continue;
		}
		if (after_kexec) {
			if (s->incoming) {
				report_kname(&a->report, s->kname, "was unfinished before the update; lost");
				session_free(s);
				continue;
			}
			s->fd = a->be.retrieve_session(&a->be, a->dev, s->kname);
			if (s->fd < 0) {
				char msg[128];

				snprintf(msg, sizeof(msg), "retrieve after update failed: %s", strerror(-s->fd));
				report_kname(&a->report, s->kname, msg);
				s->fd = -1;
				session_free(s);
				continue;
			}
			s->incoming = true;
			for (size_t k = 0; k < s->nfds; k++)
				s->fds[k].retrieved = false;
		} else {
			session_tag(tag, sizeof(tag), s);
			s->fd = fdstore_take(&a->fds, tag);
			if (s->fd < 0) {
				report_kname(&a->report, s->kname, "no fd in the fd store after restart; lost");
				session_free(s);
				continue;
			}
		}
		session_add(&a->sessions, s);
		n++;
	}
	return n;
}

/* Sessions held by the fd store that the state did not know (crash window). */
static void adopt_orphans(struct agent *a)
{
	char tag[HL_FDTAG_MAX];
	int fd;

	while ((fd = fdstore_take_prefix(&a->fds, "s", tag, sizeof(tag))) >= 0) {
		char kn[HL_KNAME_MAX], name[HL_KNAME_MAX];
		unsigned uid;
		struct session *s = NULL;

		if ((!strncmp(tag, "so-", 3) || !strncmp(tag, "si-", 3)) &&
		    a->be.get_name(&a->be, fd, kn) >= 0 && sscanf(kn, "hl:%u:%48s", &uid, name) == 2 &&
		    hl_name_valid(name))
			s = session_new(uid, name, tag[1] == 'i');
		if (!s) {
			LOGE("fd store entry %s is not a client session; closing it", tag);
			fdstore_drop(&a->fds, tag);
			close(fd);
			continue;
		}
		s->fd = fd;
		s->created = hl_wall_s();
		session_add(&a->sessions, s);
		report_kname(&a->report, kn, "adopted from the fd store without bookkeeping (tokens unknown)");
	}
}

/* One copy of the state found at start. */
struct found_copy {
	int sess, mfd;
	struct json_object *st;
	int64_t seq;
};

/* Index of the valid copy with the highest sequence number, or -1. */
static int newest_copy(const struct found_copy c[2])
{
	int best = -1;

	for (int i = 0; i < 2; i++)
		if (c[i].st && (best < 0 || c[i].seq > c[best].seq))
			best = i;
	return best;
}

static void read_copy(struct found_copy *c, const char *what)
{
	int rc = state_read_fd(c->mfd, &c->st);

	if (rc < 0)
		LOGE("saved state in %s unreadable: %s", what, strerror(-rc));
	else
		c->seq = hl_jint(c->st, "seq", 0);
}

/* Restart: both copies may be in the fd store (a crash while the state grew). */
static struct json_object *restore_after_restart(struct agent *a)
{
	struct found_copy c[2] = { { -1, -1, NULL, 0 }, { -1, -1, NULL, 0 } };
	struct json_object *st = NULL;
	int best;

	for (int i = 0; i < 2; i++) {
		c[i].sess = fdstore_take(&a->fds, own_stag[i]);
		c[i].mfd = fdstore_take(&a->fds, own_mtag[i]);
		if (c[i].sess >= 0 && c[i].mfd >= 0)
			read_copy(&c[i], own_name[i]);
	}
	best = newest_copy(c);
	for (int i = 0; i < 2; i++) {
		if (i == best) {
			a->st.sess = c[i].sess;
			a->st.mfd = c[i].mfd;
			a->st.cap = (size_t)lseek(c[i].mfd, 0, SEEK_END);
			a->st.copy = i;
			st = c[i].st;
			continue;
		}
		if (c[i].sess >= 0 || c[i].mfd >= 0) {
			LOGI("retiring the %s copy of the state \"%s\"", c[i].st ? "older" : "incomplete",
			     own_name[i]);
			fdstore_drop(&a->fds, own_stag[i]);
			fdstore_drop(&a->fds, own_mtag[i]);
		}
		if (c[i].sess >= 0)
			close(c[i].sess);
		if (c[i].mfd >= 0)
			close(c[i].mfd);
		json_object_put(c[i].st);
	}
	return st;
}

/* Live update boot: retrieve both copies, use the newest, finish both. */
static struct json_object *restore_after_kexec(struct agent *a)
{
	struct found_copy c[2] = { { -1, -1, NULL, 0 }, { -1, -1, NULL, 0 } };
	struct json_object *st = NULL;
	int best, rc;

	for (int i = 0; i < 2; i++) {
		c[i].sess = a->be.retrieve_session(&a->be, a->dev, own_name[i]);
		if (c[i].sess < 0) {
			if (c[i].sess != -ENOENT)
				LOGE("retrieving own session \"%s\": %s", own_name[i], strerror(-c[i].sess));
			c[i].sess = -1;
			continue;
		}
		a->boot = BOOT_UPDATED;
		c[i].mfd = a->be.retrieve_fd(&a->be, c[i].sess, HL_STATE_TOKEN);
		if (c[i].mfd < 0) {
			LOGE("own session \"%s\" retrieved but its state memfd is missing: %s", own_name[i],
			     strerror(-c[i].mfd));
			c[i].mfd = -1;
			continue;
		}
		read_copy(&c[i], own_name[i]);
	}
	best = newest_copy(c);
	if (best >= 0)
		st = json_object_get(c[best].st);
	for (int i = 0; i < 2; i++) {
		json_object_put(c[i].st);
		if (c[i].mfd >= 0)
			close(c[i].mfd);
		if (c[i].sess < 0)
			continue;
		rc = a->be.finish(&a->be, c[i].sess);
		if (rc < 0)
			LOGE("finish of own session \"%s\" failed: %s", own_name[i], strerror(-rc));
		close(c[i].sess);
	}
	return st;
}

int state_init(struct agent *a)
{
	struct json_object *st = NULL;
	int rc;

	if (a->boot == BOOT_RESTARTED) {
		st = restore_after_restart(a);
		if (st) {
			int64_t cd = hl_jint(st, "claim_deadline", 0);

			struct json_object *u;

			a->st.seq = (uint64_t)hl_jint(st, "seq", 0);
			state_restore_sessions(a, st, false);
			if (json_object_object_get_ex(st, "update", &u) && json_object_is_type(u, json_type_object))
				a->upd.interrupted = json_object_get(u); /* see update_recover() */
			if (cd > 0)
				a->claim_deadline_ms = hl_now_ms() + (cd - hl_wall_s()) * 1000;
		}
		adopt_orphans(a);
	} else {
		st = restore_after_kexec(a);
		if (a->boot == BOOT_UPDATED) {
			if (st) {
				int n = state_restore_sessions(a, st, true);

				a->st.seq = (uint64_t)hl_jint(st, "seq", 0);
				LOGI("live update boot: restored %d client session(s) from saved state", n);
			}
			a->claim_deadline_ms = hl_now_ms() + (int64_t)a->claim_timeout_s * 1000;
			for (struct session *s = a->sessions.head; s; s = s->next) {
				char tag[HL_TAG_MAX];

				session_tag(tag, sizeof(tag), s);
				fdstore_put(&a->fds, tag, s->fd);
			}
		}
	}
	json_object_put(st);
	fdstore_close_unused(&a->fds);
	if (a->st.sess < 0 || a->st.mfd < 0) {
		fdstore_drop(&a->fds, own_stag[0]);
		fdstore_drop(&a->fds, own_mtag[0]);
		if (a->st.sess >= 0)
			close(a->st.sess);
		if (a->st.mfd >= 0)
			close(a->st.mfd);
		a->st.sess = a->st.mfd = -1;
		a->st.copy = 0;
		rc = own_copy_create(a, 0, STATE_MIN_CAP, NULL, 0, &a->st.sess, &a->st.mfd);
		if (rc < 0)
			return rc;
		a->st.cap = STATE_MIN_CAP;
	}
	rc = state_write(a, "start");
	return rc < 0 ? rc : 0;
}
