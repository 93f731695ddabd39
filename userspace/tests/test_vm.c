/* SPDX-License-Identifier: MIT */
/*
 * Host tests of hugelive-vm's logic that needs no VM: QMP message parsing
 * and a QMP conversation with a scripted fake QEMU on a unix socket (greeting,
 * events in between, error replies, an fd passed with getfd), the
 * configuration checks and their messages, QEMU's command line, the
 * manifest, the checks of the guest RAM fd and of the QEMU program.
 * With BINDIR (where hugelive-vm is): the launcher's own refusals of bad
 * input, which come before it talks to the agent or starts anything.
 * Usage: test_vm [BINDIR]
 */
#include "tap.h"
#include "vm/qmp.h"
#include "vm/vmcfg.h"
#include "vm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

static json_object *parse(const char *s)
{
	return json_tokener_parse(s);
}

static void test_parsing(void)
{
	char err[256] = "", st[32], desc[128];
	int a, b, c;
	json_object *o;

	o = parse("{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_GREETING, "greeting classified");
	ok(!qmp_greeting_version(o, &a, &b, &c) && a == 7 && b == 2 && c == 22, "greeting version 7.2.22");
	json_object_put(o);
	o = parse("{\"QMP\": {\"version\": {}}}");
	ok(qmp_greeting_version(o, &a, &b, &c) == -EINVAL, "greeting without a version: EINVAL");
	json_object_put(o);
	o = parse("{\"return\": {}}");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_RETURN, "return classified");
	json_object_put(o);
	o = parse("{\"error\": {\"class\": \"GenericError\", \"desc\": \"Migration is disabled when VirtFS export path '/' is mounted\"}}");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_ERROR && !strcmp(err, "GenericError: Migration is disabled when VirtFS export path '/' is mounted"),
	   "error classified, message \"class: desc\" (%s)", err);
	json_object_put(o);
	o = parse("{\"error\": {}}");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_ERROR && !strcmp(err, "error: (no description)"),
	   "error without class/desc still named (%s)", err);
	json_object_put(o);
	o = parse("{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_EVENT, "event classified");
	json_object_put(o);
	o = parse("[1, 2]");
	ok(qmp_classify(o, err, sizeof(err)) == QMP_INVALID, "array: invalid");
	json_object_put(o);
	ok(qmp_classify(NULL, err, sizeof(err)) == QMP_INVALID, "NULL: invalid");

	ok(!qmp_parse_version_text("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", &a, &b, &c) &&
	   a == 7 && b == 2 && c == 22, "--version text 7.2.22");
	ok(!qmp_parse_version_text("QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)", &a, &b, &c) &&
	   a == 11 && b == 1 && c == 3, "--version text 11.1.3");
	ok(!qmp_parse_version_text("QEMU emulator version 10.0", &a, &b, &c) && a == 10 && b == 0 && c == 0,
	   "--version text without micro");
	ok(qmp_parse_version_text("qemu: command not found", &a, &b, &c) == -EINVAL, "not a version: EINVAL");
	ok(qmp_parse_version_text("QEMU emulator version x.y", &a, &b, &c) == -EINVAL, "garbage version: EINVAL");

	o = parse("{\"status\": \"completed\", \"total-time\": 12}");
	ok(!qmp_migrate_status(o, st, sizeof(st), desc, sizeof(desc)) && !strcmp(st, "completed") && !desc[0],
	   "query-migrate completed");
	json_object_put(o);
	o = parse("{\"status\": \"failed\", \"error-desc\": \"Unable to write to file: No space left on device\"}");
	ok(!qmp_migrate_status(o, st, sizeof(st), desc, sizeof(desc)) && !strcmp(st, "failed") &&
	   strstr(desc, "No space"), "query-migrate failed with its error-desc");
	json_object_put(o);
	o = parse("{}");
	ok(!qmp_migrate_status(o, st, sizeof(st), desc, sizeof(desc)) && !strcmp(st, "none"),
	   "query-migrate before any migration: none");
	json_object_put(o);
	ok(qmp_migrate_status(NULL, st, sizeof(st), desc, sizeof(desc)) == -EINVAL, "query-migrate NULL: EINVAL");

	o = parse("[{\"state\": false, \"capability\": \"xbzrle\"}, {\"state\": false, \"capability\": \"x-ignore-shared\"}]");
	ok(qmp_has_capability(o, "x-ignore-shared") && !qmp_has_capability(o, "cpr-exec"),
	   "capability list: x-ignore-shared found, an absent one not");
	json_object_put(o);
	o = parse("{}");
	ok(!qmp_has_capability(o, "x-ignore-shared"), "capability list not an array: not found");
	json_object_put(o);

	char buf[256];
	size_t len;
	bool complete;

	strcpy(buf, "{\"return\": {}}\r\n{\"event\": \"RESU");
	len = strlen(buf);
	o = qmp_take_line(buf, &len, &complete);
	ok(o && complete && qmp_classify(o, NULL, 0) == QMP_RETURN, "take_line: first line (CRLF) parsed");
	json_object_put(o);
	o = qmp_take_line(buf, &len, &complete);
	ok(!o && !complete && len == strlen("{\"event\": \"RESU"), "take_line: partial line left in place");
	strcpy(buf, "not json\n{}\n");
	len = strlen(buf);
	o = qmp_take_line(buf, &len, &complete);
	ok(!o && complete && len == 3, "take_line: a line that is not JSON is consumed and reported");
}

