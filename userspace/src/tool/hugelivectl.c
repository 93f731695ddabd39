/* SPDX-License-Identifier: MIT */
/*
 * hugelivectl: operator and shell-client tool for hugelived.
 * See hugelivectl(8) (source: man/hugelivectl.8.scd).
 */
#include "tool.h"
#include "hugelive.h"
#include "../common/kcheck.h"
#include "../common/kimage.h"
#include "../common/proto.h"
#include "../common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_sock;
static bool g_json;
static bool g_quiet;
static int g_wait_s;

/* Per-command usage: the line after "hugelivectl [global options]". */
static const struct {
	const char *cmd, *args, *what;
} cmds[] = {
	{ "check", "check [--require-hugetlb] [--kernel IMAGE [--reuse-cmdline] [--append ARGS] [--running-kernel IMG]]",
		   "is this machine (and this image) ready for a live update?" },
	{ "status", "status", "agent state, last update, unclaimed sessions" },
	{ "sessions", "sessions [--all] [--uid UID]", "list sessions (root: --all shows every uid)" },
	{ "update", "update --kernel IMAGE [--initrd FILE] (--append ARGS | --reuse-cmdline [--append ARGS])\n"
		    "       [--timeout SEC] [--dry-run] [--force] [--running-kernel IMG]",
	  "orchestrated live update (root, CAP_SYS_BOOT)" },
	{ "finish", "finish (--session NAME | --all) [--uid UID]", "finish sessions from the previous kernel" },
	{ "create", "create --session NAME [--uid UID]", "create a session" },
	{ "preserve", "preserve --session NAME --token N (--fd FD | --file PATH) [--label TEXT] [--create] [--uid UID]",
	  "hand a memfd to the agent" },
	{ "retrieve", "retrieve --session NAME --token N [--fd FD] [--finish] [--uid UID] -- CMD [ARGS...]",
	  "exec CMD with the retrieved file on FD (default 3)" },
	{ "destroy", "destroy --session NAME [--uid UID]", "drop a session (unpreserves its files)" },
	{ "subscribe", "subscribe [--refuse REASON] [--on-prepare CMD] [--count N]", "answer update barriers from a shell" },
};

static const char global_help[] =
"global options (anywhere on the line, before a retrieve's --):\n"
"  --socket PATH   agent socket (default $HUGELIVE_SOCKET or " HUGELIVE_DEFAULT_SOCKET ")\n"
"  -j, --json      JSON output; errors too, as {\"ok\":false,\"exit\":N,\"error\":{...}} on stdout\n"
"  -q, --quiet     less output\n"
"  --wait SEC      retry connecting to the agent for SEC seconds\n"
"  -h, --help      help (after a command: that command's help)\n";

static void usage(FILE *f)
{
	fprintf(f, "usage: hugelivectl [global options] COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < HL_ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %s\n      %s\n", cmds[i].args, cmds[i].what);
	fprintf(f, "\n%s\n"
		"exit codes: 0 ok, 1 failed / not ready, 2 usage, 3 agent not reachable,\n"
		"            4 update cancelled by a client or timeout, 5 update preflight failed,\n"
		"            6 update failed after the barrier (agent state not saved, kexec failed)\n", global_help);
}

static const char *cmd_args(const char *cmd)
{
	for (size_t i = 0; i < HL_ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].cmd, cmd))
			return cmds[i].args;
	return NULL;
}

static const char *g_cmd = "";
static char g_err[1024];
static int g_err_code;

/*
 * Report an error: on stderr at once, or, under --json, kept for the JSON
 * error object main() prints on stdout. code: an errno (0: none known).
 */
static void tool_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tool_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_err, sizeof(g_err), fmt, ap);
	va_end(ap);
	g_err_code = code;
	if (!g_json) {
		if (code > 0 && strcmp(hl_errno_name(code), "E?"))
			fprintf(stderr, "hugelivectl: %s (%s)\n", g_err, hl_errno_name(code));
		else
			fprintf(stderr, "hugelivectl: %s\n", g_err);
	}
}

static int usage_err(const char *cmd)
{
	const char *a = cmd_args(cmd);
	char u[640];

	snprintf(u, sizeof(u), "usage: hugelivectl [global options] %s", a ? a : "COMMAND [options]");
	if (g_json) {
		size_t l = strlen(g_err);

		/* keep what was wrong (an unknown option...) in front of the usage line */
		snprintf(g_err + l, sizeof(g_err) - l, "%s%s", l ? "; " : "", u);
		g_err_code = EINVAL;
	} else {
		fprintf(stderr, "%s\n(hugelivectl%s%s --help for details)\n", u, a ? " " : "", a ? cmd : "");
	}
	return EXIT_USAGE;
}

