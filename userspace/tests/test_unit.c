/* SPDX-License-Identifier: MIT */
/* Unit tests: protocol parsing/encoding, authorisation, state slots, helpers. */
#include "tap.h"
#include "agent/agent.h"
#include "common/kcheck.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static int parse(const char *s, struct hl_req *r)
{
	char err[256];
	int rc = hl_req_parse(s, strlen(s), r, err, sizeof(err));

	if (rc)
		diag("  -> %s: %s", hl_errno_name(rc), err);
	return rc;
}

static void test_parse_valid(void)
{
	struct hl_req r;

	ok(parse("{\"v\":1,\"id\":7,\"op\":\"status\"}", &r) == 0 && r.op == HL_OP_STATUS && r.id == 7, "status parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"t\"}", &r) == 0 &&
	   r.version == 1 && !strcmp(r.client, "t"), "hello parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":2,\"op\":\"preserve\",\"session\":\"db.cache-1\",\"token\":9223372036854775807,"
		 "\"label\":\"pool 0\"}", &r) == 0 && r.token == INT64_MAX && !strcmp(r.session, "db.cache-1") &&
	   !strcmp(r.label, "pool 0"), "preserve with max token and label parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":3,\"op\":\"retrieve\",\"session\":\"s\",\"token\":0,\"uid\":1000}", &r) == 0 &&
	   r.has_uid && r.uid == 1000 && r.has_token && r.token == 0, "retrieve with uid parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":4,\"op\":\"finish\",\"all\":true}", &r) == 0 && r.all, "finish all parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":5,\"op\":\"update\",\"kernel\":\"/boot/vmlinuz\",\"cmdline\":\"kho=on\","
		 "\"timeout_ms\":1500,\"dry_run\":true}", &r) == 0 && r.timeout_ms == 1500 && r.dry_run &&
	   !r.initrd, "update parses");
	hl_req_free(&r);
	ok(parse("{\"v\":1,\"id\":6,\"op\":\"refuse\",\"update\":3,\"reason\":\"busy\"}", &r) == 0 &&
	   r.update_id == 3 && !strcmp(r.reason, "busy"), "refuse parses");
	hl_req_free(&r);
	ok(parse(" {\"v\":1,\"id\":8,\"op\":\"list\",\"future_field\":[1,2,{\"x\":null}]}\n", &r) == 0,
	   "unknown fields and surrounding whitespace are accepted");
	hl_req_free(&r);
}

