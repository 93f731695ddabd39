/* SPDX-License-Identifier: MIT */
#include "harness.h"
#include "kimgen.h"
#include "tap.h"
#include "hugelive.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

char h_dir[64], h_luo[96], h_sock[96], h_keeper[96], h_alog[96], h_faults[96];
const char *h_bindir;
bool h_fake_hugetlb;
static pid_t fake_pid = -1;
static char kernel_path[128];

int h_init(const char *bindir, const char *tag)
{
	struct rlimit rl = { 8192, 8192 };

	h_bindir = realpath(bindir, NULL);
	if (!h_bindir)
		return -1;
	/* the fake kernel keeps every preserved file open */
	setrlimit(RLIMIT_NOFILE, &rl);
	snprintf(h_dir, sizeof(h_dir), "/tmp/hugelive-%s.XXXXXX", tag);
	if (!mkdtemp(h_dir))
		return -1;
	chmod(h_dir, 0755);
	snprintf(h_luo, sizeof(h_luo), "%s/luo.sock", h_dir);
	snprintf(h_sock, sizeof(h_sock), "%s/agent.sock", h_dir);
	snprintf(h_keeper, sizeof(h_keeper), "%s/keeper.sock", h_dir);
	snprintf(h_alog, sizeof(h_alog), "%s/agent.log", h_dir);
	snprintf(h_faults, sizeof(h_faults), "%s/faults", h_dir);
	snprintf(kernel_path, sizeof(kernel_path), "%s/bzImage", h_dir);
	/* a synthetic bzImage the agent's image preflight accepts */
	if (kimg_write(kernel_path, "gzip", kimg_all, 0) < 0)
		return -1;
	setenv("HUGELIVE_FAKE_FAULTS", h_faults, 1);
	setenv("HUGELIVE_SOCKET", h_sock, 1);
	signal(SIGPIPE, SIG_IGN);
	diag("work dir %s", h_dir);
	return 0;
}

const char *h_kernel(void)
{
	return kernel_path;
}

static pid_t spawn(char *const argv[], const char *logfile)
{
	pid_t p = fork();

	if (p == 0) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		dup2(fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	return p;
}

/* A zombie counts as gone (as PID 1 of a pid namespace we inherit orphans). */
static bool is_zombie(pid_t pid)
{
	char path[64], *st;
	bool z = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	st = hl_read_file(path, 1024, NULL);
	if (st) {
		const char *p = strrchr(st, ')');

		z = p && p[1] == ' ' && p[2] == 'Z';
		free(st);
	}
	return z;
}

bool h_wait_gone(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		waitpid(pid, NULL, WNOHANG);
		if ((kill(pid, 0) < 0 && errno == ESRCH) || is_zombie(pid))
			return true;
		usleep(10000);
	}
	return false;
}

/* Only signal a pid that still is a keeper (pids are reused). */
static void kill_keepers(void)
{
	char cmd[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "sed -n 's/.*keeper\\[\\([0-9]*\\)\\].*/\\1/p' %s 2>/dev/null | sort -u", h_alog);
	f = popen(cmd, "r");
	for (int kp; f && fscanf(f, "%d", &kp) == 1;) {
		char path[64], *cl;
		size_t n = 0;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", kp);
		cl = hl_read_file(path, 4096, &n);
		if (cl && n > 20 && memmem(cl, n, "--keeper", 9) && memmem(cl, n, h_keeper, strlen(h_keeper))) {
			kill(kp, SIGKILL);
			h_wait_gone(kp, 2000);
		}
		free(cl);
	}
	if (f)
		pclose(f);
}

void h_stop_all(void)
{
	int64_t pid = h_agent_pid();

	if (pid > 0) {
		kill((pid_t)pid, SIGTERM);
		h_wait_gone((pid_t)pid, 5000);
	}
	kill_keepers();
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
		fake_pid = -1;
	}
	unlink(h_luo);
	unlink(h_keeper);
	unlink(h_sock);
}

void h_fresh_kernel(void)
{
	char bin[256], flog[160];

	h_stop_all();
	h_set_faults(NULL);
	snprintf(bin, sizeof(bin), "%s/hugelive-fakeluo", h_bindir);
	snprintf(flog, sizeof(flog), "%s/fakeluo.log", h_dir);
	char *argv[] = { bin, "--socket", h_luo, h_fake_hugetlb ? "--hugetlb" : NULL, NULL };

	fake_pid = spawn(argv, flog);
	for (int i = 0; i < 300 && access(h_luo, F_OK); i++)
		usleep(10000);
}