static void print_json_error(int rc)
{
	struct json_object *o = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "exit", json_object_new_int(rc));
	if (g_cmd[0])
		json_object_object_add(o, "command", json_object_new_string(g_cmd));
	json_object_object_add(e, "code", g_err_code > 0 ? json_object_new_int(g_err_code) : NULL);
	json_object_object_add(e, "name", g_err_code > 0 ? json_object_new_string(hl_errno_name(g_err_code)) : NULL);
	json_object_object_add(e, "message", json_object_new_string(g_err));
	json_object_object_add(o, "error", e);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

enum { G_SOCKET = 1000, G_JSON, G_QUIET, G_WAIT, G_HELP, G_VERSION };

/* A global option: 0 handled, EXIT_USAGE bad value, -1 (help/version) printed: exit 0. */
static int global_opt(int opt, const char *arg)
{
	long long v;

	switch (opt) {
	case G_SOCKET: g_sock = arg; return 0;
	case G_JSON: case 'j': g_json = true; return 0;
	case G_QUIET: case 'q': g_quiet = true; return 0;
	case G_WAIT:
		if (hl_parse_num(arg, 0, 3600, &v) < 0) {
			tool_err(EINVAL, "--wait: '%s' is not a number of seconds (0..3600)", arg);
			return EXIT_USAGE;
		}
		g_wait_s = (int)v;
		return 0;
	case G_HELP: case 'h':
		for (size_t i = 0; i < HL_ARRAY_SIZE(cmds); i++)
			if (!strcmp(cmds[i].cmd, g_cmd)) {
				printf("usage: hugelivectl [global options] %s\n  %s (see hugelivectl(8))\n\n%s",
				       cmds[i].args, cmds[i].what, global_help);
				return -1;
			}
		usage(stdout);
		return -1;
	case G_VERSION:
		printf("hugelivectl 0.1.0 (protocol %d)\n", HL_PROTO_VERSION);
		return -1;
	}
	return 1;
}

static const struct option global_long[] = {
	{ "socket", required_argument, NULL, G_SOCKET }, { "json", no_argument, NULL, G_JSON },
	{ "quiet", no_argument, NULL, G_QUIET }, { "wait", required_argument, NULL, G_WAIT },
	{ "help", no_argument, NULL, G_HELP }, { "version", no_argument, NULL, G_VERSION },
};

/*
 * getopt_long for a command's options plus the global ones, which may come
 * anywhere: global options are handled here and never returned; --help and
 * --version print and exit 0. Returns the command's option, -1 at the end,
 * or '?' on a bad option or value (already reported with tool_err()).
 */
static int tool_getopt(int argc, char **argv, const char *shortopts, const struct option *o)
{
	static struct option merged[48];
	static const struct option *built_for;
	static bool built;
	int opt;

	if (!built || built_for != o) {
		size_t n = 0;

		for (; o && o[n].name && n < HL_ARRAY_SIZE(merged) - HL_ARRAY_SIZE(global_long) - 1; n++)
			merged[n] = o[n];
		for (size_t i = 0; i < HL_ARRAY_SIZE(global_long); i++)
			merged[n++] = global_long[i];
		memset(&merged[n], 0, sizeof(merged[n]));
		built_for = o;
		built = true;
	}
	opterr = 0;
	for (;;) {
		int rc;

		opt = getopt_long(argc, argv, *shortopts == '+' ? "+jqh" : "jqh", merged, NULL);
		if (opt == -1)
			return -1;
		if (opt == '?') {
			tool_err(EINVAL, "%s: unknown option or missing value: %s", g_cmd[0] ? g_cmd : "hugelivectl",
				 argv[optind - 1]);
			return '?';
		}
		rc = global_opt(opt, optarg);
		if (rc == 1)
			return opt;
		if (rc < 0) {
			fflush(stdout);
			exit(EXIT_OK);
		}
		if (rc)
			return '?';
	}
}

static int connect_agent(hl_client **c)
{
	int64_t deadline = hl_now_ms() + (int64_t)g_wait_s * 1000;
	int rc;

	for (;;) {
		rc = hl_connect(g_sock, c);
		if (rc == 0)
			return 0;
		if (hl_now_ms() >= deadline)
			break;
		usleep(100000);
	}
	tool_err(-rc, "cannot reach the agent at %s: %s",
		g_sock ? g_sock : getenv("HUGELIVE_SOCKET") ? getenv("HUGELIVE_SOCKET") : HUGELIVE_DEFAULT_SOCKET,
		strerror(-rc));
	return -1;
}