/* ---- a fake QEMU's QMP socket ------------------------------------------ */

struct fake {
	int lfd;
	char path[108];
	int got_fd;		/* an fd received with getfd */
	char cmds[1024];	/* commands seen, in order */
};

static void sendl(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0 || write(fd, "\r\n", 2) < 0)
		return;
}

static void *fake_qemu(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->lfd, NULL, NULL);
	char buf[4096];
	size_t len = 0;

	if (c < 0)
		return NULL;
	sendl(c, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}");
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct iovec iov = { buf + len, sizeof(buf) - len - 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
		ssize_t n = recvmsg(c, &m, 0);
		char *nl;

		if (n <= 0)
			break;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
			if (h->cmsg_type == SCM_RIGHTS)
				memcpy(&f->got_fd, CMSG_DATA(h), sizeof(int));
		len += (size_t)n;
		buf[len] = 0;
		while ((nl = strchr(buf, '\n'))) {
			*nl = 0;
			json_object *o = json_tokener_parse(buf), *e;
			const char *cmd = o && json_object_object_get_ex(o, "execute", &e) ? json_object_get_string(e) : "?";

			strncat(f->cmds, cmd, sizeof(f->cmds) - strlen(f->cmds) - 2);
			strcat(f->cmds, " ");
			if (!strcmp(cmd, "stop")) {
				sendl(c, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 0}, \"event\": \"STOP\"}");
				sendl(c, "{\"return\": {}}");
			} else if (!strcmp(cmd, "migrate")) {
				sendl(c, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"There's a migration process in progress\"}}");
			} else if (!strcmp(cmd, "query-migrate-capabilities")) {
				sendl(c, "{\"return\": [{\"state\": false, \"capability\": \"x-ignore-shared\"}]}");
			} else {
				sendl(c, "{\"return\": {}}");
			}
			json_object_put(o);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
	close(c);
	return NULL;
}

static int events_seen;
static void on_event(const char *name, json_object *data, void *arg)
{
	(void)data;
	(void)arg;
	if (!strcmp(name, "STOP"))
		events_seen++;
}

