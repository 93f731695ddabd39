/* SPDX-License-Identifier: MIT */
#include "kcheck.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/liveupdate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <ctype.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif

int hl_kconfig_file(const char *path, const char *sym)
{
	char line[512], want[160], unset[180];
	int res = 'n', err = Z_OK;
	gzFile f = gzopen(path, "rb");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "CONFIG_%s=", sym);
	snprintf(unset, sizeof(unset), "# CONFIG_%s is not set", sym);
	while (gzgets(f, line, sizeof(line))) {
		if (!strncmp(line, want, strlen(want))) {
			char v = line[strlen(want)];

			res = (v == 'y' || v == 'm') ? v : 'y';
			break;
		}
		if (!strncmp(line, unset, strlen(unset))) {
			res = 'n';
			break;
		}
	}
	if (res == 'n')
		gzerror(f, &err); /* a read error is not "not set" */
	gzclose(f);
	return err == Z_OK || err == Z_STREAM_END ? res : -1;
}

int hl_kconfig(const char *sym)
{
	struct utsname u;
	char path[300];
	int res = hl_kconfig_file("/proc/config.gz", sym);

	if (res >= 0)
		return res;
	if (uname(&u) == 0) {
		snprintf(path, sizeof(path), "/boot/config-%s", u.release);
		res = hl_kconfig_file(path, sym);
		if (res >= 0)
			return res;
	}
	return 0;
}

char *hl_cmdline_param(const char *cmdline, const char *key)
{
	size_t kl = strlen(key);
	const char *p = cmdline;
	char *val = NULL;

	if (!cmdline)
		return NULL;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		const char *e = p;

		while (*e && *e != ' ' && *e != '\t' && *e != '\n')
			e++;
		if ((size_t)(e - p) >= kl && !strncmp(p, key, kl) &&
		    (p + kl == e || p[kl] == '=')) {
			free(val);
			val = p + kl == e ? strdup("") : strndup(p + kl + 1, (size_t)(e - p - kl - 1));
		}
		p = e;
	}
	return val;
}

bool hl_param_on(const char *cmdline, const char *key)
{
	char *v = hl_cmdline_param(cmdline, key);
	bool on = v && (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "y") ||
			!strcmp(v, "yes") || !strcmp(v, "true"));

	free(v);
	return on;
}

int hl_probe_verdict(int rc, int err)
{
	if (rc == 0)
		return 1;
	/* no handler takes the file, or it refuses hugetlb: a clear no */
	if (err == ENOENT || err == EOPNOTSUPP)
		return 0;
	return -1; /* EBUSY, ENOMEM, EPERM, ...: says nothing about support */
}

static int probe_dev(int dev_fd)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_preserve_fd pf = { .size = sizeof(pf) };
	int mfd, rc;

	mfd = memfd_create("hugelive-probe", MFD_HUGETLB | MFD_CLOEXEC);
	if (mfd < 0)
		return errno == EINVAL || errno == ENOENT || errno == ENOSYS ? 0 : -1; /* no hugetlbfs / unknown */
	snprintf((char *)cs.name, sizeof(cs.name), "hugelived-probe-%d", (int)getpid());
	if (ioctl(dev_fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs) < 0) {
		close(mfd);
		return -1;
	}
	pf.fd = mfd;
	pf.token = 0;
	rc = hl_probe_verdict(ioctl(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf), errno);
	close(cs.fd); /* closing the outgoing session unpreserves the probe */
	close(mfd);
	return rc;
}

int hl_hugetlb_support(int dev_fd, const char **how)
{
	const char *env = getenv("HUGELIVE_HUGETLB_SUPPORT");
	int c;

	if (env && (!strcmp(env, "0") || !strcmp(env, "1"))) {
		*how = "HUGELIVE_HUGETLB_SUPPORT";
		return *env == '1';
	}
	if (dev_fd >= 0) {
		int r = probe_dev(dev_fd);

		if (r >= 0) {
			*how = r ? "probe: an MFD_HUGETLB memfd was accepted"
				 : "probe: no LUO handler accepts MFD_HUGETLB memfds (ENOENT/EOPNOTSUPP)";
			return r;
		}
		/* an unclear probe falls through to the kernel config */
	}
	c = hl_kconfig("LIVEUPDATE_HUGETLB");
	if (c) {
		*how = c == 'n' ? "kernel config: CONFIG_LIVEUPDATE_HUGETLB not set"
				: "kernel config: CONFIG_LIVEUPDATE_HUGETLB enabled";
		return c == 'n' ? 0 : 1;
	}
	*how = "unknown: no kernel config and no device to probe";
	return -1;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode))
		return (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) && a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Does process pid hold an fd of the file st? */
static bool pid_holds(const char *pid, const struct stat *st)
{
	char dir[300], fdp[600];
	struct dirent *e;
	struct stat fst;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(fdp, sizeof(fdp), "%s/%s", dir, e->d_name);
		/* stat follows the magic link to the open file itself */
		found = stat(fdp, &fst) == 0 && same_file(st, &fst);
	}
	closedir(d);
	return found;
}

int hl_dev_holders(const char *path, char *out, size_t len, bool *systemd)
{
	struct dirent *e;
	struct stat st;
	size_t off = 0;
	int n = 0;
	DIR *proc;

	if (len)
		out[0] = '\0';
	if (systemd)
		*systemd = false;
	if (stat(path, &st) < 0)
		return -errno;
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((e = readdir(proc))) {
		char comm[64] = "?", cpath[300];
		FILE *f;

		if (!isdigit((unsigned char)e->d_name[0]) || atoi(e->d_name) == getpid())
			continue;
		if (!pid_holds(e->d_name, &st))
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%s/comm", e->d_name);
		f = fopen(cpath, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		if (systemd && (!strcmp(e->d_name, "1") || !strcmp(comm, "systemd")))
			*systemd = true;
		if (off < len)
			off += (size_t)snprintf(out + off, len - off, "%spid %s (%s)", n ? ", " : "", e->d_name, comm);
		n++;
	}
	closedir(proc);
	return n;
}