/* Run one request; prints errors. Returns 0 or exit code. */
static int call(hl_client *c, struct json_object *req, int fd_in, struct json_object **reply, int *fd_out)
{
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	char *rep = NULL;
	int rc = hl_call_json(c, s, fd_in, &rep, fd_out);

	json_object_put(req);
	if (reply)
		*reply = rep ? hl_json_parse(rep, strlen(rep)) : NULL;
	free(rep);
	if (rc < 0) {
		if (rc == -ECONNRESET || rc == -EPIPE) {
			tool_err(-rc, "connection to the agent lost");
			return EXIT_NOAGENT;
		}
		tool_err(-rc, "%s", hl_last_error(c)[0] ? hl_last_error(c) : strerror(-rc));
		return EXIT_FAIL;
	}
	return 0;
}

/* Connect, run one request (consumed), disconnect. Returns 0 or exit code. */
static int call_once(struct json_object *r, struct json_object **reply)
{
	hl_client *c;
	int rc;

	*reply = NULL;
	if (connect_agent(&c) < 0) {
		json_object_put(r);
		return EXIT_NOAGENT;
	}
	rc = call(c, r, -1, reply, NULL);
	hl_disconnect(c);
	return rc;
}

static struct json_object *req(const char *op)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	return r;
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-')
		return false;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > (unsigned long long)INT64_MAX)
		return false;
	*out = v;
	return true;
}

/* ---- commands ---------------------------------------------------------- */

static int cmd_status(int argc, char **argv)
{
	struct json_object *rep, *u, *lu, *rp;
	int rc;

	if (tool_getopt(argc, argv, "", NULL) != -1 || optind < argc)
		return usage_err(g_cmd);
	rc = call_once(req("status"), &rep);
	if (rc) {
		json_object_put(rep);
		return rc;
	}
	if (g_json) {
		print_json(rep);
		json_object_put(rep);
		return 0;
	}
	printf("agent:      hugelived %s (pid %lld, protocol %lld), backend %s (%s)\n", hl_jstr(rep, "agent"),
	       (long long)hl_jint(rep, "pid", 0), (long long)hl_jint(rep, "protocol", 0), hl_jstr(rep, "backend"),
	       hl_jstr(rep, "device"));
	printf("boot:       %s, up %llds, fd store: %s\n", hl_jstr(rep, "boot"), (long long)hl_jint(rep, "uptime_s", 0),
	       hl_jstr(rep, "fd_store"));
	printf("sessions:   %lld outgoing, %lld incoming (yours: %lld)\n", (long long)hl_jint(rep, "outgoing_sessions", 0),
	       (long long)hl_jint(rep, "incoming_sessions", 0), (long long)hl_jint(rep, "your_sessions", 0));
	printf("clients:    %lld connected, %lld subscribed to updates\n", (long long)hl_jint(rep, "clients", 0),
	       (long long)hl_jint(rep, "subscribers", 0));
	if (json_object_object_get_ex(rep, "update", &u))
		printf("update:     %s%s\n", hl_jstr(u, "state"),
		       hl_jstr(u, "kernel") ? " (waiting for clients)" : "");
	if (json_object_object_get_ex(rep, "last_update", &lu) && lu)
		printf("last:       update %lld %s: %s\n", (long long)hl_jint(lu, "id", 0), hl_jstr(lu, "result"),
		       hl_jstr(lu, "message"));
	if (hl_jint(rep, "claim_remaining_s", -1) >= 0)
		printf("claim:      %llds left for clients to reclaim sessions (then: %s)\n",
		       (long long)hl_jint(rep, "claim_remaining_s", 0), hl_jstr(rep, "unclaimed_policy"));
	{
		struct json_object *h;

		if (json_object_object_get_ex(rep, "hugetlb_support", &h) && h)
			printf("hugetlb:    %s\n", json_object_get_boolean(h) ? "kernel can preserve hugetlb files"
										: "no hugetlb preservation in this kernel");
	}
	if (json_object_object_get_ex(rep, "report", &rp) && rp && json_object_array_length(rp)) {
		printf("report:\n");
		for (size_t i = 0; i < json_object_array_length(rp); i++) {
			struct json_object *e = json_object_array_get_idx(rp, i);
			const char *act = hl_jstr(e, "action");

			printf("  %s: %s%s%s\n", hl_jstr(e, "kname"), hl_jstr(e, "problem"), act ? ", " : "", act ? act : "");
		}
	}
	json_object_put(rep);
	return 0;
}

/*
 * Run a list request page by page ("after" = the previous page's "next")
 * and return one reply whose "sessions" holds every page.
 */