static void test_conversation(void)
{
	struct fake f = { .got_fd = -1 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct qmp q = { .fd = -1, .on_event = on_event };
	pthread_t th;
	json_object *ret = NULL, *args;
	int rc, p[2];

	snprintf(f.path, sizeof(f.path), "/tmp/test_vm.%d.sock", (int)getpid());
	unlink(f.path);
	strcpy(a.sun_path, f.path);
	f.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&a, sizeof(a)) || listen(f.lfd, 1)) {
		ok(0, "fake QMP socket: %s", strerror(errno));
		return;
	}
	pthread_create(&th, NULL, fake_qemu, &f);
	rc = qmp_connect(&q, f.path, 2000);
	ok(!rc && q.major == 7 && q.minor == 2 && q.micro == 22, "qmp_connect: greeting read (7.2.22), capabilities negotiated (%s)", q.err);
	rc = qmp_exec(&q, "stop", NULL, -1, NULL, 2000);
	ok(!rc && events_seen == 1, "stop: the STOP event before the reply went to the callback");
	rc = qmp_exec(&q, "query-migrate-capabilities", NULL, -1, &ret, 2000);
	ok(!rc && qmp_has_capability(ret, "x-ignore-shared"), "query-migrate-capabilities: reply returned");
	json_object_put(ret);
	rc = qmp_exec(&q, "migrate", NULL, -1, NULL, 2000);
	ok(rc == -EIO && !strcmp(q.err, "GenericError: There's a migration process in progress"),
	   "an error reply: -EIO and the message (%s)", q.err);
	if (pipe(p) == 0) {
		args = json_object_new_object();
		json_object_object_add(args, "fdname", json_object_new_string("hlvm-state"));
		rc = qmp_exec(&q, "getfd", args, p[1], NULL, 2000);
		ok(!rc && f.got_fd >= 0, "getfd: the fd arrived with the command");
		if (f.got_fd >= 0)
			close(f.got_fd);
		close(p[0]);
		close(p[1]);
	}
	ok(!strcmp(f.cmds, "qmp_capabilities stop query-migrate-capabilities migrate getfd "),
	   "commands in order: %s", f.cmds);
	qmp_close(&q);
	pthread_join(th, NULL);
	close(f.lfd);
	rc = qmp_connect(&q, f.path, 100);
	ok(rc == -ECONNREFUSED && strstr(q.err, "cannot connect"), "QEMU gone (socket file left): refused after the retries (%s)",
	   q.err);
	unlink(f.path);
	rc = qmp_connect(&q, "/nonexistent/qmp.sock", 50);
	ok(rc == -ENOENT, "no socket: ENOENT (%s)", q.err);
}

