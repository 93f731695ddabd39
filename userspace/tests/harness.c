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
	struct rlimit rl;

	h_bindir = realpath(bindir, NULL);
	if (!h_bindir)
		return -1;
	/*
	 * The fake kernel keeps every preserved file open: at least 8192 fds.
	 * Only ever raise: a lowered hard limit cannot be raised again without
	 * CAP_SYS_RESOURCE, and test_agent checks that the agent raises its own
	 * soft limit to >= 16384 from the hard limit it inherits.
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
		rl.rlim_cur = 8192;
		if (rl.rlim_max < 8192)
			rl.rlim_max = 8192;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
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

int h_main_init(int argc, char **argv, const char *name, const char *tag)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s BINDIR\n", name);
		return 2;
	}
	if (getuid() != 0) {
		printf("1..0 # SKIP needs root (setuid children)\n0 passed, 0 failed\n");
		return 0;
	}
	return h_init(argv[1], tag) < 0 ? 1 : -1;
}

bool h_finish(void)
{
	h_stop_all();
	usleep(100000);
	return h_logs_clean();
}

int h_exit(int tap_rc)
{
	if (!tap_rc)
		h_cleanup();
	return tap_rc;
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

int h_safe_kill(pid_t pid, int sig)
{
	if (pid <= 1) {
		errno = ESRCH;
		return -1;
	}
	return kill(pid, sig);
}

/* pid <= 1 is never "gone": it names no process this harness started. */
bool h_wait_gone(pid_t pid, int ms)
{
	if (pid <= 1)
		return false;
	for (int i = 0; i < ms / 10; i++) {
		waitpid(pid, NULL, WNOHANG);
		if ((h_safe_kill(pid, 0) < 0 && errno == ESRCH) || is_zombie(pid))
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * Every pid the agent log names as "TAG[PID]" whose command line still has
 * NEEDLE followed by ARG (pids are reused): this test dir's agents
 * (hugelived[PID] ... --socket h_sock) or their fd keepers (keeper[PID] ...
 * --keeper-socket h_keeper).
 */
static int logged_pids(const char *tag, const char *needle, const char *arg, pid_t *out, int max)
{
	char cmd[512], want[256];
	int n = 0, wl;
	FILE *f;

	/* "--socket\0/tmp/x/agent.sock\0" as it sits in /proc/PID/cmdline */
	wl = snprintf(want, sizeof(want), "%s%c%s", needle, '\0', arg) + 1;
	snprintf(cmd, sizeof(cmd), "sed -n 's/.*%s\\[\\([0-9]*\\)\\].*/\\1/p' %s 2>/dev/null | sort -u", tag, h_alog);
	f = popen(cmd, "r");
	for (int p; f && n < max && fscanf(f, "%d", &p) == 1;) {
		char path[64], *cl;
		size_t len = 0;

		snprintf(path, sizeof(path), "/proc/%d/cmdline", p);
		cl = hl_read_file(path, 4096, &len);
		if (cl && p > 1 && p != getpid() && !is_zombie(p) && memmem(cl, len, want, (size_t)wl))
			out[n++] = p;
		free(cl);
	}
	if (f)
		pclose(f);
	return n;
}

/*
 * Stop them: SIG, then SIGKILL after ms. An agent left alive here would
 * re-create the keeper killed next, fill it with its device connection to
 * the fake kernel about to be killed, and the next agent would take that
 * dead connection from the keeper (EPIPE on everything it asks the device).
 */
static void stop_logged(const char *tag, const char *needle, const char *arg, int sig, int ms)
{
	pid_t pids[64];
	int n = logged_pids(tag, needle, arg, pids, 64);

	for (int i = 0; i < n; i++) {
		h_safe_kill(pids[i], sig);
		if (!h_wait_gone(pids[i], ms) && sig != SIGKILL) {
			printf("# %s[%d] still there %d ms after signal %d: SIGKILL\n", tag, (int)pids[i], ms, sig);
			fflush(stdout);
			h_safe_kill(pids[i], SIGKILL);
			h_wait_gone(pids[i], 5000);
		}
	}
}

void h_stop_all(void)
{
	/*
	 * Every agent of this dir, found by its log line and command line, not
	 * by a status call: a slow agent that does not answer must stop too.
	 */
	stop_logged("hugelived", "--socket", h_sock, SIGTERM, 15000);
	stop_logged("keeper", "--keeper-socket", h_keeper, SIGKILL, 2000);
	if (fake_pid > 1) {
		h_safe_kill(fake_pid, SIGTERM);
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

/* A failed start or stop shows the end of the agent's log as TAP comments. */
static void agent_log_tail(const char *why)
{
	char cmd[256];

	printf("# %s; last lines of %s:\n", why, h_alog);
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "tail -n 15 %s | sed 's/^/#   /'", h_alog);
	if (system(cmd) != 0)
		printf("#   (no log)\n");
	fflush(stdout);
}

int h_agent_start_pre(const char *pre, const char *extra)
{
	char cmd[1024];
	int rc;

	snprintf(cmd, sizeof(cmd), "%s %s/hugelived --fake-luo %s --socket %s --keeper-socket %s --fd-store keeper "
		 "--daemonize -v %s 2>>%s", pre ? pre : "", h_bindir, h_luo, h_sock, h_keeper, extra ? extra : "",
		 h_alog);
	rc = system(cmd);
	if (rc != 0) {
		char why[64];

		snprintf(why, sizeof(why), "agent start failed (status 0x%x)", (unsigned int)rc);
		agent_log_tail(why);
	}
	return rc;
}

int h_agent_start(const char *extra)
{
	return h_agent_start_pre(NULL, extra);
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

	return h_safe_kill((pid_t)pid, SIGKILL) == 0 && h_wait_gone((pid_t)pid, 3000);
}

bool h_stop_agent(void)
{
	int64_t pid = -1;

	for (int i = 0; i < 20 && pid <= 1; i++) {
		pid = h_agent_pid();
		if (pid <= 1)
			usleep(100 * 1000);
	}
	if (pid <= 1) {
		agent_log_tail("h_stop_agent: no agent answers status");
		return false;
	}
	/* generous: a loaded CI machine (writeback after a kernel unpack) is slow */
	if (h_safe_kill((pid_t)pid, SIGTERM) < 0 || !h_wait_gone((pid_t)pid, 15000)) {
		agent_log_tail("h_stop_agent: the agent did not exit within 15 s of SIGTERM");
		return false;
	}
	return true;
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

int h_become(uid_t uid)
{
	return setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0 ? -1 : 0;
}

int h_as_uid(uid_t uid, int (*fn)(void))
{
	pid_t p = fork();
	int st;

	if (p == 0) {
		if (h_become(uid) < 0)
			_exit(99);
		_exit(fn());
	}
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 98;
}

int h_as_nobody(int (*fn)(void))
{
	return h_as_uid(NOBODY, fn);
}

int h_raw_connect(int flags)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
	struct timeval tv = { .tv_sec = 5 };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", h_sock);
	if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(s);
		return -1;
	}
	if (s >= 0)
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return s;
}

ssize_t h_send_two_fds(int s, const char *m, size_t len, const int fds[2], int flags)
{
	struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
	union {
		char b[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr a;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, 2 * sizeof(int));
	return sendmsg(s, &mh, flags);
}

int h_raw_reply_msg(int s, char *msg, size_t len)
{
	char buf[4096];
	int fd, code;
	bool tr;
	ssize_t n = hl_recv_packet(s, buf, sizeof(buf) - 1, &fd, NULL, &tr, false);
	struct json_object *o, *e;

	if (msg)
		msg[0] = '\0';
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	o = hl_json_parse(buf, (size_t)n);
	if (!o)
		return -2;
	code = hl_jbool(o, "ok", false) ? 0 :
	       json_object_object_get_ex(o, "error", &e) ? (int)hl_jint(e, "code", -3) : -3;
	if (msg && code > 0 && json_object_object_get_ex(o, "error", &e))
		snprintf(msg, len, "%s", hl_jstr(e, "message") ? hl_jstr(e, "message") : "");
	json_object_put(o);
	return code;
}

int h_raw_reply(int s)
{
	return h_raw_reply_msg(s, NULL, 0);
}

bool h_is_eof(int s)
{
	char b[16];

	return recv(s, b, sizeof(b), 0) == 0;
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