static int list_all(struct json_object *r, struct json_object **reply)
{
	struct json_object *all = json_object_new_array(), *rep = NULL, *arr;
	hl_client *c;
	int rc = 0;

	*reply = NULL;
	if (connect_agent(&c) < 0) {
		json_object_put(r);
		json_object_put(all);
		return EXIT_NOAGENT;
	}
	for (;;) {
		rc = call(c, json_object_get(r), -1, &rep, NULL);
		if (rc)
			break;
		if (json_object_object_get_ex(rep, "sessions", &arr) && json_object_is_type(arr, json_type_array))
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				json_object_array_add(all, json_object_get(json_object_array_get_idx(arr, i)));
		if (!hl_jbool(rep, "more", false))
			break;
		json_object_object_add(r, "after", json_object_new_int64(hl_jint(rep, "next", 0)));
		json_object_put(rep);
		rep = NULL;
	}
	hl_disconnect(c);
	json_object_put(r);
	if (rc) {
		json_object_put(all);
		*reply = rep;
		return rc;
	}
	json_object_object_del(rep, "more");
	json_object_object_del(rep, "next");
	json_object_object_add(rep, "sessions", all);
	*reply = rep;
	return 0;
}

static int cmd_sessions(int argc, char **argv)
{
	static const struct option o[] = { { "all", no_argument, NULL, 'a' }, { "uid", required_argument, NULL, 'u' }, { 0 } };
	struct json_object *r = req("list"), *rep, *arr;
	int opt, rc;
	uint64_t uid;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		if (opt == 'a')
			json_object_object_add(r, "all", json_object_new_boolean(1));
		else if (opt == 'u' && parse_u64(optarg, &uid))
			json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
		else {
			json_object_put(r);
			return usage_err(g_cmd);
		}
	}
	rc = list_all(r, &rep);
	if (rc) {
		json_object_put(rep);
		return rc;
	}
	if (g_json) {
		print_json(rep);
		json_object_put(rep);
		return 0;
	}
	json_object_object_get_ex(rep, "sessions", &arr);
	printf("%-6s %-24s %-9s %-20s %s\n", "UID", "SESSION", "STATE", "CREATED", "FDS (token:label)");
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		struct json_object *s = json_object_array_get_idx(arr, i), *fds;
		time_t t = (time_t)hl_jint(s, "created", 0);
		char tb[32];
		struct tm tm;

		strftime(tb, sizeof(tb), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		printf("%-6lld %-24s %-9s %-20s", (long long)hl_jint(s, "uid", 0), hl_jstr(s, "name"), hl_jstr(s, "state"), tb);
		if (json_object_object_get_ex(s, "fds", &fds))
			for (size_t k = 0; k < json_object_array_length(fds); k++) {
				struct json_object *f = json_object_array_get_idx(fds, k);
				const char *l = hl_jstr(f, "label");

				printf(" %lld%s%s%s%s", (long long)hl_jint(f, "token", 0), l && *l ? ":" : "", l ? l : "",
				       hl_jbool(f, "hugetlb", false) ? "[hugetlb]" : "",
				       hl_jbool(f, "retrieved", false) ? "[retrieved]" : "");
			}
		printf("\n");
	}
	if (!arr || !json_object_array_length(arr))
		printf("(no sessions)\n");
	json_object_put(rep);
	return 0;
}

struct upd_ctx {
	bool saw_kexec;		/* the barrier passed; the agent saves its state */
	bool saw_reboot;	/* the state is saved and the agent reboots */
};

static void on_event(const char *ev, void *arg)
{
	struct upd_ctx *u = arg;
	struct json_object *o = hl_json_parse(ev, strlen(ev));
	const char *stage = hl_jstr(o, "stage");

	if (stage && !strcmp(stage, "kexec"))
		u->saw_kexec = true;
	if (stage && !strcmp(stage, "reboot"))
		u->saw_reboot = true;
	if (g_json)
		printf("%s\n", ev);
	else if (!g_quiet && stage) {
		time_t t = time(NULL);
		struct tm tm;
		char tb[16];

		strftime(tb, sizeof(tb), "%H:%M:%S", localtime_r(&t, &tm));
		printf("[%s] %-9s %s\n", tb, stage, hl_jstr(o, "message") ? hl_jstr(o, "message") : "");
	}
	fflush(stdout);
	json_object_put(o);
}

/*
 * The new command line: /proc/cmdline with --reuse-cmdline, then --append.
 * Returns 0 or an exit code.
 */