static void test_cfg(void)
{
	struct vm_cfg c;
	char err[512];
	uint64_t v;

	ok(!vm_parse_size("512M", &v) && v == 512ULL << 20, "size 512M");
	ok(!vm_parse_size("1G", &v) && v == 1ULL << 30, "size 1G");
	ok(!vm_parse_size("2MiB", &v) && v == 2ULL << 20, "size 2MiB");
	ok(!vm_parse_size("4096", &v) && v == 4096, "size 4096");
	ok(vm_parse_size("-1G", &v) == -EINVAL && vm_parse_size("12X", &v) == -EINVAL && vm_parse_size("", &v) == -EINVAL &&
	   vm_parse_size("1Gxyz", &v) == -EINVAL, "bad sizes: EINVAL");
	ok(vm_parse_size("99999999999999999999", &v) == -ERANGE && vm_parse_size("99999999999G", &v) == -ERANGE,
	   "huge sizes: ERANGE");

	vm_cfg_defaults(&c);
	ok(vm_cfg_check(&c, err, sizeof(err)) == -EINVAL && strstr(err, "--kernel"), "no kernel: %s", err);
	strcpy(c.kernel, "/boot/bzImage");
	ok(!vm_cfg_check(&c, err, sizeof(err)), "defaults + kernel pass");
	c.mem = 513ULL << 20;
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "not a multiple of the 2 MiB"), "513 MiB: %s", err);
	c.mem = 1ULL << 30;
	c.page = 1ULL << 30;
	ok(!vm_cfg_check(&c, err, sizeof(err)), "1 GiB in 1 GiB pages passes");
	c.mem = 1536ULL << 20;
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "1 GiB page"), "1.5 GiB in 1 GiB pages: %s", err);
	c.page = 4096;
	c.mem = 512ULL << 20;
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "2 MiB or 1 GiB"), "4 KiB pages: %s", err);
	c.page = 2ULL << 20;
	strcpy(c.name, "my vm");
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "' '"), "name with a blank: %s", err);
	strcpy(c.name, "-x");
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "not starting"), "name starting with '-': %s", err);
	memset(c.name, 'a', VM_NAME_MAX);
	c.name[VM_NAME_MAX] = 0;
	ok(!vm_cfg_check(&c, err, sizeof(err)), "a name of %d characters passes", VM_NAME_MAX);
	strcpy(c.name, "guest-1");
	strcpy(c.accel, "hvf");
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "kvm or tcg"), "accel hvf: %s", err);
	strcpy(c.accel, "kvm");
	c.smp = 0;
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "cpus"), "0 cpus: %s", err);
	c.smp = 1;
	c.mem = 32ULL << 20;
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "at least 64"), "32 MiB: %s", err);
	c.mem = 512ULL << 20;
	strcpy(c.machine, "pc,accel=tcg");
	ok(vm_cfg_check(&c, err, sizeof(err)) && strstr(err, "machine"), "machine with options: %s", err);
	strcpy(c.machine, "pc");

	/* the command line */
	strcpy(c.initrd, "/usr/share/g,uest.cpio");
	strcpy(c.append, "console=ttyS0 hlguest.mib=300");
	char **argv = vm_qemu_argv(&c, "/usr/bin/qemu-system-x86_64", "/proc/9/fd/5", "/proc/9/fd/6",
				   "/run/hugelive-vm/guest-1/qmp.sock", false);
	char *line = argv ? vm_argv_str(argv) : NULL;

	ok(line && strstr(line, "-object memory-backend-file,id=hlvm-ram,size=536870912,mem-path=/proc/9/fd/5,share=on") &&
	   strstr(line, "-machine pc,memory-backend=hlvm-ram") && strstr(line, "-m 512M") &&
	   strstr(line, "-accel kvm -cpu host,-xsave") && !strstr(line, "-incoming"),
	   "argv: shared file backend on the memfd path, kvm, host cpu without xsave, no -incoming");
	ok(line && strstr(line, "-initrd /usr/share/g,uest.cpio") && strstr(line, "-append 'console=ttyS0 hlguest.mib=300'") &&
	   strstr(line, "-chardev file,id=hlvm-con,path=/proc/9/fd/6,append=on") &&
	   strstr(line, "-qmp unix:/run/hugelive-vm/guest-1/qmp.sock,server=on,wait=off"),
	   "argv: initrd, append, console record appended, QMP socket");
	free(line);
	vm_free_argv(argv);
	strcpy(c.accel, "tcg");
	argv = vm_qemu_argv(&c, "q", "/proc/9/fd/5,x", "/c", "/s", true);
	line = argv ? vm_argv_str(argv) : NULL;
	ok(line && strstr(line, "-S -incoming defer") && strstr(line, "-cpu max") && strstr(line, "mem-path=/proc/9/fd/5,,x,share=on"),
	   "argv incoming: -S -incoming defer; tcg: -cpu max; a ',' in a path doubled");
	free(line);
	vm_free_argv(argv);
}

static void test_manifest(void)
{
	struct vm_manifest m = { 0 }, back;
	char err[512], *js;

	vm_cfg_defaults(&m.cfg);
	strcpy(m.cfg.name, "guest");
	strcpy(m.cfg.kernel, "/boot/bzImage");
	strcpy(m.cfg.append, "console=ttyS0 \"quoted\"");
	m.stop_realtime_ns = 1796234965123456789LL;
	m.stop_tsc = 0x123456789abcULL;
	m.state_bytes = 327680;
	m.save_ms = 1234;
	m.updates = 3;
	js = vm_manifest_to_json(&m);
	ok(js && !vm_manifest_from_json(js, &back, err, sizeof(err)) && !memcmp(&m.cfg, &back.cfg, sizeof(m.cfg)) &&
	   back.stop_realtime_ns == m.stop_realtime_ns && back.stop_tsc == m.stop_tsc && back.state_bytes == 327680 &&
	   back.save_ms == 1234 && back.updates == 3, "manifest round trip");
	free(js);
	ok(vm_manifest_from_json("nonsense", &back, err, sizeof(err)) == -EINVAL && strstr(err, "not a JSON object"),
	   "manifest not JSON: %s", err);
	ok(vm_manifest_from_json("{\"format\": \"hugelive-vm-manifest-v9\"}", &back, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "unknown format"), "manifest of another format: %s", err);
	ok(vm_manifest_from_json("{\"format\": \"hugelive-vm-manifest-v1\", \"name\": \"x\"}", &back, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "no string \"qemu\""), "manifest missing fields: %s", err);
}

