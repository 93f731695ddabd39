/* SPDX-License-Identifier: MIT */
/*
 * hugelive-vm: one QEMU process and what is done to it over QMP: start it
 * on the guest RAM memfd (fresh, or waiting for an incoming migration),
 * stop and continue the guest, save the device state into a file with the
 * x-ignore-shared capability (guest RAM, a shared memory backend, stays out
 * of the stream) and load it back.
 */
#ifndef HLVM_VMM_H
#define HLVM_VMM_H

#include "qmp.h"
#include "vmcfg.h"

#include <sys/types.h>

struct vmm {
	pid_t pid;
	struct qmp qmp;
	char qmp_path[PATH_MAX];
	char err[768];
	int major, minor, micro;	/* QEMU's version (QMP greeting) */
};

/*
 * The QEMU program: prog is a path or a name looked up in PATH; it must
 * be executable and report a version >= VM_MIN_QEMU_MAJOR with --version.
 * path gets the full path. 0, or a negative errno with a message in err.
 */
int vmm_find_qemu(const char *prog, char *path, size_t len, char *err, size_t errlen);
/*
 * Start QEMU for cfg on the RAM memfd ram_fd and the console memfd con_fd
 * of this process (QEMU opens /proc/<pid>/fd/<n>); rundir holds the QMP
 * socket. incoming: -S -incoming defer. Connects QMP, checks the
 * x-ignore-shared capability and turns it on. 0 or negative errno (v->err).
 */
int vmm_start(struct vmm *v, const struct vm_cfg *cfg, const char *qemu_path, int ram_fd, int con_fd,
	      bool incoming, const char *rundir);
int vmm_stop_guest(struct vmm *v);
int vmm_cont(struct vmm *v);
/* Save the device state into state_fd (truncated first), wait <= timeout_ms. */
int vmm_save(struct vmm *v, int state_fd, int timeout_ms);
/* Load the device state from state_fd (from offset 0), wait <= timeout_ms. */
int vmm_load(struct vmm *v, int state_fd, int timeout_ms);
/* QEMU's run state ("running", "paused", "postmigrate", ...): 0 or -errno. */
int vmm_runstate(struct vmm *v, char *st, size_t len);
/* Has QEMU exited? (reaps it; *status: its wait status) */
bool vmm_exited(struct vmm *v, int *status);
/* quit over QMP, else SIGTERM, then SIGKILL; reaps it. */
void vmm_kill(struct vmm *v);

#endif
