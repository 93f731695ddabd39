/* SPDX-License-Identifier: MIT */
/* hugelive-vm: the QEMU process (see vmm.h). */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int verr(struct vmm *v, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int verr(struct vmm *v, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->err, sizeof(v->err), fmt, ap);
	va_end(ap);
	return rc;
}

int vmm_find_qemu(const char *prog, char *path, size_t len, char *err, size_t errlen)
{
	char cmd[PATH_MAX + 32], line[256] = "";
	int maj, min, mic, st;
	FILE *p;

	if (strchr(prog, '/')) {
		snprintf(path, len, "%s", prog);
	} else {
		const char *env = getenv("PATH");
		char *dirs = strdup(env ? env : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;

		path[0] = 0;
		for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
			snprintf(path, len, "%s/%s", d, prog);
			if (!access(path, X_OK))
				break;
			path[0] = 0;
		}
		free(dirs);
		if (!path[0]) {
			snprintf(err, errlen, "no QEMU: '%s' is not in PATH (install qemu-system-x86, or give --qemu PATH)",
				 prog);
			return -ENOENT;
		}
	}
	if (access(path, X_OK)) {
		snprintf(err, errlen, "no QEMU at %s: %s (install qemu-system-x86, or give --qemu PATH)", path,
			 strerror(errno));
		return -ENOENT;
	}
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>&1", path);
	p = popen(cmd, "r");
	if (!p || !fgets(line, sizeof(line), p))
		line[0] = 0;
	st = p ? pclose(p) : -1;
	line[strcspn(line, "\n")] = 0;
	if (st != 0 || qmp_parse_version_text(line, &maj, &min, &mic)) {
		snprintf(err, errlen, "%s is not a working QEMU: '%s --version' said \"%s\"", path, path, line);
		return -ENOEXEC;
	}
	if (maj < VM_MIN_QEMU_MAJOR) {
		snprintf(err, errlen, "%s is QEMU %d.%d.%d; keeping guest RAM out of the saved state "
			 "(x-ignore-shared) needs QEMU %d.0 or newer", path, maj, min, mic, VM_MIN_QEMU_MAJOR);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int caps_on(struct vmm *v)
{
	json_object *ret = NULL, *args, *caps, *cap;
	int rc = qmp_exec(&v->qmp, "query-migrate-capabilities", NULL, -1, &ret, 10000);

	if (rc)
		return verr(v, rc, "query-migrate-capabilities: %s", v->qmp.err);
	if (!qmp_has_capability(ret, "x-ignore-shared")) {
		json_object_put(ret);
		return verr(v, -EOPNOTSUPP, "QEMU %d.%d.%d has no x-ignore-shared migration capability: it cannot "
			    "keep guest RAM out of the saved state", v->major, v->minor, v->micro);
	}
	json_object_put(ret);
	args = json_object_new_object();
	caps = json_object_new_array();
	cap = json_object_new_object();
	json_object_object_add(cap, "capability", json_object_new_string("x-ignore-shared"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	rc = qmp_exec(&v->qmp, "migrate-set-capabilities", args, -1, NULL, 10000);
	if (rc)
		return verr(v, rc, "migrate-set-capabilities x-ignore-shared: %s", v->qmp.err);
	return 0;
}

int vmm_start(struct vmm *v, const struct vm_cfg *cfg, const char *qemu_path, int ram_fd, int con_fd,
	      bool incoming, const char *rundir)
{
	char ram[64], con[64];
	char **argv;
	int st, rc;

	v->pid = -1;
	v->qmp.fd = -1;
	snprintf(v->qmp_path, sizeof(v->qmp_path), "%s/qmp.sock", rundir);
	unlink(v->qmp_path);
	snprintf(ram, sizeof(ram), "/proc/%d/fd/%d", (int)getpid(), ram_fd);
	snprintf(con, sizeof(con), "/proc/%d/fd/%d", (int)getpid(), con_fd);
	argv = vm_qemu_argv(cfg, qemu_path, ram, con, v->qmp_path, incoming);
	if (!argv)
		return verr(v, -ENOMEM, "building QEMU's command line: out of memory");
	char *line = vm_argv_str(argv);

	printf("hugelive-vm[%s]: starting %s\n", cfg->name, line ? line : qemu_path);
	free(line);
	fflush(NULL);
	v->pid = fork();
	if (v->pid < 0) {
		vm_free_argv(argv);
		return verr(v, -errno, "fork: %s", strerror(errno));
	}
	if (v->pid == 0) {
		/* QEMU keeps its own stdout/stderr: the launcher's. */
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		fprintf(stderr, "hugelive-vm: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	vm_free_argv(argv);
	for (int i = 0; i < 3000; i++) {	/* up to 60 s (QEMU under TCG starts slowly) */
		rc = qmp_connect(&v->qmp, v->qmp_path, 20);
		if (!rc)
			break;
		if (waitpid(v->pid, &st, WNOHANG) == v->pid) {
			v->pid = -1;
			return verr(v, -ECHILD, "QEMU exited while starting (%s %d): see its messages above",
				    WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		}
	}
	if (rc) {
		verr(v, rc, "QEMU did not open its QMP socket: %s", v->qmp.err);
		vmm_kill(v);
		return rc;
	}
	v->major = v->qmp.major;
	v->minor = v->qmp.minor;
	v->micro = v->qmp.micro;
	rc = caps_on(v);
	if (rc) {
		vmm_kill(v);
		return rc;
	}
	return 0;
}

static int simple(struct vmm *v, const char *cmd)
{
	int rc = qmp_exec(&v->qmp, cmd, NULL, -1, NULL, 30000);

	return rc ? verr(v, rc, "QMP %s: %s", cmd, v->qmp.err) : 0;
}

int vmm_stop_guest(struct vmm *v)
{
	return simple(v, "stop");
}

int vmm_cont(struct vmm *v)
{
	return simple(v, "cont");
}

int vmm_runstate(struct vmm *v, char *st, size_t len)
{
	json_object *ret = NULL, *s;
	int rc = qmp_exec(&v->qmp, "query-status", NULL, -1, &ret, 10000);

	if (rc)
		return verr(v, rc, "QMP query-status: %s", v->qmp.err);
	snprintf(st, len, "%s", json_object_object_get_ex(ret, "status", &s) ? json_object_get_string(s) : "?");
	json_object_put(ret);
	return 0;
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hand fd to QEMU as "hlvm-state", then run cmd(uri=fd:hlvm-state) and wait for the end. */
static int migrate(struct vmm *v, const char *cmd, int fd, int timeout_ms)
{
	json_object *args = json_object_new_object(), *ret = NULL;
	long long end = ms_now() + timeout_ms;
	char status[64], desc[512];
	int rc;

	json_object_object_add(args, "fdname", json_object_new_string("hlvm-state"));
	rc = qmp_exec(&v->qmp, "getfd", args, fd, NULL, 10000);
	if (rc)
		return verr(v, rc, "QMP getfd (passing the state memfd): %s", v->qmp.err);
	args = json_object_new_object();
	json_object_object_add(args, "uri", json_object_new_string("fd:hlvm-state"));
	rc = qmp_exec(&v->qmp, cmd, args, -1, NULL, 30000);
	if (rc)
		return verr(v, rc, "QMP %s fd:hlvm-state: %s", cmd, v->qmp.err);
	for (;;) {
		rc = qmp_exec(&v->qmp, "query-migrate", NULL, -1, &ret, 10000);
		if (rc)
			return verr(v, rc, "QMP query-migrate: %s", v->qmp.err);
		rc = qmp_migrate_status(ret, status, sizeof(status), desc, sizeof(desc));
		json_object_put(ret);
		if (rc)
			return verr(v, -EPROTO, "QMP query-migrate: unexpected reply");
		if (!strcmp(status, "completed"))
			return 0;
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled"))
			return verr(v, -EIO, "%s %s: %s", cmd, status, desc[0] ? desc : "(no reason given)");
		if (ms_now() > end)
			return verr(v, -ETIMEDOUT, "%s still '%s' after %d ms", cmd, status, timeout_ms);
		usleep(20000);
	}
}

int vmm_save(struct vmm *v, int state_fd, int timeout_ms)
{
	if (ftruncate(state_fd, 0) || lseek(state_fd, 0, SEEK_SET))
		return verr(v, -errno, "state memfd: %s", strerror(errno));
	return migrate(v, "migrate", state_fd, timeout_ms);
}

int vmm_load(struct vmm *v, int state_fd, int timeout_ms)
{
	if (lseek(state_fd, 0, SEEK_SET))
		return verr(v, -errno, "state memfd: %s", strerror(errno));
	return migrate(v, "migrate-incoming", state_fd, timeout_ms);
}

bool vmm_exited(struct vmm *v, int *status)
{
	int st;

	if (v->pid <= 0)
		return true;
	if (waitpid(v->pid, &st, WNOHANG) != v->pid)
		return false;
	if (status)
		*status = st;
	v->pid = -1;
	qmp_close(&v->qmp);
	return true;
}

void vmm_kill(struct vmm *v)
{
	if (v->pid > 0 && v->qmp.fd >= 0)
		qmp_exec(&v->qmp, "quit", NULL, -1, NULL, 2000);
	qmp_close(&v->qmp);
	if (v->pid <= 0)
		return;
	for (int i = 0; i < 100; i++) {
		if (waitpid(v->pid, NULL, WNOHANG) == v->pid) {
			v->pid = -1;
			return;
		}
		if (i == 50)
			kill(v->pid, SIGTERM);
		usleep(20000);
	}
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	v->pid = -1;
}