static int new_cmdline(bool reuse, const char *append, char cmdline[HL_MAX_CMDLINE + 1])
{
	cmdline[0] = '\0';
	if (reuse) {
		char *cl = hl_read_file("/proc/cmdline", HL_MAX_CMDLINE, NULL);
		size_t l;

		if (!cl) {
			tool_err(errno, "cannot read /proc/cmdline");
			return EXIT_PREFLIGHT;
		}
		l = strlen(cl);
		while (l && (cl[l - 1] == '\n' || cl[l - 1] == ' '))
			cl[--l] = '\0';
		snprintf(cmdline, HL_MAX_CMDLINE + 1, "%s", cl);
		free(cl);
	}
	if (append) {
		size_t l = strlen(cmdline);

		if (l + strlen(append) + 2 > HL_MAX_CMDLINE + 1) {
			tool_err(E2BIG, "command line too long");
			return EXIT_USAGE;
		}
		snprintf(cmdline + l, HL_MAX_CMDLINE + 1 - l, "%s%s", l ? " " : "", append);
	}
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option o[] = {
		{ "require-hugetlb", no_argument, NULL, 'H' }, { "kernel", required_argument, NULL, 'k' },
		{ "append", required_argument, NULL, 'a' }, { "reuse-cmdline", no_argument, NULL, 'r' },
		{ "running-kernel", required_argument, NULL, 'R' }, { 0 }
	};
	const char *kernel = NULL, *append = NULL, *running = NULL;
	char cmdline[HL_MAX_CMDLINE + 1] = "";
	bool req_h = false, reuse = false;
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		switch (opt) {
		case 'H': req_h = true; break;
		case 'k': kernel = optarg; break;
		case 'a': append = optarg; break;
		case 'r': reuse = true; break;
		case 'R': running = optarg; break;
		default: return usage_err(g_cmd);
		}
	}
	if (optind < argc)
		return usage_err(g_cmd);
	if (!kernel && (append || reuse || running)) {
		tool_err(EINVAL, "--append, --reuse-cmdline and --running-kernel go with --kernel");
		return usage_err(g_cmd);
	}
	/* without --append: the command line an update with --reuse-cmdline would pass */
	if (kernel) {
		rc = new_cmdline(reuse || !append, append, cmdline);
		if (rc)
			return rc;
	}
	return hl_check_run(g_json, g_sock, req_h, kernel, kernel ? cmdline : NULL, running);
}

