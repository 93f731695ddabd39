/* SPDX-License-Identifier: MIT */
/*
 * Persistence: the agent's own LUO session "hugelived" (or "hugelived.1",
 * the other copy used while the state grows) whose token 0 is a memfd
 * holding the agent's bookkeeping as JSON (two CRC'd slots).
 */
#ifndef HL_AGENT_STATE_H
#define HL_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_AGENT_SESSION "hugelived"	/* the agent's own LUO session */
#define HL_STATE_TOKEN 0
#define HL_STATE_FORMAT "hugelived-state"
#define HL_STATE_VERSION 1

struct agent;
struct json_object;

struct persist {
	int sess;		/* own LUO session fd */
	int mfd;		/* state memfd */
	size_t cap;
	int copy;		/* 0: session "hugelived" (tags hs/st), 1: "hugelived.1" (hs1/st1) */
	uint64_t seq;
};

void state_init_struct(struct persist *p);
/* At start: restore sessions from the fd store / the previous kernel, then write. */
int state_init(struct agent *a);
int state_write(struct agent *a, const char *reason);
struct json_object *state_to_json(struct agent *a, const char *reason, bool for_kexec);
int state_read_fd(int mfd, struct json_object **out);	/* parse a state memfd */
int state_restore_sessions(struct agent *a, struct json_object *st, bool after_kexec);
int state_encode_slot(char *mem, size_t cap, uint64_t seq, const char *json, size_t len, int slot);

#endif
