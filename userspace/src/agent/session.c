/* SPDX-License-Identifier: MIT */
/* Session model: see session.h. */
#include "session.h"
#include "../common/util.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool hl_authorized(uid_t caller, uint32_t owner)
{
	return caller == 0 || (uint32_t)caller == owner;
}

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

struct session *session_new(uint32_t uid, const char *name, bool incoming)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->fd = -1;
	s->uid = uid;
	s->incoming = incoming;
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (strlen(name) > HL_MAX_NAME || session_kname(s->kname, uid, name) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->fds);
	free(s);
}

struct session *session_find(struct session_table *t, uint32_t uid, const char *name, bool incoming)
{
	for (struct session *s = t->head; s; s = s->next)
		if (s->uid == uid && s->incoming == incoming && !strcmp(s->name, name))
			return s;
	return NULL;
}

struct fdrec *session_fd(struct session *s, uint64_t token)
{
	for (size_t i = 0; i < s->nfds; i++)
		if (s->fds[i].token == token)
			return &s->fds[i];
	return NULL;
}

void session_add(struct session_table *t, struct session *s)
{
	s->seq = ++t->next_seq;
	s->next = t->head;
	t->head = s;
	t->count++;
}

void session_unlink(struct session_table *t, struct session *s)
{
	for (struct session **pp = &t->head; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			s->next = NULL;
			t->count--;
			return;
		}
}

int session_count_uid(const struct session_table *t, uint32_t uid)
{
	int n = 0;

	for (const struct session *s = t->head; s; s = s->next)
		n += s->uid == uid;
	return n;
}

struct json_object *session_to_json(const struct session *s)
{
	struct json_object *o = json_object_new_object(), *fds = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "uid", json_object_new_int64(s->uid));
	json_object_object_add(o, "kname", json_object_new_string(s->kname));
	json_object_object_add(o, "state", json_object_new_string(s->incoming ? "incoming" : "outgoing"));
	json_object_object_add(o, "created", json_object_new_int64(s->created));
	json_object_object_add(o, "barrier", json_object_new_boolean(s->barrier));
	for (size_t i = 0; i < s->nfds; i++) {
		struct json_object *f = json_object_new_object();

		json_object_object_add(f, "token", json_object_new_int64((int64_t)s->fds[i].token));
		json_object_object_add(f, "label", json_object_new_string(s->fds[i].label));
		json_object_object_add(f, "hugetlb", json_object_new_boolean(s->fds[i].hugetlb));
		json_object_object_add(f, "retrieved", json_object_new_boolean(s->fds[i].retrieved));
		json_object_array_add(fds, f);
	}
	json_object_object_add(o, "fds", fds);
	return o;
}

struct session *session_from_json(struct json_object *e)
{
	struct json_object *fds;
	const char *name = hl_jstr(e, "name"), *st = hl_jstr(e, "state"), *dir = hl_jstr(e, "dir");
	int64_t uid = hl_jint(e, "uid", -1);
	struct session *s;
	bool incoming;

	if (st && (!strcmp(st, "incoming") || !strcmp(st, "outgoing")))
		incoming = !strcmp(st, "incoming");
	else if (dir && (!strcmp(dir, "in") || !strcmp(dir, "out")))
		incoming = !strcmp(dir, "in");
	else
		return NULL;
	if (!name || !hl_name_valid(name) || uid < 0 || uid > UINT32_MAX)
		return NULL;
	s = session_new((uint32_t)uid, name, incoming);
	if (!s)
		return NULL;
	s->created = hl_jint(e, "created", 0);
	s->barrier = hl_jbool(e, "barrier", false);
	if (json_object_object_get_ex(e, "fds", &fds) && json_object_is_type(fds, json_type_array)) {
		size_t n = json_object_array_length(fds);

		if (n > HL_MAX_TOKENS_PER_SESSION) {
			session_free(s);
			return NULL;
		}
		s->fds = calloc(n ? n : 1, sizeof(*s->fds));
		if (!s->fds) {
			session_free(s);
			return NULL;
		}
		for (size_t i = 0; i < n; i++) {
			struct json_object *f = json_object_array_get_idx(fds, i);
			const char *lbl = hl_jstr(f, "label");
			int64_t tok = hl_jint(f, "token", -1);

			if (tok < 0)
				continue;
			s->fds[s->nfds].token = (uint64_t)tok;
			snprintf(s->fds[s->nfds].label, sizeof(s->fds[0].label), "%s", lbl ? lbl : "");
			s->fds[s->nfds].hugetlb = hl_jbool(f, "hugetlb", false);
			s->fds[s->nfds].retrieved = hl_jbool(f, "retrieved", false);
			s->nfds++;
		}
	}
	return s;
}

const char *boot_kind_name(enum boot_kind b)
{
	switch (b) {
	case BOOT_UPDATED: return "updated";
	case BOOT_RESTARTED: return "restarted";
	default: return "fresh";
	}
}
