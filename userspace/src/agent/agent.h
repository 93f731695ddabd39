/* SPDX-License-Identifier: MIT */
#ifndef HL_AGENT_H
#define HL_AGENT_H

#include "backend.h"
#include "../common/proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HL_AGENT_SESSION "hugelived"	/* the agent's own LUO session */
#define HL_STATE_TOKEN 0
#define HL_STATE_FORMAT "hugelived-state"
#define HL_STATE_VERSION 1
#define HL_VERSION "0.1.0"

struct json_object;

struct fdrec {
	uint64_t token;
	char label[HL_MAX_LABEL + 1];
	bool hugetlb;
	bool retrieved;
};

struct session {
	struct session *next;
	char name[HL_MAX_NAME + 1];
	uint32_t uid;
	char kname[HL_KNAME_MAX];
	bool incoming;		/* retrieved from the previous kernel */
	int fd;			/* LUO session fd */
	struct fdrec *fds;
	size_t nfds;
	int64_t created;	/* wall clock, seconds */
};

struct outpkt {
	struct outpkt *next;
	char *buf;
	size_t len;
	int fd;
};

struct tagged_fd {
	char tag[160];
	int fd;
};

struct client {
	struct client *next;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char name[HL_MAX_CLIENT_NAME + 1];
	bool subscribed;
	int ack;		/* current barrier: 0 pending, 1 ready, -1 refused */
	bool dead;		/* close at the end of this loop iteration */
	bool want_out;		/* EPOLLOUT armed */
	struct outpkt *oq_head, *oq_tail;
	size_t oq_bytes;
};

enum fdstore_mode { FDSTORE_NONE, FDSTORE_KEEPER, FDSTORE_SYSTEMD };
enum unclaimed_policy { UNCLAIMED_FINISH, UNCLAIMED_KEEP };
enum boot_kind { BOOT_FRESH, BOOT_UPDATED, BOOT_RESTARTED };

struct agent {
	struct hl_backend be;
	int dev;
	int listen_fd;
	bool bound_socket;
	char sock_path[108];
	unsigned sock_mode;
	int ep;
	struct session *sessions;
	struct client *clients;
	int nclients;

	/* own LUO session and state memfd */
	int state_sess;
	int state_mfd;
	size_t state_cap;
	uint64_t state_seq;

	enum boot_kind boot;
	int64_t start_ms;
	int claim_timeout_s;
	int64_t claim_deadline_ms;	/* 0: none pending */
	enum unclaimed_policy unclaimed;
	struct json_object *report;	/* lost/unclaimed sessions report (array) */

	/* orchestrated update */
	bool in_barrier;
	uint64_t update_id;
	uint64_t next_update_id;
	int64_t barrier_deadline_ms;
	int64_t barrier_timeout_ms;
	struct client *updater;
	int64_t updater_req;
	char update_kernel[HL_MAX_PATH + 1];
	struct json_object *last_update;	/* result of the last attempt */

	/* crash safety */
	struct tagged_fd *restored;	/* fds handed back by keeper/FD store at start */
	int nrestored;
	enum fdstore_mode fdstore;
	char keeper_path[108];
	int keeper_fd;

	int hugetlb_support;		/* 1/0/-1, probed at start */
	int verbose;
	volatile int quit;
	int exit_code;
	bool exit_after_kexec;
};

/* main.c */
void agent_log(struct agent *a, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define LOGE(a, ...) agent_log(a, 0, __VA_ARGS__)
#define LOGI(a, ...) agent_log(a, 1, __VA_ARGS__)
#define LOGD(a, ...) agent_log(a, 2, __VA_ARGS__)
/* Queue a JSON packet (takes ownership of obj and fd). */
void client_send(struct agent *a, struct client *c, struct json_object *obj, int fd);
void client_drop(struct agent *a, struct client *c);

/* ops.c */
void agent_handle_request(struct agent *a, struct client *c, struct hl_req *r, int fd);
void agent_client_gone(struct agent *a, struct client *c);
void agent_tick(struct agent *a);		/* deadlines */
int64_t agent_next_deadline(struct agent *a);	/* ms, or -1 */
struct session *session_find(struct agent *a, uint32_t uid, const char *name, bool incoming);
void session_free(struct session *s);
void session_unlink(struct agent *a, struct session *s);
int session_kname(char out[HL_KNAME_MAX], uint32_t uid, const char *name);
void session_tag(char *out, size_t len, const struct session *s);
bool hl_authorized(uid_t caller, uint32_t owner);
int hl_target_uid(uid_t caller, bool has_uid, uint32_t uid, uint32_t *target);

/* state.c */
int state_init(struct agent *a);			/* create own session + memfd */
int state_write(struct agent *a, const char *reason);
struct json_object *state_to_json(struct agent *a, const char *reason, bool for_kexec);
struct json_object *session_fds_json(const struct session *s);
int state_read_fd(int mfd, struct json_object **out);	/* parse a state memfd */
int state_restore_sessions(struct agent *a, struct json_object *st, bool after_kexec);
int state_encode_slot(char *mem, size_t cap, uint64_t seq, const char *json, size_t len, int slot);

/* keeper.c */
int keeper_main(const char *path);
int fdstore_setup(struct agent *a, int *n_restored);	/* connect/spawn + fetch fds */
int fdstore_put(struct agent *a, const char *tag, int fd);
int fdstore_drop(struct agent *a, const char *tag);
void fdstore_exit(struct agent *a);

#endif