static void test_ram_fd(void)
{
	char err[512];
	int p[2], fd;

	ok(pipe(p) == 0 && vm_check_ram_fd(p[0], 1 << 20, 2 << 20, err, sizeof(err)) == -EINVAL && strstr(err, "a pipe"),
	   "RAM fd a pipe: %s", err);
	close(p[0]);
	close(p[1]);
	fd = memfd_create("t", MFD_CLOEXEC);
	ok(fd >= 0 && !ftruncate(fd, 4 << 20) && vm_check_ram_fd(fd, 4 << 20, 2 << 20, err, sizeof(err)) == -EINVAL &&
	   strstr(err, "shmem (tmpfs)") && strstr(err, "MFD_HUGE_2MB"), "RAM fd a shmem memfd: %s", err);
	close(fd);
	ok(vm_check_ram_fd(999, 1, 2 << 20, err, sizeof(err)) == -EBADF, "RAM fd not open: %s", err);
	fd = memfd_create("t", MFD_CLOEXEC | MFD_HUGETLB | (21U << MFD_HUGE_SHIFT));
	if (fd >= 0 && !ftruncate(fd, 2 << 20)) {
		ok(!vm_check_ram_fd(fd, 2 << 20, 2 << 20, err, sizeof(err)), "RAM fd a 2 MiB hugetlb memfd passes");
		ok(vm_check_ram_fd(fd, 2 << 20, 1 << 30, err, sizeof(err)) == -EINVAL && strstr(err, "2 MiB pages") &&
		   strstr(err, "1 GiB"), "hugetlb memfd with the wrong page size: %s", err);
		ok(vm_check_ram_fd(fd, 4 << 20, 2 << 20, err, sizeof(err)) == -EINVAL && strstr(err, "holds 2 MiB"),
		   "hugetlb memfd too small: %s", err);
	} else {
		diag("no 2 MiB hugetlb memfd on this host (%s): its checks skipped", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

static void write_script(const char *path, const char *body)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fprintf(f, "#!/bin/sh\n%s\n", body);
		fclose(f);
		chmod(path, 0755);
	}
}

static void test_find_qemu(void)
{
	char path[4096], err[1024], dir[] = "/tmp/test_vm.XXXXXX", f[4200];
	int rc;

	rc = vmm_find_qemu("hugelive-no-such-qemu", path, sizeof(path), err, sizeof(err));
	ok(rc == -ENOENT && strstr(err, "not in PATH") && strstr(err, "--qemu"), "no QEMU in PATH: %s", err);
	rc = vmm_find_qemu("/nonexistent/qemu", path, sizeof(path), err, sizeof(err));
	ok(rc == -ENOENT && strstr(err, "no QEMU at /nonexistent/qemu"), "no QEMU at a path: %s", err);
	if (!mkdtemp(dir))
		return;
	snprintf(f, sizeof(f), "%s/qemu-old", dir);
	write_script(f, "echo 'QEMU emulator version 3.1.0 (Debian 1:3.1+dfsg-8)'");
	rc = vmm_find_qemu(f, path, sizeof(path), err, sizeof(err));
	ok(rc == -EOPNOTSUPP && strstr(err, "QEMU 3.1.0") && strstr(err, "4.0 or newer"), "QEMU 3.1: too old: %s", err);
	snprintf(f, sizeof(f), "%s/qemu-broken", dir);
	write_script(f, "echo 'Segmentation fault'; exit 139");
	rc = vmm_find_qemu(f, path, sizeof(path), err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "not a working QEMU"), "a program that is no QEMU: %s", err);
	snprintf(f, sizeof(f), "%s/qemu-new", dir);
	write_script(f, "echo 'QEMU emulator version 7.2.22 (Debian)'");
	rc = vmm_find_qemu(f, path, sizeof(path), err, sizeof(err));
	ok(rc == 0 && !strcmp(path, f), "QEMU 7.2 accepted");
	snprintf(f, sizeof(f), "rm -rf '%s'", dir);
	if (system(f))
		diag("cleanup of %s failed", dir);
}

