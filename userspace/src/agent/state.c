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

/* The fds of a session as a JSON array: used on the wire and in the state. */
struct json_object *session_fds_json(const struct session *s)
{
	struct json_object *fds = json_object_new_array();

	for (size_t i = 0; i < s->nfds; i++) {
		struct json_object *f = json_object_new_object();

		json_object_object_add(f, "token", json_object_new_int64((int64_t)s->fds[i].token));
		json_object_object_add(f, "label", json_object_new_string(s->fds[i].label));
		json_object_object_add(f, "hugetlb", json_object_new_boolean(s->fds[i].hugetlb));
		json_object_object_add(f, "retrieved", json_object_new_boolean(s->fds[i].retrieved));
		json_object_array_add(fds, f);
	}
	return fds;
}

#define SLOT_HDR 32
#define STATE_MIN_CAP (256 * 1024)
#define STATE_MAX_CAP (64 * 1024 * 1024)

static uint32_t crc32_buf(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t crc = 0xffffffffu;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (uint32_t)-(int32_t)(crc & 1));
	}
	return ~crc;
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
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)a->state_seq));
	json_object_object_add(o, "written", json_object_new_int64(hl_wall_s()));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "boot", json_object_new_string(
		a->boot == BOOT_UPDATED ? "updated" : a->boot == BOOT_RESTARTED ? "restarted" : "fresh"));
	json_object_object_add(o, "next_update_id", json_object_new_int64((int64_t)a->next_update_id));
	if (a->last_update)
		json_object_object_add(o, "last_update", json_object_get(a->last_update));
	if (a->claim_deadline_ms)
		json_object_object_add(o, "claim_deadline", json_object_new_int64(
			hl_wall_s() + (a->claim_deadline_ms - hl_now_ms()) / 1000));
	for (struct session *s = a->sessions; s; s = s->next) {
		if (for_kexec && s->incoming)
			continue; /* unfinished incoming sessions do not survive a kexec */
		struct json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(s->name));
		json_object_object_add(e, "uid", json_object_new_int64(s->uid));
		json_object_object_add(e, "kname", json_object_new_string(s->kname));
		json_object_object_add(e, "dir", json_object_new_string(s->incoming ? "in" : "out"));
		json_object_object_add(e, "created", json_object_new_int64(s->created));
		json_object_object_add(e, "fds", session_fds_json(s));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "sessions", arr);
	return o;
}

/* Create the agent's own outgoing session with a state memfd of cap bytes. */
static int own_session_create(struct agent *a, size_t cap)
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
	sfd = a->be.create_session(&a->be, a->dev, HL_AGENT_SESSION);
	if (sfd < 0) {
		LOGE(a, "cannot create own session \"%s\": %s", HL_AGENT_SESSION, strerror(-sfd));
		close(mfd);
		return sfd;
	}
	rc = a->be.preserve_fd(&a->be, sfd, mfd, HL_STATE_TOKEN);
	if (rc < 0) {
		LOGE(a, "cannot preserve the state memfd: %s", strerror(-rc));
		close(sfd);
		close(mfd);
		return rc;
	}
	a->state_sess = sfd;
	a->state_mfd = mfd;
	a->state_cap = cap;
	fdstore_put(a, "hs", sfd);
	fdstore_put(a, "st", mfd);
	return 0;
}

static void own_session_drop(struct agent *a)
{
	fdstore_drop(a, "hs");
	fdstore_drop(a, "st");
	if (a->state_sess >= 0)
		close(a->state_sess); /* unpreserves the old memfd */
	if (a->state_mfd >= 0)
		close(a->state_mfd);
	a->state_sess = a->state_mfd = -1;
}

int state_write(struct agent *a, const char *reason)
{
	struct json_object *o;
	size_t len, cap;
	char *js, *mem;
	int rc, slot;

	if (a->state_mfd < 0)
		return -EBADF;
	a->state_seq++;
	o = state_to_json(a, reason, !strcmp(reason, "kexec"));
	js = hl_json_dump(o, &len);
	json_object_put(o);
	if (!js)
		return -ENOMEM;
	if (len + SLOT_HDR > a->state_cap / 2) {
		/* Grow: a preserved memfd cannot change size, so replace it. */
		cap = a->state_cap;
		while (len + SLOT_HDR > cap / 2 && cap < STATE_MAX_CAP)
			cap *= 2;
		if (len + SLOT_HDR > cap / 2) {
			free(js);
			return -EFBIG;
		}
		LOGI(a, "state grows to %zu bytes; replacing the state memfd", cap);
		own_session_drop(a);
		rc = own_session_create(a, cap);
		if (rc < 0) {
			free(js);
			return rc;
		}
	}
	mem = mmap(NULL, a->state_cap, PROT_READ | PROT_WRITE, MAP_SHARED, a->state_mfd, 0);
	if (mem == MAP_FAILED) {
		free(js);
		return -errno;
	}
	{
		uint64_t seq;
		size_t l;
		int cur = best_slot(mem, a->state_cap, &seq, &l);

		slot = cur < 0 ? 0 : 1 - cur;
	}
	rc = state_encode_slot(mem, a->state_cap, a->state_seq, js, len, slot);
	munmap(mem, a->state_cap);
	free(js);
	if (rc < 0)
		LOGE(a, "state write failed: %s", strerror(-rc));
	return rc;
}

