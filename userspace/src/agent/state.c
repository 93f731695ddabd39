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

void state_init_struct(struct persist *p)
{
	p->sess = p->mfd = -1;
	p->cap = 0;
	p->seq = 0;
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
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)a->st.seq));
	json_object_object_add(o, "written", json_object_new_int64(hl_wall_s()));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "boot", json_object_new_string(boot_kind_name(a->boot)));
	json_object_object_add(o, "next_update_id", json_object_new_int64((int64_t)a->upd.next_id));
	if (a->upd.last)
		json_object_object_add(o, "last_update", json_object_get(a->upd.last));
	if (a->claim_deadline_ms)
		json_object_object_add(o, "claim_deadline", json_object_new_int64(
			hl_wall_s() + (a->claim_deadline_ms - hl_now_ms()) / 1000));
	for (struct session *s = a->sessions.head; s; s = s->next) {
		if (for_kexec && s->incoming)
			continue; /* unfinished incoming sessions do not survive a kexec */
		struct json_object *e = session_to_json(s);

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
		LOGE("cannot create own session \"%s\": %s", HL_AGENT_SESSION, strerror(-sfd));
		close(mfd);
		return sfd;
	}
	rc = a->be.preserve_fd(&a->be, sfd, mfd, HL_STATE_TOKEN);
	if (rc < 0) {
		LOGE("cannot preserve the state memfd: %s", strerror(-rc));
		close(sfd);
		close(mfd);
		return rc;
	}
	a->st.sess = sfd;
	a->st.mfd = mfd;
	a->st.cap = cap;
	fdstore_put(&a->fds, "hs", sfd);
	fdstore_put(&a->fds, "st", mfd);
	return 0;
}

static void own_session_drop(struct agent *a)
{
	fdstore_drop(&a->fds, "hs");
	fdstore_drop(&a->fds, "st");
	if (a->st.sess >= 0)
		close(a->st.sess); /* unpreserves the old memfd */
	if (a->st.mfd >= 0)
		close(a->st.mfd);
	a->st.sess = a->st.mfd = -1;
}

int state_write(struct agent *a, const char *reason)
{
	struct json_object *o;
	size_t len, cap;
	char *js, *mem;
	int rc, slot;

	if (a->st.mfd < 0)
		return -EBADF;
	a->st.seq++;
	o = state_to_json(a, reason, !strcmp(reason, "kexec"));
	js = hl_json_dump(o, &len);
	json_object_put(o);
	if (!js)
		return -ENOMEM;
	if (len + SLOT_HDR > a->st.cap / 2) {
		/* Grow: a preserved memfd cannot change size, so replace it. */
		cap = a->st.cap;
		while (len + SLOT_HDR > cap / 2 && cap < STATE_MAX_CAP)
			cap *= 2;
		if (len + SLOT_HDR > cap / 2) {
			free(js);
			return -EFBIG;
		}
		LOGI("state grows to %zu bytes; replacing the state memfd", cap);
		own_session_drop(a);
		rc = own_session_create(a, cap);
		if (rc < 0) {
			free(js);
			return rc;
		}
	}
	mem = mmap(NULL, a->st.cap, PROT_READ | PROT_WRITE, MAP_SHARED, a->st.mfd, 0);
	if (mem == MAP_FAILED) {
		free(js);
		return -errno;
	}
	{
		uint64_t seq;
		size_t l;
		int cur = best_slot(mem, a->st.cap, &seq, &l);

		slot = cur < 0 ? 0 : 1 - cur;
	}
	rc = state_encode_slot(mem, a->st.cap, a->st.seq, js, len, slot);
	munmap(mem, a->st.cap);
	free(js);
	if (rc < 0)
		LOGE("state write failed: %s", strerror(-rc));
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

int state_init(struct agent *a)
{
	struct json_object *st = NULL;
	int rc;

	if (a->boot == BOOT_RESTARTED) {
		a->st.sess = fdstore_take(&a->fds, "hs");
		a->st.mfd = fdstore_take(&a->fds, "st");
		if (a->st.sess >= 0 && a->st.mfd >= 0) {
			a->st.cap = (size_t)lseek(a->st.mfd, 0, SEEK_END);
			rc = state_read_fd(a->st.mfd, &st);
			if (rc < 0)
				LOGE("saved state unreadable after restart: %s", strerror(-rc));
		}
		if (st) {
			const char *b = hl_jstr(st, "boot");
			int64_t cd = hl_jint(st, "claim_deadline", 0);

			a->st.seq = (uint64_t)hl_jint(st, "seq", 0);
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
				LOGE("own session retrieved but its state memfd is missing: %s", strerror(-mfd));
			} else {
				rc = state_read_fd(mfd, &st);
				if (rc < 0)
					LOGE("saved state unreadable: %s", strerror(-rc));
				close(mfd);
			}
			if (st) {
				int n = state_restore_sessions(a, st, true);

				LOGI("live update boot: restored %d client session(s) from saved state", n);
			}
			rc = a->be.finish(&a->be, sfd);
			if (rc < 0)
				LOGE("finish of own session failed: %s", strerror(-rc));
			close(sfd);
			a->claim_deadline_ms = hl_now_ms() + (int64_t)a->claim_timeout_s * 1000;
			for (struct session *s = a->sessions.head; s; s = s->next) {
				char tag[HL_TAG_MAX];

				session_tag(tag, sizeof(tag), s);
				fdstore_put(&a->fds, tag, s->fd);
			}
		} else if (sfd != -ENOENT) {
			LOGE("retrieving own session: %s (not a live update boot?)", strerror(-sfd));
		}
	}
	json_object_put(st);
	fdstore_close_unused(&a->fds);
	if (a->st.sess < 0 || a->st.mfd < 0) {
		fdstore_drop(&a->fds, "hs");
		fdstore_drop(&a->fds, "st");
		if (a->st.sess >= 0)
			close(a->st.sess);
		if (a->st.mfd >= 0)
			close(a->st.mfd);
		a->st.sess = a->st.mfd = -1;
		rc = own_session_create(a, STATE_MIN_CAP);
		if (rc < 0)
			return rc;
	}
	rc = state_write(a, "start");
	return rc < 0 ? rc : 0;
}