static void test_parse_invalid(void)
{
	static const struct {
		const char *msg;
		int err;
		const char *what;
	} cases[] = {
		{ "", EPROTO, "empty" },
		{ "not json", EPROTO, "garbage" },
		{ "[1,2]", EPROTO, "array" },
		{ "{\"id\":1,\"op\":\"status\"}", EPROTO, "missing v" },
		{ "{\"v\":2,\"id\":1,\"op\":\"status\"}", EPROTO, "v=2" },
		{ "{\"v\":\"1\",\"id\":1,\"op\":\"status\"}", EPROTO, "v as string" },
		{ "{\"v\":1,\"op\":\"status\"}", EPROTO, "missing id" },
		{ "{\"v\":1,\"id\":-1,\"op\":\"status\"}", EPROTO, "negative id" },
		{ "{\"v\":1,\"id\":1}", EPROTO, "missing op" },
		{ "{\"v\":1,\"id\":1,\"op\":7}", EPROTO, "op not a string" },
		{ "{\"v\":1,\"id\":1,\"op\":\"frobnicate\"}", EOPNOTSUPP, "unknown op" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\"}", EINVAL, "create without session" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":\"\"}", EINVAL, "empty session" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":\"a/b\"}", EINVAL, "slash in session" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":\".x\"}", EINVAL, "leading dot" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", EINVAL, "49-char session" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":\"a\\u0000b\"}", EINVAL, "NUL escape in session" },
		{ "{\"v\":1,\"id\":1,\"op\":\"create\",\"session\":5}", EINVAL, "session not a string" },
		{ "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"s\"}", EINVAL, "preserve without token" },
		{ "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"s\",\"token\":-1}", EINVAL, "negative token" },
		{ "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"s\",\"token\":1.5}", EINVAL, "float token" },
		{ "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"s\",\"token\":18446744073709551615}", EINVAL, "token 2^64-1" },
		{ "{\"v\":1,\"id\":1,\"op\":\"preserve\",\"session\":\"s\",\"token\":1,\"label\":\"a\\nb\"}", EINVAL, "control char in label" },
		{ "{\"v\":1,\"id\":1,\"op\":\"list\",\"uid\":\"0\"}", EINVAL, "uid as string" },
		{ "{\"v\":1,\"id\":1,\"op\":\"list\",\"uid\":4294967295}", EINVAL, "uid -1" },
		{ "{\"v\":1,\"id\":1,\"op\":\"list\",\"all\":1}", EINVAL, "all not a boolean" },
		{ "{\"v\":1,\"id\":1,\"op\":\"finish\"}", EINVAL, "finish without target" },
		{ "{\"v\":1,\"id\":1,\"op\":\"ready\"}", EINVAL, "ready without update" },
		{ "{\"v\":1,\"id\":1,\"op\":\"ready\",\"update\":0}", EINVAL, "update id 0" },
		{ "{\"v\":1,\"id\":1,\"op\":\"update\",\"kernel\":\"vmlinuz\",\"cmdline\":\"\"}", EINVAL, "relative kernel path" },
		{ "{\"v\":1,\"id\":1,\"op\":\"update\",\"kernel\":\"/k\",\"cmdline\":\"\",\"timeout_ms\":0}", EINVAL, "timeout 0" },
		{ "{\"v\":1,\"id\":1,\"op\":\"status\"} x", EPROTO, "trailing garbage" },
		{ "{\"v\":1,\"id\":1,\"op\":\"status\"}{}", EPROTO, "two objects" },
		{ "{\"v\":1,\"id\":1,\"op\":\"status\",\"x\":[[[[[[[[[[[[1]]]]]]]]]]]]}", EPROTO, "nesting too deep" },
		{ "{\"v\":1,\"id\":1,\"op\":\"status\",}", EPROTO, "trailing comma (strict)" },
	};
	struct hl_req r;
	char err[256];

	for (size_t i = 0; i < HL_ARRAY_SIZE(cases); i++) {
		int rc = hl_req_parse(cases[i].msg, strlen(cases[i].msg), &r, err, sizeof(err));

		ok(rc == cases[i].err && r.root == NULL && err[0], "reject %s -> %s (got %s: %s)", cases[i].what,
		   hl_errno_name(cases[i].err), hl_errno_name(rc), err);
		hl_req_free(&r);
	}
	/* NUL byte inside the buffer */
	{
		const char m[] = "{\"v\":1,\"id\":1,\"op\":\"status\"}\0";

		ok(hl_req_parse(m, sizeof(m), &r, err, sizeof(err)) == EPROTO, "reject embedded NUL byte");
	}
	/* oversized */
	{
		size_t n = HL_MAX_MSG + 100;
		char *big = malloc(n);

		memset(big, ' ', n);
		memcpy(big, "{\"v\":1,\"id\":1,\"op\":\"status\"}", 28);
		ok(hl_req_parse(big, n, &r, err, sizeof(err)) == EMSGSIZE, "reject message > %d bytes", HL_MAX_MSG);
		free(big);
	}
	/* id survives into error for replies */
	{
		const char *m = "{\"v\":1,\"id\":42,\"op\":\"create\"}";

		hl_req_parse(m, strlen(m), &r, err, sizeof(err));
	}
	ok(r.id == 42, "request id kept for the error reply");
}

static void test_encode(void)
{
	struct json_object *o = hl_reply_err(9, ENOENT, "no session \"%s\"", "x"), *p, *e;
	size_t len;
	char *s = hl_json_dump(o, &len);

	p = hl_json_parse(s, len);
	ok(p && hl_jint(p, "id", 0) == 9 && !hl_jbool(p, "ok", true) && json_object_object_get_ex(p, "error", &e) &&
	   hl_jint(e, "code", 0) == ENOENT && !strcmp(hl_jstr(e, "name"), "ENOENT") &&
	   !strcmp(hl_jstr(e, "message"), "no session \"x\""), "error reply round trip");
	json_object_put(o);
	json_object_put(p);
	free(s);

	/* request built like the library does, parsed like the agent does */
	o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string("preserve"));
	json_object_object_add(o, "session", json_object_new_string("s1"));
	json_object_object_add(o, "token", json_object_new_int64(123456789012345LL));
	json_object_object_add(o, "label", json_object_new_string("quote\" backslash\\ ok"));
	json_object_object_add(o, "v", json_object_new_int(1));
	json_object_object_add(o, "id", json_object_new_int64(77));
	s = hl_json_dump(o, &len);
	{
		struct hl_req r;
		char err[128];
		int rc = hl_req_parse(s, len, &r, err, sizeof(err));

		ok(rc == 0 && r.op == HL_OP_PRESERVE && r.token == 123456789012345ULL && r.id == 77 &&
		   !strcmp(r.label, "quote\" backslash\\ ok"), "request round trip (escapes, 64-bit token)");
		hl_req_free(&r);
	}
	json_object_put(o);
	free(s);
	ok(hl_op_from_name("update") == HL_OP_UPDATE && !strcmp(hl_op_name(HL_OP_FINISH), "finish"), "op names");
	ok(hl_errno_from_name("EBUSY") == EBUSY && !strcmp(hl_errno_name(ECANCELED), "ECANCELED"), "errno names");
}