static struct tagged_fd *take_tag(struct agent *a, const char *tag)
{
	for (int i = 0; i < a->nrestored; i++)
		if (a->restored[i].fd >= 0 && !strcmp(a->restored[i].tag, tag))
			return &a->restored[i];
	return NULL;
}

static void report(struct agent *a, const char *kname, const char *problem)
{
	struct json_object *e = json_object_new_object();

	if (!a->report)
		a->report = json_object_new_array();
	json_object_object_add(e, "kname", json_object_new_string(kname));
	json_object_object_add(e, "problem", json_object_new_string(problem));
	json_object_array_add(a->report, e);
	LOGE(a, "session %s: %s", kname, problem);
}

/* Parse one state entry into a new session (fd = -1). NULL if invalid. */
static struct session *session_from_json(struct json_object *e)
{
	struct json_object *fds;
	const char *name = hl_jstr(e, "name"), *dir = hl_jstr(e, "dir");
	int64_t uid = hl_jint(e, "uid", -1);
	struct session *s;

	if (!name || !hl_name_valid(name) || uid < 0 || uid > UINT32_MAX || !dir)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = -1;
	s->uid = (uint32_t)uid;
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (session_kname(s->kname, s->uid, name) < 0) {
		free(s);
		return NULL;
	}
	s->incoming = !strcmp(dir, "in");
	s->created = hl_jint(e, "created", 0);
	if (json_object_object_get_ex(e, "fds", &fds) && json_object_is_type(fds, json_type_array)) {
		size_t n = json_object_array_length(fds);

		s->fds = calloc(n ? n : 1, sizeof(*s->fds));
		for (size_t i = 0; s->fds && i < n; i++) {
			struct json_object *f = json_object_array_get_idx(fds, i);
			const char *lbl = hl_jstr(f, "label");

			s->fds[s->nfds].token = (uint64_t)hl_jint(f, "token", 0);
			snprintf(s->fds[s->nfds].label, sizeof(s->fds[0].label), "%s", lbl ? lbl : "");
			s->fds[s->nfds].hugetlb = hl_jbool(f, "hugetlb", false);
			s->fds[s->nfds].retrieved = hl_jbool(f, "retrieved", false);
			s->nfds++;
		}
	}
	return s;
}

int state_restore_sessions(struct agent *a, struct json_object *st, bool after_kexec)
{
	struct json_object *arr;
	int n = 0;

	if (!json_object_object_get_ex(st, "sessions", &arr) || !json_object_is_type(arr, json_type_array))
		return 0;
	if (hl_jint(st, "next_update_id", 0) > 0)
		a->next_update_id = (uint64_t)hl_jint(st, "next_update_id", 1);
	{
		struct json_object *lu;

		/* the result of the update that booted us (or of the last one before a restart) */
		if (!a->last_update && json_object_object_get_ex(st, "last_update", &lu) &&
		    json_object_is_type(lu, json_type_object))
			a->last_update = json_object_get(lu);
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct session *s = session_from_json(json_object_array_get_idx(arr, i));
		char tag[160];

		if (!s) {
			LOGE(a, "ignoring an invalid session entry in the saved state");
			continue;
		}
		if (after_kexec) {
			if (s->incoming) {
				report(a, s->kname, "was unfinished before the update; lost");
				session_free(s);
				continue;
			}
			s->fd = a->be.retrieve_session(&a->be, a->dev, s->kname);
			if (s->fd < 0) {
				char msg[128];

				snprintf(msg, sizeof(msg), "retrieve after update failed: %s", strerror(-s->fd));
				report(a, s->kname, msg);
				s->fd = -1;
				session_free(s);
				continue;
			}
			s->incoming = true;
			for (size_t k = 0; k < s->nfds; k++)
				s->fds[k].retrieved = false;
		} else {
			struct tagged_fd *t;

			session_tag(tag, sizeof(tag), s);
			t = take_tag(a, tag);
			if (!t) {
				report(a, s->kname, "no fd in the fd store after restart; lost");
				session_free(s);
				continue;
			}
			s->fd = t->fd;
			t->fd = -1;
		}
		s->next = a->sessions;
		a->sessions = s;
		n++;
	}
	return n;
}

