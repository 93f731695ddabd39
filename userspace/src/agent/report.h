/* SPDX-License-Identifier: MIT */
/* Problems with sessions found at start or at the claim timeout (status.report). */
#ifndef HL_AGENT_REPORT_H
#define HL_AGENT_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

struct report {
	struct json_object *entries;	/* array, or NULL while empty */
	uint64_t dropped;		/* oldest entries dropped beyond HL_MAX_REPORT */
};

/*
 * Append entry (takes ownership); entries carry "kname", "uid", "problem"
 * and stay small (no fd lists). At most HL_MAX_REPORT are kept.
 */
void report_add(struct report *r, struct json_object *entry);
/* The entries uid may see (all for root), newest HL_MAX_REPORT; a new array. */
struct json_object *report_for(const struct report *r, uint32_t uid);
/* Entry for a session known only by its kernel name (uid parsed from it). */
void report_kname(struct report *r, const char *kname, const char *problem);
void report_free(struct report *r);

#endif