static void test_authz(void)
{
	uint32_t t;
	char kn[HL_KNAME_MAX];

	ok(hl_authorized(0, 1000), "root may act on any uid");
	ok(hl_authorized(1000, 1000), "owner may act on own session");
	ok(!hl_authorized(1001, 1000), "other uid may not");
	ok(hl_target_uid(1000, false, 0, &t) == 0 && t == 1000, "default namespace is the caller's uid");
	ok(hl_target_uid(1000, true, 0, &t) == -EPERM, "non-root naming uid 0 -> EPERM");
	ok(hl_target_uid(1000, true, 1000, &t) == 0 && t == 1000, "non-root naming itself is fine");
	ok(hl_target_uid(0, true, 1234, &t) == 0 && t == 1234, "root may name another uid");
	ok(session_kname(kn, 4294967294u, "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv") == 0 &&
	   strlen(kn) == 62, "longest name with largest uid fits the 64-byte kernel name (%s)", kn);
	ok(session_kname(kn, 1000, "db") == 0 && !strcmp(kn, "hl:1000:db"), "kernel name format hl:<uid>:<name>");
	ok(hl_name_valid("a.b_c-1") && !hl_name_valid("a b") && !hl_name_valid("-x") && !hl_name_valid(NULL),
	   "session name rule");
	ok(hl_label_valid("") && hl_label_valid("x y") && !hl_label_valid("\x7f"), "label rule");
}

static void test_state_slots(void)
{
	size_t cap = 64 * 1024;
	int mfd = memfd_create("t", 0);
	char *mem;
	struct json_object *o;
	const char *j1 = "{\"format\":\"hugelived-state\",\"version\":1,\"seq\":1,\"sessions\":[]}";
	const char *j2 = "{\"format\":\"hugelived-state\",\"version\":1,\"seq\":2,\"sessions\":[{\"name\":\"a\"}]}";

	ok(ftruncate(mfd, (off_t)cap) == 0, "state memfd");
	mem = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ok(state_read_fd(mfd, &o) == -EBADMSG, "empty state memfd -> EBADMSG");
	state_encode_slot(mem, cap, 1, j1, strlen(j1), 0);
	state_encode_slot(mem, cap, 2, j2, strlen(j2), 1);
	ok(state_read_fd(mfd, &o) == 0 && hl_jint(o, "seq", 0) == 2, "newest slot wins");
	json_object_put(o);
	mem[cap / 2 + 40] ^= 0x55; /* torn write in slot 1 */
	ok(state_read_fd(mfd, &o) == 0 && hl_jint(o, "seq", 0) == 1, "corrupt newest slot -> previous state");
	json_object_put(o);
	mem[40] ^= 0x55;
	ok(state_read_fd(mfd, &o) == -EBADMSG, "both slots corrupt -> EBADMSG");
	ok(state_encode_slot(mem, cap, 3, j1, cap, 0) == -ENOSPC, "oversized state -> ENOSPC");
	{
		const char *bad = "{\"format\":\"other\",\"version\":1}";

		state_encode_slot(mem, cap, 5, bad, strlen(bad), 0);
		ok(state_read_fd(mfd, &o) == -EPROTONOSUPPORT, "foreign state format rejected");
	}
	{
		/* the slot CRC is CRC-32/IEEE (zlib): state of older agents stays readable */
		uint32_t crc = 0;

		state_encode_slot(mem, cap, 6, "123456789", 9, 0);
		memcpy(&crc, mem + 20, 4);
		ok(crc == 0xcbf43926u, "slot CRC is CRC-32/IEEE (check value 0x%08x)", crc);
	}
	munmap(mem, cap);
	close(mfd);
}

