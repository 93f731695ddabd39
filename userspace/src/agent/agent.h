/* SPDX-License-Identifier: MIT */
/*
 * The agent: the container of its parts. Each part has its own header and
 * file, and the headers depend one way only (none includes this one):
 *   session.h   session model, ownership        (session.c)
 *   handlers.h  request handlers, claim timeout  (handlers.c)
 *   update.h    update state machine             (update.c)
 *   server.h    event loop and client I/O        (server.c)
 *   state.h     persistence                      (state.c)
 *   fdstore.h   fd store: keeper / systemd       (keeper.c)
 *   backend.h   the kernel (LUO) or its fake     (backend_*.c)
 *   shutdown.h  how the kexec happens            (shutdown.c)
 */
#ifndef HL_AGENT_H
#define HL_AGENT_H

#include "backend.h"
#include "fdstore.h"
#include "handlers.h"
#include "log.h"
#include "report.h"
#include "server.h"
#include "session.h"
#include "shutdown.h"
#include "state.h"
#include "update.h"
#include "../common/proto.h"

#include <stdbool.h>
#include <stdint.h>

#define HL_VERSION "0.1.0"

enum unclaimed_policy { UNCLAIMED_FINISH, UNCLAIMED_KEEP };

struct agent {
	struct hl_backend be;
	int dev;
	struct session_table sessions;
	struct server srv;
	struct update_sm upd;
	struct persist st;
	struct fdstore fds;
	struct report report;		/* lost/unclaimed sessions */

	enum boot_kind boot;
	int64_t start_ms;
	int claim_timeout_s;
	int64_t claim_deadline_ms;	/* 0: none pending */
	enum unclaimed_policy unclaimed;
	int hugetlb_support;		/* 1/0/-1, probed at start */
	int exit_code;
	enum kexec_via kexec_via;	/* decided at start: systemd or direct */
};

#endif
