/* SPDX-License-Identifier: MIT */
#include "report.h"
#include "log.h"

#include "../common/proto.h"
#include "../common/util.h"

#include <json-c/json.h>
#include <stdio.h>

void report_add(struct report *r, struct json_object *entry)
{
	if (!r->entries)
		r->entries = json_object_new_array();
	json_object_array_add(r->entries, entry);
	if (json_object_array_length(r->entries) > HL_MAX_REPORT) {
		json_object_array_del_idx(r->entries, 0, 1);
		r->dropped++;
	}
}

struct json_object *report_for(const struct report *r, uint32_t uid)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; r->entries && i < json_object_array_length(r->entries); i++) {
		struct json_object *e = json_object_array_get_idx(r->entries, i);

		if (uid == 0 || hl_jint(e, "uid", -1) == (int64_t)uid)
			json_object_array_add(a, json_object_get(e));
	}
	return a;
}

void report_kname(struct report *r, const char *kname, const char *problem)
{
	struct json_object *e = json_object_new_object();
	unsigned uid;

	json_object_object_add(e, "kname", json_object_new_string(kname));
	if (sscanf(kname, "hl:%u:", &uid) == 1)
		json_object_object_add(e, "uid", json_object_new_int64(uid));
	json_object_object_add(e, "problem", json_object_new_string(problem));
	report_add(r, e);
	LOGE("session %s: %s", kname, problem);
}

void report_free(struct report *r)
{
	json_object_put(r->entries);
	r->entries = NULL;
}