int h_agent_start(const char *extra)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s/hugelived --fake-luo %s --socket %s --keeper-socket %s --fd-store keeper "
		 "--daemonize -v %s 2>>%s", h_bindir, h_luo, h_sock, h_keeper, extra ? extra : "", h_alog);
	return system(cmd);
}

struct json_object *h_status(void)
{
	hl_client *c;
	char *rep = NULL;
	struct json_object *o = NULL;

	if (hl_connect(h_sock, &c) < 0)
		return NULL;
	if (hl_call_json(c, "{\"op\":\"status\"}", -1, &rep, NULL) == 0)
		o = hl_json_parse(rep, strlen(rep));
	free(rep);
	hl_disconnect(c);
	return o;
}

int64_t h_agent_pid(void)
{
	struct json_object *s = h_status();
	int64_t pid = s ? hl_jint(s, "pid", -1) : -1;

	json_object_put(s);
	return pid;
}

bool h_kill9_agent(void)
{
	int64_t pid = h_agent_pid();

	return pid > 0 && kill((pid_t)pid, SIGKILL) == 0 && h_wait_gone((pid_t)pid, 3000);
}

const char *h_fake_dump(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char buf[65536];
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ssize_t n;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h_luo);
	buf[0] = '\0';
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && send(s, "DUMP", 4, 0) == 4) {
		n = recv(s, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
	}
	close(s);
	return buf;
}

int h_as_nobody(int (*fn)(void))
{
	pid_t p = fork();
	int st;

	if (p == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(99);
		_exit(fn());
	}
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 98;
}

int h_tool(const char *args)
{
	char cmd[2048];
	int st;

	snprintf(cmd, sizeof(cmd), "HUGELIVE_SOCKET=%s %s/hugelivectl %s >>%s/tool.log 2>&1", h_sock, h_bindir, args,
		 h_dir);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void h_set_faults(const char *content)
{
	FILE *f;

	if (!content || !*content) {
		unlink(h_faults);
		return;
	}
	f = fopen(h_faults, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

bool h_log_has(const char *ere)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "grep -qE '%s' %s", ere, h_alog);
	return system(cmd) == 0;
}

pid_t h_keeper_pid(void)
{
	char cmd[512];
	int kp = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "sed -n 's/.*keeper\\[\\([0-9]*\\)\\].*/\\1/p' %s | tail -1", h_alog);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &kp) != 1)
			kp = -1;
		pclose(f);
	}
	return kp;
}

int h_make_memfd(const char *content)
{
	int fd = memfd_create("t", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, 4096) < 0 || pwrite(fd, content, strlen(content), 0) < 0)
		return -1;
	return fd;
}

bool h_memfd_has(int fd, const char *content)
{
	char buf[256] = "";

	if (pread(fd, buf, strlen(content), 0) < 0)
		return false;
	return !memcmp(buf, content, strlen(content));
}

int h_update(const char *kernel, int timeout_ms, char *err, size_t errlen)
{
	hl_client *c;
	char req[1024];
	int rc;

	if (hl_connect(h_sock, &c) < 0)
		return -ECONNREFUSED;
	snprintf(req, sizeof(req),
		 "{\"op\":\"update\",\"kernel\":\"%s\",\"cmdline\":\"kho=on liveupdate=on\",\"timeout_ms\":%d}",
		 kernel, timeout_ms);
	rc = hl_call_json(c, req, -1, NULL, NULL);
	if (err)
		snprintf(err, errlen, "%s", hl_last_error(c));
	hl_disconnect(c);
	return rc;
}

bool h_logs_clean(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "grep -E 'AddressSanitizer|LeakSanitizer|runtime error' %s/*.log >/dev/null", h_dir);
	return system(cmd) != 0;
}

void h_cleanup(void)
{
	char cmd[128];

	if (getenv("HUGELIVE_KEEP_TEST_DIR"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h_dir);
	if (system(cmd) != 0)
		diag("could not remove %s", h_dir);
}
