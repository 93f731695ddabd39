/* SPDX-License-Identifier: MIT */
#include "report.h"
#include "log.h"

#include <json-c/json.h>
#include <stdio.h>

void report_add(struct report *r, struct json_object *entry)
{
	if (!r->entries)
		r->entries = json_object_new_array();
	json_object_array_add(r->entries, entry);
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
