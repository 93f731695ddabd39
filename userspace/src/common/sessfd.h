/* SPDX-License-Identifier: MIT */
/*
 * RETRIEVE_FD on a LUO session fd, for the agent's backends and for
 * libhugelive's self-retrieval (the caller is charged for the pages).
 */
#ifndef HL_SESSFD_H
#define HL_SESSFD_H

#include <stdint.h>

/* The kernel: ioctl(LIVEUPDATE_SESSION_RETRIEVE_FD). Returns an fd or -errno. */
int hl_luo_retrieve_fd(int sfd, uint64_t token);
/* hugelive-fakeluo (tests): the same over its session socket. */
int hl_fake_retrieve_fd(int sfd, uint64_t token);

#endif