static void test_cmdline(void)
{
	char *v;

	ok(hl_param_on("console=ttyS0 kho=on liveupdate=on", "kho") &&
	   hl_param_on("console=ttyS0 kho=on liveupdate=on", "liveupdate"), "kho=on liveupdate=on detected");
	ok(!hl_param_on("kho=on kho=off", "kho"), "last occurrence wins");
	ok(!hl_param_on("xkho=on", "kho") && !hl_param_on("kho=onx", "kho"), "whole words only");
	ok(hl_param_on("liveupdate=1 kho=y", "liveupdate") && hl_param_on("kho=y", "kho"), "1/y accepted");
	v = hl_cmdline_param("a=1 b a=2", "a");
	ok(v && !strcmp(v, "2"), "hl_cmdline_param value");
	free(v);
	v = hl_cmdline_param("a=1 b a=2", "b");
	ok(v && !strcmp(v, ""), "flag without value");
	free(v);
	setenv("HUGELIVE_HUGETLB_SUPPORT", "1", 1);
	{
		const char *how = "";
		/* call first: how is an argument of ok() too (unspecified order) */
		int r = hl_hugetlb_support(-1, &how);

		ok(r == 1, "hugetlb support override (%s)", how);
	}
	unsetenv("HUGELIVE_HUGETLB_SUPPORT");
	ok(hl_probe_verdict(0, 0) == 1, "hugetlb probe: accepted -> supported");
	ok(hl_probe_verdict(-1, ENOENT) == 0 && hl_probe_verdict(-1, EOPNOTSUPP) == 0,
	   "hugetlb probe: ENOENT/EOPNOTSUPP -> not supported");
	ok(hl_probe_verdict(-1, EBUSY) == -1 && hl_probe_verdict(-1, ENOMEM) == -1 && hl_probe_verdict(-1, EPERM) == -1,
	   "hugetlb probe: other errnos -> unknown, not supported");
	setenv("HUGELIVE_HUGETLB_SUPPORT", "yes", 1);
	{
		const char *how = "";
		int r = hl_hugetlb_support(-1, &how);

		ok(strcmp(how, "HUGELIVE_HUGETLB_SUPPORT") != 0, "HUGELIVE_HUGETLB_SUPPORT=yes is not a 0/1 override (%d, %s)",
		   r, how);
	}
	unsetenv("HUGELIVE_HUGETLB_SUPPORT");
	{
		long long v = 0;

		ok(hl_parse_num("300", 1, 1000, &v) == 0 && v == 300, "hl_parse_num 300");
		ok(hl_parse_num("", 1, 10, &v) == -EINVAL && hl_parse_num("5x", 1, 10, &v) == -EINVAL &&
		   hl_parse_num("-1", 0, 10, &v) == -EINVAL && hl_parse_num(" 5", 1, 10, &v) == -EINVAL &&
		   hl_parse_num("0x5", 0, 10, &v) == -EINVAL, "hl_parse_num rejects empty, suffix, sign, space, hex");
		ok(hl_parse_num("0", 1, 10, &v) == -ERANGE && hl_parse_num("99999999999999999999", 1, 10, &v) == -ERANGE,
		   "hl_parse_num: out of range -> ERANGE");
	}
}

static void test_kconfig_file(void)
{
	char plain[] = "/tmp/hl-kconfig.XXXXXX", gz[64];
	const char *cfg = "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n";
	int fd = mkstemp(plain);
	gzFile g;

	ok(fd >= 0 && write(fd, cfg, strlen(cfg)) == (ssize_t)strlen(cfg), "plain config file");
	close(fd);
	snprintf(gz, sizeof(gz), "%s.gz", plain);
	g = gzopen(gz, "wb");
	ok(g && gzputs(g, cfg) == (int)strlen(cfg) && gzclose(g) == Z_OK, "gzip config file (zlib)");
	ok(hl_kconfig_file(gz, "A") == 'y' && hl_kconfig_file(gz, "B") == 'm' && hl_kconfig_file(gz, "C") == 'n' &&
	   hl_kconfig_file(gz, "D") == 'n', "gzip config: y, m, not set, absent");
	ok(hl_kconfig_file(plain, "A") == 'y' && hl_kconfig_file(plain, "C") == 'n', "plain config read too");
	ok(hl_kconfig_file("/nonexistent/config.gz", "A") == -1, "missing config file -> -1");
	{
		/* a gzip stream cut short: an error, not "not set" */
		char cut[80], buf[4096];
		int in = open(gz, O_RDONLY), out;
		ssize_t n = in >= 0 ? read(in, buf, sizeof(buf)) : -1;

		snprintf(cut, sizeof(cut), "%s.cut.gz", plain);
		out = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ok(n > 20 && out >= 0 && write(out, buf, (size_t)n - 12) == n - 12, "truncated gzip file");
		close(in);
		close(out);
		ok(hl_kconfig_file(cut, "D") == -1, "truncated gzip stream -> -1");
		unlink(cut);
	}
	unlink(gz);
	unlink(plain);
}

