/* SPDX-License-Identifier: MIT */
#ifndef HL_TOOL_H
#define HL_TOOL_H

#include <stdbool.h>

/* Exit codes of hugelivectl (documented in hugelivectl(8)). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* operation failed / machine not ready */
	EXIT_USAGE = 2,
	EXIT_NOAGENT = 3,	/* agent not reachable */
	EXIT_CANCELLED = 4,	/* update cancelled by the barrier (refusal/timeout) */
	EXIT_PREFLIGHT = 5,	/* update preflight failed (nothing was changed) */
	EXIT_KEXEC = 6,		/* update failed after the barrier: state not saved or kexec failed */
};

/*
 * `hugelivectl check`: returns an exit code. kernel (or NULL): also judge
 * this image and the new command line newcl (the one the update would
 * pass) against what the agent preserves; a failure there is
 * EXIT_PREFLIGHT, as `update` would exit.
 */
int hl_check_run(bool json, const char *sock, bool require_hugetlb, const char *kernel, const char *newcl,
		 const char *running_kernel);

#endif