/* Run BINDIR/hugelive-vm ARGS (shell words); its exit status, output in out. */
static int launcher(const char *bindir, char *out, size_t len, const char *args)
{
	char cmd[2048];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "HUGELIVE_SOCKET=/nonexistent/agent.sock '%s/hugelive-vm' %s 2>&1", bindir, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	for (char *c = out; *c; c++)	/* one TAP line */
		if (*c == '\n')
			*c = ' ';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_launcher(const char *bindir)
{
	char out[4096], args[512];
	int rc, fd;

	rc = launcher(bindir, out, sizeof(out), "");
	ok(rc == 2 && strstr(out, "usage:"), "no command: usage, exit 2");
	rc = launcher(bindir, out, sizeof(out), "reboot");
	ok(rc == 2 && strstr(out, "unknown command 'reboot'"), "unknown command: exit 2");
	rc = launcher(bindir, out, sizeof(out), "start --name g --kernel /dev/null --mem lots");
	ok(rc == 2 && strstr(out, "--mem lots: a size"), "start --mem lots: exit 2 (%.60s)", out);
	rc = launcher(bindir, out, sizeof(out), "start --name g");
	ok(rc == 2 && strstr(out, "no guest kernel"), "start without --kernel: exit 2 (%.60s)", out);
	rc = launcher(bindir, out, sizeof(out), "start --name g --kernel /dev/null --mem 513M");
	ok(rc == 2 && strstr(out, "not a multiple of the 2 MiB page size"), "start --mem 513M: exit 2");
	rc = launcher(bindir, out, sizeof(out), "start --name g --kernel /dev/null --qemu /nonexistent/qemu");
	ok(rc == 2 && strstr(out, "no QEMU at /nonexistent/qemu"), "start --qemu /nonexistent/qemu: exit 2 with the reason");
	rc = launcher(bindir, out, sizeof(out), "start --name g --kernel /nonexistent/bzImage --qemu /bin/true");
	ok(rc == 2 && strstr(out, "not a working QEMU"), "a --qemu that is no QEMU: exit 2 (%.80s)", out);
	fd = memfd_create("ram", 0);
	if (fd >= 0 && !ftruncate(fd, 512 << 20)) {
		char dir[] = "/tmp/test_vm.XXXXXX", q[64];

		if (mkdtemp(dir)) {
			snprintf(q, sizeof(q), "%s/qemu", dir);
			write_script(q, "echo 'QEMU emulator version 7.2.22'");
			snprintf(args, sizeof(args), "start --name g --kernel /dev/null --qemu %s --ram-fd %d", q, fd);
			rc = launcher(bindir, out, sizeof(out), args);
			ok(rc == 2 && strstr(out, "shmem (tmpfs) file, not hugetlb"), "--ram-fd of a shmem memfd: exit 2, "
			   "says what it is (%.100s)", out);
			snprintf(args, sizeof(args), "start --name g --kernel /dev/null --qemu %s --mem 64M", q);
			rc = launcher(bindir, out, sizeof(out), args);
			ok(rc == 3 || rc == 1, "with good input and no agent: exit %d (1: no huge pages here, 3: no agent): %.120s",
			   rc, out);
			unlink(q);
			rmdir(dir);
		}
	}
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	test_parsing();
	test_conversation();
	test_cfg();
	test_manifest();
	test_ram_fd();
	test_find_qemu();
	if (argc > 1)
		test_launcher(argv[1]);
	else
		diag("no BINDIR: the launcher's command line not tested");
	return tap_done();
}