/* Issue 9 item 12: which kexec path, and the direct path's unmount order. */
static void test_kexec_via(void)
{
	enum kexec_via v = KEXEC_VIA_DIRECT;

	ok(kexec_via_parse("auto", &v) == 0 && v == KEXEC_VIA_AUTO, "--kexec-via auto parses");
	ok(kexec_via_parse("systemd", &v) == 0 && v == KEXEC_VIA_SYSTEMD, "--kexec-via systemd parses");
	ok(kexec_via_parse("direct", &v) == 0 && v == KEXEC_VIA_DIRECT, "--kexec-via direct parses");
	ok(kexec_via_parse("reboot", &v) == -EINVAL && kexec_via_parse("", &v) == -EINVAL &&
	   kexec_via_parse(NULL, &v) == -EINVAL, "anything else -> EINVAL");
	ok(kexec_via_decide(KEXEC_VIA_AUTO, 1, true) == KEXEC_VIA_SYSTEMD,
	   "auto, systemd is PID 1, started as a unit -> systemd");
	ok(kexec_via_decide(KEXEC_VIA_AUTO, 1, false) == KEXEC_VIA_DIRECT,
	   "auto, systemd is PID 1, started by hand -> direct");
	ok(kexec_via_decide(KEXEC_VIA_AUTO, 0, true) == KEXEC_VIA_DIRECT &&
	   kexec_via_decide(KEXEC_VIA_AUTO, -5, true) == KEXEC_VIA_DIRECT,
	   "auto without a booted systemd (or sd_booted() failing) -> direct");
	ok(kexec_via_decide(KEXEC_VIA_SYSTEMD, 0, true) == KEXEC_VIA_DIRECT,
	   "systemd asked for but not the init -> direct");
	ok(kexec_via_decide(KEXEC_VIA_SYSTEMD, 1, false) == KEXEC_VIA_SYSTEMD &&
	   kexec_via_decide(KEXEC_VIA_DIRECT, 1, true) == KEXEC_VIA_DIRECT, "an explicit choice stands under systemd");
	ok(!strcmp(kexec_via_name(KEXEC_VIA_SYSTEMD), "systemd") && !strcmp(kexec_via_name(KEXEC_VIA_DIRECT), "direct"),
	   "names for status");
}

static void test_shutdown_plan(void)
{
	static const char mi[] =
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		"23 1 0:22 / /sys rw - sysfs sysfs rw\n"
		"25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
		"26 25 0:23 / /run rw shared:5 - tmpfs tmpfs rw,mode=755\n"
		"27 25 8:2 / /var rw shared:6 - xfs /dev/sda2 rw\n"
		"28 27 8:3 / /var/lib/my\\040data rw shared:7 master:2 - ext4 /dev/sda3 rw\n"
		"29 25 0:24 / /dev/hugepages rw - hugetlbfs hugetlbfs rw\n"
		"30 25 8:4 / /home rw - btrfs /dev/sda4 rw\n"
		"31 23 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
		"garbage line without separator\n";
	struct mnt_step st[8];
	size_t n = shutdown_plan(mi, st, 8);

	ok(n == 4, "plan: 4 disk file systems (ext4 /, xfs, ext4, btrfs), virtual ones skipped (%zu)", n);
	ok(n == 4 && !strcmp(st[0].target, "/home") && !strcmp(st[1].target, "/var/lib/my data") &&
	   !strcmp(st[2].target, "/var") && !strcmp(st[3].target, "/"),
	   "plan order: reverse mount order, children before parents, \"/\" last; \\040 unescaped (%s, %s, %s, %s)",
	   n > 0 ? st[0].target : "", n > 1 ? st[1].target : "", n > 2 ? st[2].target : "", n > 3 ? st[3].target : "");
	ok(n == 4 && st[0].action == MNT_UMOUNT && st[2].action == MNT_UMOUNT && st[3].action == MNT_REMOUNT_RO &&
	   !strcmp(st[3].fstype, "ext4") && !strcmp(st[2].fstype, "xfs"),
	   "unmount the others, remount the root read-only");
	n = shutdown_plan(mi, st, 2);
	ok(n == 2 && !strcmp(st[1].target, "/"), "a full plan still ends with the root (%zu)", n);
	ok(shutdown_plan("", st, 8) == 0 && shutdown_plan(NULL, st, 8) == 0, "empty mountinfo: nothing to do");
	n = shutdown_plan("1 0 0:1 / / rw - rootfs rootfs rw\n2 1 0:2 / /proc rw - proc proc rw\n", st, 8);
	ok(n == 0, "an initramfs root (rootfs) is left alone (%zu)", n);
}

