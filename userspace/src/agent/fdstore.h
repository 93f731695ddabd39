/* SPDX-License-Identifier: MIT */
/*
 * FD store: where the agent's fds (the device, its own session and state
 * memfd, every client session) outlive the agent process. Implemented in
 * keeper.c: the systemd service FD store, or the "hugelived --keeper"
 * process. Knows tags and fds only, nothing of sessions.
 */
#ifndef HL_AGENT_FDSTORE_H
#define HL_AGENT_FDSTORE_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#define HL_FDTAG_MAX 160

enum fdstore_mode { FDSTORE_NONE, FDSTORE_KEEPER, FDSTORE_SYSTEMD };

/* A tagged fd: in the keeper's table, handed back at start, or mirrored. */
struct fdtag {
	char tag[HL_FDTAG_MAX];
	int fd;
};

struct fdtag_list {
	struct fdtag *v;
	size_t n, cap;
};

struct fdstore {
	enum fdstore_mode mode;
	char keeper_path[108];
	int keeper_fd;
	struct fdtag_list restored;	/* handed back at start, owned until taken */
	struct fdtag_list held;		/* what the store holds now (fds owned by the caller) */
	unsigned keeper_restarts;	/* keepers re-created after one died */
	/*
	 * A keeper that could not be re-created (or failed while taking the
	 * fds back) is tried again at keeper_retry_ms (0: nothing pending),
	 * the delay doubling from 1 s up to 30 s: without a keeper the
	 * session fds live only in the agent, and an agent crash then loses
	 * them.
	 */
	int64_t keeper_retry_ms;
	int keeper_retry_delay_ms;
	/*
	 * Told when the keeper connection changes (an fd of -1: none), before
	 * the old fd is closed, so that the event loop can watch it for a
	 * hang-up. May be NULL.
	 */
	void (*keeper_changed)(void *ctx, int old_fd, int new_fd);
	void *hook_ctx;
};

/* "auto" (systemd if $NOTIFY_SOCKET, else keeper), "systemd", "keeper", "none". */
int fdstore_parse_mode(const char *s, enum fdstore_mode *out);
const char *fdstore_mode_name(const struct fdstore *fs);

void fdstore_init(struct fdstore *fs);
/* Connect or spawn the keeper / read the systemd store; fills fs->restored. */
int fdstore_setup(struct fdstore *fs);
/* Take the restored fd with this tag (the caller owns it), or -1. */
int fdstore_take(struct fdstore *fs, const char *tag);
/* Take the next restored fd whose tag starts with prefix; tag copied out. */
int fdstore_take_prefix(struct fdstore *fs, const char *prefix, char *tag, size_t len);
/* Close every restored fd nobody took (logged). */
void fdstore_close_unused(struct fdstore *fs);

/* The store keeps its own copy of fd (the caller keeps its fd). */
int fdstore_put(struct fdstore *fs, const char *tag, int fd);
int fdstore_drop(struct fdstore *fs, const char *tag);
/*
 * The keeper connection became readable or hung up (the keeper never
 * writes unasked): if the keeper is gone, start a new one and re-deposit
 * every held fd. Returns 0 when a keeper holds everything afterwards.
 */
int fdstore_keeper_event(struct fdstore *fs);
/* Re-create a lost keeper when its retry is due (now: hl_now_ms()). */
void fdstore_tick(struct fdstore *fs, int64_t now);
/* When fdstore_tick() wants to run next, or -1. */
int64_t fdstore_deadline(const struct fdstore *fs);
/* After a kexec: the keeper exits (nothing left to hold). */
void fdstore_exit(struct fdstore *fs);

/* The keeper process ("hugelived --keeper"). */
int keeper_main(const char *path);

#endif
