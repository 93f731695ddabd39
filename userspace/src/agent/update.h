/* SPDX-License-Identifier: MIT */
/*
 * The update state machine: preflight, kexec load, the barrier with the
 * subscribed clients (prepare / ready / refuse / timeout / disconnect),
 * cancel (unload, resume) and the kexec itself.
 */
#ifndef HL_AGENT_UPDATE_H
#define HL_AGENT_UPDATE_H

#include "../common/proto.h"

#include <stdbool.h>
#include <stdint.h>

struct agent;
struct client;
struct hl_req;
struct json_object;

struct update_sm {
	bool in_barrier;
	uint64_t id;
	uint64_t next_id;
	int64_t deadline_ms;
	int64_t timeout_ms;
	struct client *updater;
	int64_t updater_req;
	char kernel[HL_MAX_PATH + 1];
	char running_kernel[HL_MAX_PATH + 1];	/* --running-kernel: the running kernel's image ("": look for it) */
	struct json_object *last;	/* result of the last attempt */
	bool exit_after_kexec;		/* fake backend: the "machine" rebooted */
	bool force;			/* root's --force: nothing cancels the barrier */
	uint32_t allow[64];		/* --barrier-uid: may veto without owning a session */
	size_t nallow;
	/*
	 * An update is active from a successful kexec load until it ends; while
	 * active it is in the saved state, so that an agent restarted in the
	 * middle unloads the image, records the outcome and resumes clients.
	 */
	bool active;
	const char *stage;		/* preflight, load, barrier, kexec, reboot */
	struct json_object *interrupted; /* the saved active update found at a restart */
	uint64_t recovered_id;		/* interrupted update: late subscribers get resume */
	char recovered_msg[256];
	bool handed_off;		/* kexec.target started: wait for systemd-shutdown */
};

void update_init(struct update_sm *u);
void update_start(struct agent *a, struct client *c, struct hl_req *r);	/* op update */
void update_ack(struct agent *a, struct client *c, struct hl_req *r);	/* op ready/refuse */
void update_subscribe(struct agent *a, struct client *c, struct hl_req *r);
void update_client_gone(struct agent *a, struct client *c);
/* Has uid a subscribed client connected? */
bool update_uid_subscribed(const struct agent *a, uint32_t uid);
void update_tick(struct agent *a, int64_t now);
int64_t update_deadline(const struct agent *a);	/* ms, or -1 */
/* After a restart: finish an update the previous agent left active. */
void update_recover(struct agent *a);
/* The active update as saved in the state, or NULL. */
struct json_object *update_state_json(const struct agent *a);
/*
 * last_update as uid may see it (a new reference, or NULL): root gets it
 * whole; another uid gets the public message instead of one that names
 * another client, unless that client was its own.
 */
struct json_object *update_last_for(const struct agent *a, uint32_t uid);
/* The "update" object of status. */
struct json_object *update_status_json(const struct agent *a);

#endif
