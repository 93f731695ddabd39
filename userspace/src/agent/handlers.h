/* SPDX-License-Identifier: MIT */
/* Request handlers: session operations, status, and the claim timeout. */
#ifndef HL_AGENT_HANDLERS_H
#define HL_AGENT_HANDLERS_H

#include <stdint.h>

struct agent;
struct client;
struct hl_req;

/* Dispatch one parsed request; fd >= 0 was passed with it (owned here). */
void handle_request(struct agent *a, struct client *c, struct hl_req *r, int fd);
/* Claim timeout after an update: unclaimed sessions per policy. */
void handlers_tick(struct agent *a, int64_t now);
int64_t handlers_deadline(const struct agent *a);	/* ms, or -1 */

#endif