/* Sessions held by the fd store that the state did not know (crash window). */
static void adopt_orphans(struct agent *a)
{
	for (int i = 0; i < a->nrestored; i++) {
		struct tagged_fd *t = &a->restored[i];
		char kn[HL_KNAME_MAX], name[HL_KNAME_MAX];
		unsigned uid;
		struct session *s;

		if (t->fd < 0 || (strncmp(t->tag, "so-", 3) && strncmp(t->tag, "si-", 3)))
			continue;
		if (a->be.get_name(&a->be, t->fd, kn) < 0 || sscanf(kn, "hl:%u:%48s", &uid, name) != 2 ||
		    !hl_name_valid(name)) {
			LOGE(a, "fd store entry %s is not a client session; closing it", t->tag);
			close(t->fd);
			t->fd = -1;
			continue;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			continue;
		s->uid = uid;
		snprintf(s->name, sizeof(s->name), "%.48s", name);
		snprintf(s->kname, sizeof(s->kname), "%s", kn);
		s->incoming = t->tag[1] == 'i';
		s->fd = t->fd;
		s->created = hl_wall_s();
		t->fd = -1;
		s->next = a->sessions;
		a->sessions = s;
		report(a, kn, "adopted from the fd store without bookkeeping (tokens unknown)");
	}
}

int state_init(struct agent *a)
{
	struct json_object *st = NULL;
	int rc;

	if (a->boot == BOOT_RESTARTED) {
		struct tagged_fd *hs = take_tag(a, "hs"), *sm = take_tag(a, "st");

		if (hs && sm) {
			a->state_sess = hs->fd;
			a->state_mfd = sm->fd;
			hs->fd = sm->fd = -1;
			a->state_cap = (size_t)lseek(a->state_mfd, 0, SEEK_END);
			rc = state_read_fd(a->state_mfd, &st);
			if (rc < 0)
				LOGE(a, "saved state unreadable after restart: %s", strerror(-rc));
		}
		if (st) {
			const char *b = hl_jstr(st, "boot");
			int64_t cd = hl_jint(st, "claim_deadline", 0);

			a->state_seq = (uint64_t)hl_jint(st, "seq", 0);
			state_restore_sessions(a, st, false);
			if (b && !strcmp(b, "updated") && cd > 0)
				a->claim_deadline_ms = hl_now_ms() + (cd - hl_wall_s()) * 1000;
		}
		adopt_orphans(a);
	} else {
		int sfd = a->be.retrieve_session(&a->be, a->dev, HL_AGENT_SESSION);

		if (sfd >= 0) {
			int mfd = a->be.retrieve_fd(&a->be, sfd, HL_STATE_TOKEN);

			a->boot = BOOT_UPDATED;
			if (mfd < 0) {
				LOGE(a, "own session retrieved but its state memfd is missing: %s", strerror(-mfd));
			} else {
				rc = state_read_fd(mfd, &st);
				if (rc < 0)
					LOGE(a, "saved state unreadable: %s", strerror(-rc));
				close(mfd);
			}
			if (st) {
				int n = state_restore_sessions(a, st, true);

				LOGI(a, "live update boot: restored %d client session(s) from saved state", n);
			}
			rc = a->be.finish(&a->be, sfd);
			if (rc < 0)
				LOGE(a, "finish of own session failed: %s", strerror(-rc));
			close(sfd);
			a->claim_deadline_ms = hl_now_ms() + (int64_t)a->claim_timeout_s * 1000;
			for (struct session *s = a->sessions; s; s = s->next) {
				char tag[160];

				session_tag(tag, sizeof(tag), s);
				fdstore_put(a, tag, s->fd);
			}
		} else if (sfd != -ENOENT) {
			LOGE(a, "retrieving own session: %s (not a live update boot?)", strerror(-sfd));
		}
	}
	json_object_put(st);
	for (int i = 0; i < a->nrestored; i++)
		if (a->restored[i].fd >= 0) {
			LOGE(a, "unused fd store entry %s; closing", a->restored[i].tag);
			close(a->restored[i].fd);
		}
	free(a->restored);
	a->restored = NULL;
	a->nrestored = 0;
	if (a->state_sess < 0 || a->state_mfd < 0) {
		if (a->state_sess >= 0)
			close(a->state_sess);
		if (a->state_mfd >= 0)
			close(a->state_mfd);
		a->state_sess = a->state_mfd = -1;
		rc = own_session_create(a, STATE_MIN_CAP);
		if (rc < 0)
			return rc;
	}
	rc = state_write(a, "start");
	return rc < 0 ? rc : 0;
}
