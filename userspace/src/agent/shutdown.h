/* SPDX-License-Identifier: MIT */
/*
 * How the kexec happens once the barrier is through (issue 9 item 12).
 *
 * Under systemd the agent does not reboot itself: it asks PID 1 to start
 * kexec.target ("systemctl kexec"), so every service gets its stop and
 * file systems are unmounted, and it stays alive with its session fds
 * until systemd-shutdown executes the loaded image (the unit keeps it out
 * of the shutdown transaction and out of the final kill; see
 * docs/design.md). Without systemd it keeps the direct path, but first
 * syncs and unmounts, or remounts read-only, every disk file system it
 * can, deepest first, the root last.
 */
#ifndef HL_AGENT_SHUTDOWN_H
#define HL_AGENT_SHUTDOWN_H

#include <stdbool.h>
#include <stddef.h>

enum kexec_via { KEXEC_VIA_AUTO, KEXEC_VIA_DIRECT, KEXEC_VIA_SYSTEMD };

int kexec_via_parse(const char *s, enum kexec_via *out);	/* 0 or -EINVAL */
const char *kexec_via_name(enum kexec_via v);
/*
 * auto: systemd when systemd is the init (sd_booted() > 0) and it started
 * us as a unit ($INVOCATION_ID set); direct otherwise. An explicit choice
 * stands, except that systemd without a booted systemd is direct.
 */
enum kexec_via kexec_via_decide(enum kexec_via opt, int sd_booted, bool in_unit);

enum mnt_action { MNT_UMOUNT, MNT_REMOUNT_RO };

struct mnt_step {
	char target[256];
	char fstype[32];
	enum mnt_action action;	/* umount, falling back to a read-only remount */
};

/*
 * The direct path's plan from /proc/self/mountinfo text: every mount
 * whose file system keeps data on a device (not proc, sysfs, tmpfs,
 * hugetlbfs, cgroup, ... which lose nothing and which the agent and its
 * memfds still use), in reverse mount order (children before their
 * parents); "/" last, remounted read-only. Returns the number of steps
 * (at most max; the last slot is kept for the root).
 */
size_t shutdown_plan(const char *mountinfo, struct mnt_step *steps, size_t max);

/*
 * Direct path: sync(), then each step of the plan for this process
 * (umount2(), on failure a read-only remount; failures are logged and
 * skipped), then sync() again. Returns the number of file systems that
 * are now unmounted or read-only.
 */
int shutdown_prepare(void);

/*
 * Systemd path: StartUnit("kexec.target", "replace-irreversibly") on
 * PID 1's private bus (the system bus as fallback), as `systemctl kexec`
 * does when an image is already loaded. Returns 0 or -errno, why filled.
 */
int systemd_kexec(char *why, size_t len);

#endif