/* The unit lets systemd do the kexec and keeps the agent alive through shutdown. */
static void test_unit_file(void)
{
	char *u = hl_read_file("systemd/hugelived.service.in", 1 << 16, NULL);

	if (!u)
		u = hl_read_file("../systemd/hugelived.service.in", 1 << 16, NULL);
	if (!ok(u != NULL, "systemd/hugelived.service.in readable"))
		return;
	ok(!strstr(u, "\nConflicts=shutdown.target") && !strstr(u, "Before=sysinit.target shutdown.target"),
	   "the unit is not stopped by the shutdown transaction (no Conflicts=/Before=shutdown.target)");
	ok(strstr(u, "\nDefaultDependencies=no") != NULL, "DefaultDependencies=no (no implicit Conflicts=shutdown.target)");
	{
		const char *sv = strstr(u, "\nSurviveFinalKillSignal=yes"), *svc = strstr(u, "\n[Service]");

		ok(sv && svc && sv < svc, "SurviveFinalKillSignal=yes in [Unit]: spared by systemd-shutdown's final kill");
	}
	ok(strstr(u, "\nIgnoreOnIsolate=yes") != NULL, "IgnoreOnIsolate=yes");
	ok(strstr(u, "--kexec-via systemd") != NULL, "ExecStart asks for the systemd kexec path");
	free(u);
}

/* A stand-in holder: a child named comm that keeps path open until killed. */
static pid_t hold_open(const char *path, const char *comm)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open(path, O_RDWR);

		prctl(PR_SET_NAME, comm);
		if (write(p[1], fd >= 0 ? "y" : "n", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1 || c != 'y')
		pid = -1;
	close(p[0]);
	return pid;
}

static void stop_holder(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* Issue 12 item 5: who holds the LUO device (stand-in: a temporary file). */
static void test_dev_holders(void)
{
	char path[] = "/tmp/hl-holder-XXXXXX", who[512];
	int fd = mkstemp(path), n;
	bool sd = true;
	pid_t h;

	if (!ok(fd >= 0, "temporary stand-in for the device"))
		return;
	close(fd);
	n = hl_dev_holders(path, who, sizeof(who), &sd);
	ok(n == 0 && !who[0] && !sd, "nobody holds it: 0 holders, empty list (%d, '%s')", n, who);
	h = hold_open(path, "systemd");
	n = hl_dev_holders(path, who, sizeof(who), &sd);
	ok(h > 0 && n == 1 && sd && strstr(who, "(systemd)"),
	   "a process named systemd holds it: found, flagged as the service manager (%d, '%s')", n, who);
	stop_holder(h);
	h = hold_open(path, "keeper-standin");
	n = hl_dev_holders(path, who, sizeof(who), &sd);
	ok(h > 0 && n == 1 && !sd && strstr(who, "(keeper-standin)"),
	   "another process holds it: named, not systemd (%d, '%s')", n, who);
	stop_holder(h);
	ok(hl_dev_holders("/nonexistent/liveupdate", who, sizeof(who), &sd) == -ENOENT,
	   "a missing device: -ENOENT");
	unlink(path);
}

int main(void)
{
	test_kexec_via();
	test_shutdown_plan();
	test_unit_file();
	test_parse_valid();
	test_parse_invalid();
	test_encode();
	test_authz();
	test_state_slots();
	test_cmdline();
	test_kconfig_file();
	test_dev_holders();
	return tap_done();
}
