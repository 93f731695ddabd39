/* SPDX-License-Identifier: MIT */
/*
 * Event loop and client I/O: the listening socket, one non-blocking epoll
 * loop, per-client output queues. Knows nothing of sessions or updates:
 * requests, disconnects and timers go to the callbacks in struct server_ops.
 */
#ifndef HL_AGENT_SERVER_H
#define HL_AGENT_SERVER_H

#include "../common/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

struct json_object;
struct server;

struct outpkt {
	struct outpkt *next;
	char *buf;
	size_t len;
	int fd;
};

struct client {
	struct client *next;
	struct server *srv;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int pidfd;		/* the peer process at connect time (SO_PEERPIDFD), or -1 */
	char name[HL_MAX_CLIENT_NAME + 1];
	bool dead;		/* close at the end of this loop iteration */
	bool want_out;		/* EPOLLOUT armed */
	struct outpkt *oq_head, *oq_tail;
	size_t oq_bytes;
	int64_t last_active_ms;	/* connect or last request, monotonic */
	/* update barrier: owned by update.c */
	bool subscribed;
	int ack;		/* current barrier: 0 pending, 1 ready, -1 refused */
	bool veto;		/* current barrier: its answer counts */
};

struct server_ops {
	/* fd >= 0: passed with the request; the callee owns it. */
	void (*request)(void *ctx, struct client *c, struct hl_req *r, int fd);
	/* c is being dropped (still valid until the end of the iteration). */
	void (*gone)(void *ctx, struct client *c);
	void (*tick)(void *ctx);
	int64_t (*next_deadline)(void *ctx);	/* monotonic ms, or -1 */
};

/* An extra fd the loop watches for the agent (e.g. the keeper connection). */
struct server_watch {
	int fd;
	void (*cb)(void *ctx, int fd);
	void *ctx;
};

#define SERVER_MAX_WATCH 4

struct server {
	int listen_fd;
	bool bound_socket;
	char sock_path[108];
	unsigned sock_mode;
	int ep;
	struct client *clients;
	int nclients;
	int64_t idle_timeout_ms;	/* non-root unsubscribed clients; 0: none */
	int64_t accept_resume_ms;	/* accept paused (EMFILE...) until then; 0: not paused */
	int64_t accept_backoff_ms;
	const struct server_ops *ops;
	void *ctx;
	struct server_watch watch[SERVER_MAX_WATCH];
	volatile int quit;
	/*
	 * Signal mask while waiting for events: the signals that set quit are
	 * blocked everywhere else and delivered only inside epoll_pwait(), so
	 * one that arrives between the quit check and the wait is not lost.
	 */
	sigset_t run_mask;
};

void server_init(struct server *srv);
/* inherited >= 0: a socket passed by systemd; else bind sock_path. */
int server_listen(struct server *srv, int inherited);
/* Run until srv->quit. Returns 0, or -errno when the loop itself failed. */
int server_run(struct server *srv);
/* Best-effort flush of every queue and unlink of the socket on exit. */
void server_shutdown(struct server *srv);

/*
 * Has the peer process CAP_SYS_BOOT in the agent's user namespace, now?
 * Read from /proc/<pid>/status and checked against the peer's pidfd, so a
 * recycled pid cannot lend its capabilities. 1 yes, 0 no (why says so).
 */
int client_has_cap_sys_boot(const struct client *c, char *why, size_t len);

/* Call cb when fd is readable or hangs up (after server_listen). 0 or -errno. */
int server_watch(struct server *srv, int fd, void (*cb)(void *ctx, int fd), void *ctx);
/* Stop watching fd; call before closing it. */
void server_unwatch(struct server *srv, int fd);

/* Queue a JSON packet (takes ownership of obj and fd). */
void client_send(struct client *c, struct json_object *obj, int fd);
void client_drop(struct client *c);
#define server_for_each_client(srv, k) for (struct client *k = (srv)->clients; k; k = k->next)

#endif
