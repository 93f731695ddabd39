/* SPDX-License-Identifier: MIT */
/*
 * hugelive-vm: the launcher's life cycle around the agent (docs/vm-guest.md
 * has the state machine):
 *
 *   start:   RAM memfd (hugetlb, every page allocated) -> session NAME,
 *            token 1 -> subscribe -> QEMU -> running
 *   prepare: stop the guest -> save the device state (x-ignore-shared) into
 *            a memfd -> session NAME.state: 1 state, 2 console, 3 manifest
 *            -> ready (any failure: refuse, drop NAME.state, continue)
 *   resume:  (update cancelled) drop NAME.state, continue the guest
 *   restore: (next kernel) retrieve the fds -> QEMU -S -incoming defer on the
 *            same RAM -> load the state -> cont -> finish the incoming
 *            sessions -> session NAME again (token 1) -> subscribe -> running
 */
#ifndef HLVM_LAUNCH_H
#define HLVM_LAUNCH_H

#include "vmcfg.h"

struct launch_opts {
	struct vm_cfg cfg;
	bool cfg_qemu_set;		/* --qemu given (restore: overrides the manifest's) */
	int ram_fd;			/* --ram-fd: a memfd of the caller's, else -1 */
	const char *socket;		/* agent socket, NULL: default */
	const char *rundir;		/* default VM_RUNDIR */
};

/* hugelive-vm start: a fresh guest. Runs until the guest ends; exit status. */
int launch_start(struct launch_opts *o);
/* hugelive-vm restore: the guest saved before the update. Exit status. */
int launch_restore(struct launch_opts *o);

#endif