static int cmd_update(int argc, char **argv)
{
	static const struct option o[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' }, { "reuse-cmdline", no_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' }, { "dry-run", no_argument, NULL, 'n' },
		{ "force", no_argument, NULL, 'f' }, { "running-kernel", required_argument, NULL, 'R' }, { 0 }
	};
	const char *kernel = NULL, *initrd = NULL, *append = NULL, *running = NULL;
	char kpath[PATH_MAX], ipath[PATH_MAX], rpath[PATH_MAX], cmdline[HL_MAX_CMDLINE + 1] = "";
	bool reuse = false, dry = false, force = false;
	uint64_t timeout_s = 30;
	struct upd_ctx u = { 0 };
	struct json_object *r, *rep = NULL;
	hl_client *c;
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		switch (opt) {
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'a': append = optarg; break;
		case 'r': reuse = true; break;
		case 'n': dry = true; break;
		case 'f': force = true; break;
		case 'R': running = optarg; break;
		case 't':
			if (!parse_u64(optarg, &timeout_s) || timeout_s < 1 || timeout_s > 3600) {
				tool_err(EINVAL, "--timeout must be 1..3600 seconds");
				return EXIT_USAGE;
			}
			break;
		default: return usage_err(g_cmd);
		}
	}
	if (!kernel || (!append && !reuse)) {
		tool_err(EINVAL, "update needs --kernel and --append or --reuse-cmdline");
		return EXIT_USAGE;
	}
	if (!realpath(kernel, kpath)) {
		tool_err(errno, "kernel %s: %s", kernel, strerror(errno));
		return EXIT_PREFLIGHT;
	}
	if (running && !realpath(running, rpath)) {
		tool_err(errno, "running kernel image %s: %s", running, strerror(errno));
		return EXIT_PREFLIGHT;
	}
	if (initrd && !realpath(initrd, ipath)) {
		tool_err(errno, "initrd %s: %s", initrd, strerror(errno));
		return EXIT_PREFLIGHT;
	}
	rc = new_cmdline(reuse, append, cmdline);
	if (rc)
		return rc;
	if (!hl_param_on(cmdline, "kho") || !hl_param_on(cmdline, "liveupdate")) {
		tool_err(EINVAL, "preflight: the new command line must keep kho=on and liveupdate=on (command line: %s)",
			 cmdline);
		return EXIT_PREFLIGHT;
	}
	{
		/*
		 * The image itself, before anything else: a file that is no
		 * loadable kernel fails here without the agent. Whether it can
		 * take what is preserved the agent decides (it knows every
		 * session), before it loads or freezes anything.
		 */
		struct hl_kimage ki;
		char err[512];

		rc = hl_kimage_inspect(kpath, 0, &ki, err, sizeof(err));
		if (rc < 0) {
			tool_err(-rc, "preflight: kernel image refused: %s; %s; nothing was changed", err,
				 HL_KIMAGE_FIX);
			return EXIT_PREFLIGHT;
		}
	}
	if (geteuid() != 0) {
		tool_err(EPERM, "update needs root");
		return EXIT_FAIL;
	}
	if (connect_agent(&c) < 0)
		return EXIT_NOAGENT;
	hl_set_event_callback(c, on_event, &u);
	r = req("update");
	json_object_object_add(r, "kernel", json_object_new_string(kpath));
	if (initrd)
		json_object_object_add(r, "initrd", json_object_new_string(ipath));
	if (running)
		json_object_object_add(r, "running_kernel", json_object_new_string(rpath));
	json_object_object_add(r, "cmdline", json_object_new_string(cmdline));
	json_object_object_add(r, "timeout_ms", json_object_new_int64((int64_t)timeout_s * 1000));
	if (dry)
		json_object_object_add(r, "dry_run", json_object_new_boolean(1));
	if (force)
		json_object_object_add(r, "force", json_object_new_boolean(1));
	if (!g_quiet && !g_json)
		printf("update: kernel %s%s%s\n        cmdline %s\n", kpath, initrd ? ", initrd " : "", initrd ? ipath : "",
		       cmdline);
	{
		const char *s = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
		char *reps = NULL;

		rc = hl_call_json(c, s, -1, &reps, NULL);
		json_object_put(r);
		if (reps)
			rep = hl_json_parse(reps, strlen(reps));
		free(reps);
	}
	if (rc == 0) {
		if (g_json)
			print_json(rep);
		else if (!g_quiet)
			printf("update %lld: %s\n", (long long)hl_jint(rep, "update", 0),
			       hl_jbool(rep, "dry_run", false) ? "dry run passed (kernel loaded and unloaded)" :
			       "kexec done");
		rc = EXIT_OK;
	} else if ((rc == -ECONNRESET || rc == -EPIPE) && u.saw_reboot) {
		/* only after "reboot": the state is saved, the kexec is under way */
		if (!g_quiet)
			printf("update: the machine is rebooting into the new kernel\n");
		rc = EXIT_OK;
	} else if (rc == -ECONNRESET || rc == -EPIPE) {
		tool_err(-rc, "connection to the agent lost %s; the update did not happen "
			 "(see 'hugelivectl status' once the agent is back)",
			 u.saw_kexec ? "while it saved its state" : "during the update");
		rc = EXIT_NOAGENT;
	} else {
		int code = -rc;
		const char *msg = hl_last_error(c);
		const char *stage = rep ? hl_jstr(rep, "stage") : NULL;

		tool_err(code, "%s", msg[0] ? msg : strerror(code));
		if (code == ECANCELED || code == ETIMEDOUT)
			rc = EXIT_CANCELLED;
		else if (code == ECONNRESET || code == EPIPE)
			rc = EXIT_NOAGENT;
		else if (code == EPERM || code == EBUSY)
			rc = EXIT_FAIL;
		else if (stage && (!strcmp(stage, "barrier") || !strcmp(stage, "kexec") || !strcmp(stage, "reboot")))
			rc = EXIT_KEXEC;
		else
			rc = EXIT_PREFLIGHT;
	}
	json_object_put(rep);
	hl_disconnect(c);
	return rc;
}

static int session_cmd(const char *op, int argc, char **argv)
{
	static const struct option o[] = {
		{ "session", required_argument, NULL, 's' }, { "uid", required_argument, NULL, 'u' },
		{ "all", no_argument, NULL, 'a' }, { 0 }
	};
	struct json_object *r = req(op), *rep;
	bool have = false, all = false;
	uint64_t uid;
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		if (opt == 's') {
			json_object_object_add(r, "session", json_object_new_string(optarg));
			have = true;
		} else if (opt == 'u' && parse_u64(optarg, &uid)) {
			json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
		} else if (opt == 'a' && !strcmp(op, "finish")) {
			json_object_object_add(r, "all", json_object_new_boolean(1));
			all = true;
		} else {
			json_object_put(r);
			return usage_err(g_cmd);
		}
	}
	if (!have && !all) {
		json_object_put(r);
		tool_err(EINVAL, "%s needs --session%s", op, !strcmp(op, "finish") ? " or --all" : "");
		return EXIT_USAGE;
	}
	rc = call_once(r, &rep);
	if (!rc) {
		if (g_json)
			print_json(rep);
		else if (all) {
			struct json_object *d, *f;

			json_object_object_get_ex(rep, "finished", &d);
			json_object_object_get_ex(rep, "failed", &f);
			printf("finished %zu session(s), %zu failed\n", d ? json_object_array_length(d) : 0,
			       f ? json_object_array_length(f) : 0);
			if (f && json_object_array_length(f))
				rc = EXIT_FAIL;
		} else if (!g_quiet) {
			printf("%s: ok\n", op);
		}
	}
	json_object_put(rep);
	return rc;
}

