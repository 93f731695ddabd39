/* SPDX-License-Identifier: MIT */
/* The kexec path: see shutdown.h. */
#include "shutdown.h"
#include "log.h"
#include "../common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static const char *const via_names[] = {
	[KEXEC_VIA_AUTO] = "auto", [KEXEC_VIA_DIRECT] = "direct", [KEXEC_VIA_SYSTEMD] = "systemd",
};

int kexec_via_parse(const char *s, enum kexec_via *out)
{
	for (size_t i = 0; i < sizeof(via_names) / sizeof(via_names[0]); i++)
		if (s && !strcmp(s, via_names[i])) {
			*out = (enum kexec_via)i;
			return 0;
		}
	return -EINVAL;
}

const char *kexec_via_name(enum kexec_via v)
{
	return (unsigned)v < sizeof(via_names) / sizeof(via_names[0]) ? via_names[v] : "?";
}

enum kexec_via kexec_via_decide(enum kexec_via opt, int sd_booted, bool in_unit)
{
	if (sd_booted <= 0)
		return KEXEC_VIA_DIRECT;
	if (opt == KEXEC_VIA_AUTO)
		return in_unit ? KEXEC_VIA_SYSTEMD : KEXEC_VIA_DIRECT;
	return opt;
}

/* File systems that keep nothing on a device, or that the agent still needs. */
static bool virtual_fs(const char *t)
{
	static const char *const v[] = {
		"proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "ramfs", "rootfs", "hugetlbfs",
		"cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "mqueue",
		"configfs", "fusectl", "efivarfs", "autofs", "binfmt_misc", "nsfs", "selinuxfs",
		"rpc_pipefs", "nfsd",
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(t, v[i]))
			return true;
	return false;
}

/* mountinfo escapes blanks, tabs, newlines and backslashes as \ooo */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

size_t shutdown_plan(const char *mountinfo, struct mnt_step *steps, size_t max)
{
	char *copy = strdup(mountinfo ? mountinfo : ""), *save = NULL;
	struct mnt_step root = { .target = "" };
	size_t n = 0;

	if (!copy)
		return 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char target[1024], fstype[64];
		const char *sep = strstr(l, " - ");

		/* id parent major:minor root TARGET options [optional...] - FSTYPE source super */
		if (!sep || sscanf(l, "%*s %*s %*s %*s %1023s", target) != 1 || sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		unescape(target);
		if (virtual_fs(fstype) || strlen(target) >= sizeof(steps[0].target) ||
		    strlen(fstype) >= sizeof(steps[0].fstype))
			continue;
		if (!strcmp(target, "/")) {
			strcpy(root.target, "/");
			memcpy(root.fstype, fstype, strlen(fstype) + 1);
			root.action = MNT_REMOUNT_RO;
			continue;
		}
		if (n + 1 >= max) /* the last slot is the root's */
			continue;
		/* mounts appear parents first: insert at the front to reverse */
		memmove(&steps[1], &steps[0], n * sizeof(steps[0]));
		memset(&steps[0], 0, sizeof(steps[0]));
		/* lengths checked above */
		memcpy(steps[0].target, target, strlen(target) + 1);
		memcpy(steps[0].fstype, fstype, strlen(fstype) + 1);
		steps[0].action = MNT_UMOUNT;
		n++;
	}
	free(copy);
	if (root.target[0] && n < max)
		steps[n++] = root;
	return n;
}

int shutdown_prepare(void)
{
	static struct mnt_step steps[256];
	char *mi = hl_read_file("/proc/self/mountinfo", 1 << 20, NULL);
	size_t n = shutdown_plan(mi, steps, sizeof(steps) / sizeof(steps[0]));
	int done = 0;

	free(mi);
	sync();
	for (size_t i = 0; i < n; i++) {
		struct mnt_step *s = &steps[i];

		if (s->action == MNT_UMOUNT && umount2(s->target, 0) == 0) {
			LOGI("direct kexec: unmounted %s (%s)", s->target, s->fstype);
			done++;
			continue;
		}
		if (mount(NULL, s->target, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0) {
			LOGI("direct kexec: remounted %s (%s) read-only", s->target, s->fstype);
			done++;
			continue;
		}
		LOGE("direct kexec: %s (%s) stays mounted read-write: %s", s->target, s->fstype, strerror(errno));
	}
	sync();
	LOGI("direct kexec: synced; %d of %zu disk file system(s) unmounted or read-only", done, n);
	return done;
}

int systemd_kexec(char *why, size_t len)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	int rc;

	/* PID 1's own socket first (root, no dbus-daemon needed), as systemctl does */
	rc = sd_bus_new(&bus);
	if (rc >= 0)
		rc = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
	if (rc >= 0)
		rc = sd_bus_start(bus);
	if (rc < 0) {
		sd_bus_unref(bus);
		bus = NULL;
		rc = sd_bus_open_system(&bus);
	}
	if (rc < 0) {
		snprintf(why, len, "cannot connect to systemd: %s", strerror(-rc));
		sd_bus_unref(bus);
		return rc;
	}
	rc = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				"org.freedesktop.systemd1.Manager", "StartUnit", &err, NULL, "ss",
				"kexec.target", "replace-irreversibly");
	if (rc < 0)
		snprintf(why, len, "StartUnit kexec.target: %s", err.message ? err.message : strerror(-rc));
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(bus);
	return rc < 0 ? rc : 0;
}