static int cmd_preserve(int argc, char **argv)
{
	static const struct option o[] = {
		{ "session", required_argument, NULL, 's' }, { "token", required_argument, NULL, 't' },
		{ "fd", required_argument, NULL, 'f' }, { "file", required_argument, NULL, 'F' },
		{ "label", required_argument, NULL, 'l' }, { "create", no_argument, NULL, 'c' },
		{ "uid", required_argument, NULL, 'u' }, { 0 }
	};
	const char *session = NULL, *label = NULL, *file = NULL;
	uint64_t token = 0, fdn = 0, uid = 0;
	bool have_tok = false, have_fd = false, create = false, have_uid = false;
	struct json_object *r;
	hl_client *c;
	int opt, rc, fd;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		switch (opt) {
		case 's': session = optarg; break;
		case 't': have_tok = parse_u64(optarg, &token); if (!have_tok) goto bad; break;
		case 'f': have_fd = parse_u64(optarg, &fdn) && fdn < INT_MAX; if (!have_fd) goto bad; break;
		case 'F': file = optarg; break;
		case 'l': label = optarg; break;
		case 'c': create = true; break;
		case 'u': have_uid = parse_u64(optarg, &uid); if (!have_uid) goto bad; break;
		default: goto bad;
		}
	}
	if (!session || !have_tok || (have_fd == !!file))
		goto bad;
	if (file) {
		fd = open(file, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			tool_err(errno, "%s: %s", file, strerror(errno));
			return EXIT_FAIL;
		}
	} else {
		fd = (int)fdn;
		if (fcntl(fd, F_GETFD) < 0) {
			tool_err(EBADF, "fd %d is not open", fd);
			return EXIT_FAIL;
		}
	}
	if (connect_agent(&c) < 0)
		return EXIT_NOAGENT;
	if (create) {
		r = req("create");
		json_object_object_add(r, "session", json_object_new_string(session));
		if (have_uid)
			json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
		const char *s = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);

		rc = hl_call_json(c, s, -1, NULL, NULL);
		json_object_put(r);
		if (rc < 0 && rc != -EEXIST) {
			tool_err(-rc, "create: %s", hl_last_error(c));
			hl_disconnect(c);
			return EXIT_FAIL;
		}
	}
	r = req("preserve");
	json_object_object_add(r, "session", json_object_new_string(session));
	json_object_object_add(r, "token", json_object_new_int64((int64_t)token));
	if (label)
		json_object_object_add(r, "label", json_object_new_string(label));
	if (have_uid)
		json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
	rc = call(c, r, fd, NULL, NULL);
	hl_disconnect(c);
	if (file)
		close(fd);
	if (!rc && !g_quiet)
		printf("preserved %s token %llu in session %s\n", file ? file : "fd", (unsigned long long)token, session);
	return rc;
bad:
	return usage_err("preserve");
}

static int cmd_retrieve(int argc, char **argv)
{
	static const struct option o[] = {
		{ "session", required_argument, NULL, 's' }, { "token", required_argument, NULL, 't' },
		{ "fd", required_argument, NULL, 'f' }, { "finish", no_argument, NULL, 'x' },
		{ "uid", required_argument, NULL, 'u' }, { 0 }
	};
	const char *session = NULL;
	uint64_t token = 0, target = 3, uid = 0;
	bool have_tok = false, finish = false, have_uid = false;
	struct json_object *r;
	hl_client *c;
	int opt, rc, fd = -1;

	while ((opt = tool_getopt(argc, argv, "+", o)) != -1) {
		switch (opt) {
		case 's': session = optarg; break;
		case 't': have_tok = parse_u64(optarg, &token); if (!have_tok) goto bad; break;
		case 'f': if (!parse_u64(optarg, &target) || target > 1023) goto bad; break;
		case 'x': finish = true; break;
		case 'u': have_uid = parse_u64(optarg, &uid); if (!have_uid) goto bad; break;
		default: goto bad;
		}
	}
	if (!session || !have_tok || optind >= argc)
		goto bad;
	if (connect_agent(&c) < 0)
		return EXIT_NOAGENT;
	r = req("retrieve");
	json_object_object_add(r, "session", json_object_new_string(session));
	json_object_object_add(r, "token", json_object_new_int64((int64_t)token));
	if (have_uid)
		json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
	rc = call(c, r, -1, NULL, &fd);
	if (rc) {
		hl_disconnect(c);
		return rc;
	}
	if (finish) {
		r = req("finish");
		json_object_object_add(r, "session", json_object_new_string(session));
		if (have_uid)
			json_object_object_add(r, "uid", json_object_new_int64((int64_t)uid));
		rc = call(c, r, -1, NULL, NULL);
		if (rc) {
			hl_disconnect(c);
			close(fd);
			return rc;
		}
	}
	hl_disconnect(c);
	if (fd != (int)target) {
		if (dup2(fd, (int)target) < 0) {
			tool_err(errno, "dup2: %s", strerror(errno));
			return EXIT_FAIL;
		}
		close(fd);
	}
	hl_set_cloexec((int)target, false);
	execvp(argv[optind], argv + optind);
	tool_err(errno, "exec %s: %s", argv[optind], strerror(errno));
	return 127;
bad:
	return usage_err("retrieve");
}

static int cmd_subscribe(int argc, char **argv)
{
	static const struct option o[] = {
		{ "refuse", required_argument, NULL, 'r' }, { "on-prepare", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' }, { 0 }
	};
	const char *refuse = NULL, *onprep = NULL;
	uint64_t count = 0, seen = 0;
	hl_client *c;
	int opt, rc;

	while ((opt = tool_getopt(argc, argv, "", o)) != -1) {
		if (opt == 'r')
			refuse = optarg;
		else if (opt == 'p')
			onprep = optarg;
		else if (opt == 'n' && parse_u64(optarg, &count))
			;
		else
			return usage_err(g_cmd);
	}
	if (connect_agent(&c) < 0)
		return EXIT_NOAGENT;
	rc = hl_subscribe(c);
	if (rc < 0) {
		tool_err(-rc, "subscribe: %s", hl_last_error(c));
		hl_disconnect(c);
		return EXIT_FAIL;
	}
	if (!g_quiet) {
		printf("subscribed; waiting for update events\n");
		fflush(stdout);
	}
	for (;;) {
		struct hl_event ev;

		rc = hl_wait_event(c, -1, &ev);
		if (rc < 0)
			break;
		if (ev.type == HL_EVENT_PREPARE) {
			int ok = 1;

			if (refuse)
				ok = 0;
			else if (onprep)
				ok = system(onprep) == 0;
			if (!g_quiet)
				printf("prepare for update %llu: %s\n", (unsigned long long)ev.update_id,
				       ok ? "ready" : "refusing");
			fflush(stdout);
			rc = ok ? hl_ready(c, ev.update_id)
				: hl_refuse(c, ev.update_id, refuse ? refuse : "--on-prepare command failed");
		} else if (ev.type == HL_EVENT_RESUME) {
			if (!g_quiet)
				printf("resume after update %llu: %s\n", (unsigned long long)ev.update_id, ev.text);
			fflush(stdout);
			if (count && ++seen >= count)
				break;
		}
	}
	hl_disconnect(c);
	return rc == -ECONNRESET ? EXIT_OK : rc < 0 ? EXIT_FAIL : EXIT_OK;
}

static int run(int argc, char **argv)
{
	const char *cmd;
	int opt;

	/* global options before the command (they may also follow it) */
	while ((opt = tool_getopt(argc, argv, "+", NULL)) != -1)
		return usage_err("");
	if (optind >= argc) {
		tool_err(EINVAL, "no command (hugelivectl --help lists them)");
		if (!g_json)
			usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 1;
	g_cmd = cmd;
	if (!strcmp(cmd, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(argc, argv);
	if (!strcmp(cmd, "sessions") || !strcmp(cmd, "list")) {
		g_cmd = "sessions";
		return cmd_sessions(argc, argv);
	}
	if (!strcmp(cmd, "update"))
		return cmd_update(argc, argv);
	if (!strcmp(cmd, "finish") || !strcmp(cmd, "create") || !strcmp(cmd, "destroy"))
		return session_cmd(cmd, argc, argv);
	if (!strcmp(cmd, "preserve"))
		return cmd_preserve(argc, argv);
	if (!strcmp(cmd, "retrieve"))
		return cmd_retrieve(argc, argv);
	if (!strcmp(cmd, "subscribe"))
		return cmd_subscribe(argc, argv);
	g_cmd = "";
	tool_err(EINVAL, "unknown command \"%s\" (hugelivectl --help lists them)", cmd);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = run(argc, argv);
	if (g_json && rc != EXIT_OK && g_err[0])
		print_json_error(rc);
	return rc;
}
