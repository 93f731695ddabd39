/* SPDX-License-Identifier: MIT */
/*
 * Live-agent fuzzer: hugelived on hugelive-fakeluo gets random well-formed
 * and malformed requests, with random kinds of passed fds, from root and
 * from uid NOBODY at once, for $HL_FUZZ_SECONDS (default 60) seconds. Root's
 * status is probed throughout; at the end the invariant is checked: the
 * agent is the same process, root can still `status`, root's own session is
 * unchanged, and an update on the fake backend works and carries it.
 * usage: fuzz_agent BINDIR   (root; seed from $HL_FUZZ_SEED, else time)
 */
#include "tap.h"
#include "harness.h"
#include "hugelive.h"
#include "common/proto.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS_PER_UID 2
#define MAX_CONNS 6

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static int pick(int n)
{
	return (int)(rnd() % (uint64_t)n);
}

static const char *const ops[] = {
	"hello", "status", "create", "preserve", "list", "retrieve", "finish", "destroy",
	"subscribe", "ready", "refuse", "update", "bogus", "", "STATUS",
};

/* Session names the workers use; root's own "rootfz" is never among them. */
static const char *const names[] = {
	"f0", "f1", "f2", "f3", "a.b_c-d", "-bad", "", "x y", "rootfz2",
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", "\xff\xfe", "..",
};

static void rand_str(char *out, size_t max)
{
	size_t n = (size_t)pick((int)max);

	for (size_t i = 0; i < n; i++) {
		int k = pick(10);

		out[i] = k < 7 ? (char)('a' + pick(26)) : k < 8 ? (char)(1 + pick(31)) : k < 9 ? '"' : (char)(128 + pick(128));
	}
	out[n] = '\0';
}

/* JSON string literal of s (escaped by json-c), appended to buf. */
static size_t add_jstr(char *buf, size_t o, size_t cap, const char *s)
{
	struct json_object *j = json_object_new_string(s);
	int n = snprintf(buf + o, cap - o, "%s", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));

	json_object_put(j);
	return n > 0 && (size_t)n < cap - o ? o + (size_t)n : o;
}

static size_t rand_value(char *buf, size_t o, size_t cap)
{
	static const char *const lits[] = {
		"0", "1", "-1", "18446744073709551615", "9223372036854775807", "1e999", "true", "false",
		"null", "[]", "{}", "[[[[[[[[[[1]]]]]]]]]]", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{}}}}}}", "0.5",
	};
	char s[160];
	int n;

	if (pick(3)) {
		n = snprintf(buf + o, cap - o, "%s", lits[pick((int)HL_ARRAY_SIZE(lits))]);
		return n > 0 && (size_t)n < cap - o ? o + (size_t)n : o;
	}
	rand_str(s, sizeof(s) - 1);
	return add_jstr(buf, o, cap, s);
}

/* A request: mostly well-formed for its op, sometimes with wrong fields. */
static size_t build_request(char *buf, size_t cap, bool root, bool *is_update)
{
	const char *op = ops[pick((int)HL_ARRAY_SIZE(ops))];
	size_t o = 0;
	int n;

	*is_update = !strcmp(op, "update");
	n = snprintf(buf, cap, "{\"v\":%d,\"id\":%d,\"op\":", pick(10) ? 1 : pick(4), pick(1000));
	o = (size_t)n;
	o = add_jstr(buf, o, cap, op);
	if (pick(4)) {
		o += (size_t)snprintf(buf + o, cap - o, ",\"session\":");
		o = add_jstr(buf, o, cap, names[pick((int)HL_ARRAY_SIZE(names))]);
	}
	if (pick(2))
		o += (size_t)snprintf(buf + o, cap - o, ",\"token\":%d", pick(6) - 1);
	if (!pick(4)) {
		char lbl[200];

		rand_str(lbl, sizeof(lbl) - 1);
		o += (size_t)snprintf(buf + o, cap - o, ",\"label\":");
		o = add_jstr(buf, o, cap, lbl);
	}
	if (!pick(5))
		o += (size_t)snprintf(buf + o, cap - o, ",\"uid\":%d", pick(3) == 0 ? 0 : pick(2) ? NOBODY : 1000);
	if (!pick(6))
		o += (size_t)snprintf(buf + o, cap - o, ",\"all\":%s", pick(2) ? "true" : "1");
	if (!pick(6))
		o += (size_t)snprintf(buf + o, cap - o, ",\"update\":%d", pick(3));
	if (*is_update) {
		/* root never asks for a real kexec: that would end the run */
		o += (size_t)snprintf(buf + o, cap - o, ",\"kernel\":\"%s\",\"cmdline\":\"kho=on liveupdate=on\"%s",
				      pick(2) ? h_kernel() : "/nonexistent", root ? ",\"dry_run\":true" :
				      pick(2) ? ",\"dry_run\":true" : "");
	}
	for (int k = pick(3); k > 0 && o < cap - 300; k--) {
		char key[24];

		rand_str(key, 12);
		o += (size_t)snprintf(buf + o, cap - o, ",");
		o = add_jstr(buf, o, cap, key);
		o += (size_t)snprintf(buf + o, cap - o, ":");
		o = rand_value(buf, o, cap);
	}
	o += (size_t)snprintf(buf + o, cap - o, "}");
	return o < cap ? o : cap - 1;
}

/* Something that is not a valid request. */
static size_t build_garbage(char *buf, size_t cap, size_t *big)
{
	bool upd;
	size_t n;

	*big = 0;
	switch (pick(6)) {
	case 0: /* random bytes */
		n = (size_t)pick(512);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)pick(256);
		return n;
	case 1: /* a request cut short */
		n = build_request(buf, cap, false, &upd);
		return n ? (size_t)pick((int)n) : 0;
	case 2:
		return (size_t)snprintf(buf, cap, "%s", pick(2) ? "[1,2,3]" : "\"status\"");
	case 3: /* just over the size limit */
		*big = HL_MAX_MSG + 1 + (size_t)pick(100);
		return 0;
	case 4: /* deep nesting */
		n = 0;
		for (int i = 0; i < 40 && n < cap - 2; i++)
			buf[n++] = '{', n += (size_t)snprintf(buf + n, cap - n, "\"a\":");
		buf[n++] = '1';
		while (n < cap - 1 && pick(8))
			buf[n++] = '}';
		return n;
	default: /* trailing data after the object */
		n = build_request(buf, cap, false, &upd);
		return n + (size_t)snprintf(buf + n, cap - n, " {}");
	}
}

static int lingering_tcp(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s, peer;
	struct linger lg = { .l_onoff = 1, .l_linger = 2 };

	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
		if (ls >= 0)
			close(ls);
		return -1;
	}
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(ls);
		if (s >= 0)
			close(s);
		return -1;
	}
	peer = accept(ls, NULL, NULL);
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(ls);
	if (peer >= 0)
		close(peer);
	return s;
}

/* A random kind of fd to attach (caller closes it), or -1. */
static int random_fd(void)
{
	int p[2], fd;
	char path[64];

	switch (pick(11)) {
	case 0:
	case 1:
	case 2:
		return h_make_memfd("fuzz");
	case 3:
		if (pipe(p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case 4:
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case 5:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case 6:
		return eventfd(0, EFD_CLOEXEC);
	case 7: /* a memfd opened read-only */
		fd = h_make_memfd("ro");
		if (fd < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		p[0] = open(path, O_RDONLY | O_CLOEXEC);
		close(fd);
		return p[0];
	case 8:
		return lingering_tcp();
	case 9:
		return memfd_create("huge", MFD_CLOEXEC | MFD_HUGETLB);
	default:
		return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
}

static unsigned long n_replies, n_ok;

/* Read what is there; answer prepare events at random. Returns -1 on EOF. */
static int drain(int s)
{
	static char buf[HL_MAX_MSG + 1];

	for (int i = 0; i < 8; i++) {
		int fd = -1;
		bool tr;
		ssize_t n = hl_recv_packet(s, buf, sizeof(buf) - 1, &fd, NULL, &tr, true);

		if (fd >= 0)
			close(fd);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		buf[n] = '\0';
		n_replies++;
		n_ok += strstr(buf, "\"ok\":true") != NULL;
		if (strstr(buf, "\"prepare\"") && pick(2)) {
			struct json_object *o = hl_json_parse(buf, (size_t)n);
			char m[160];
			int l = snprintf(m, sizeof(m), "{\"v\":1,\"id\":7,\"op\":\"%s\",\"update\":%lld}",
					 pick(2) ? "ready" : "refuse", (long long)hl_jint(o, "update", 0));

			json_object_put(o);
			send(s, m, (size_t)l, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
	}
	return 0;
}

static void worker(bool root, uint64_t seed, int64_t deadline, int wfd)
{
	static char buf[HL_MAX_MSG + 256];
	int conns[MAX_CONNS];
	unsigned long sent = 0, garbage = 0, withfd = 0;
	ssize_t rc = 0;

	rng = seed;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAX_CONNS; i++)
		conns[i] = -1;
	while (hl_now_ms() < deadline) {
		int k = pick(MAX_CONNS), fd = -1;
		bool upd = false;
		size_t len, big = 0;

		if (conns[k] < 0 || !pick(30)) {
			if (conns[k] >= 0)
				close(conns[k]);
			conns[k] = h_raw_connect(SOCK_NONBLOCK);
			if (conns[k] < 0) {
				usleep(20000);
				continue;
			}
		}
		if (pick(5)) {
			len = build_request(buf, sizeof(buf), root, &upd);
		} else {
			len = build_garbage(buf, sizeof(buf), &big);
			garbage++;
		}
		if (big) {
			char *b = malloc(big);

			if (b) {
				memset(b, '{', big);
				rc = send(conns[k], b, big, MSG_DONTWAIT | MSG_NOSIGNAL);
				free(b);
			}
		} else if (!pick(40)) {
			int fds[2] = { h_make_memfd("a"), open("/dev/null", O_RDONLY | O_CLOEXEC) };

			h_send_two_fds(conns[k], buf, len, fds, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fds[0]);
			close(fds[1]);
		} else {
			if (!pick(3)) {
				fd = random_fd();
				withfd++;
			}
			rc = hl_send_packet(conns[k], buf, len, fd, true);
			if (fd >= 0)
				close(fd);
		}
		if (rc >= 0)
			sent++;
		if ((rc < 0 && rc != -EAGAIN && errno != EAGAIN) || (pick(4) && drain(conns[k]) < 0)) {
			close(conns[k]); /* dropped by the agent (protocol violation) */
			conns[k] = -1;
			continue;
		}
		if (!pick(50)) {
			close(conns[k]); /* gone without reading */
			conns[k] = -1;
		}
	}
	dprintf(wfd, "%lu %lu %lu %lu %lu\n", sent, garbage, withfd, n_replies, n_ok);
	_exit(0);
}

static pid_t start_worker(bool root, uint64_t seed, int64_t deadline, int wfd)
{
	pid_t p = fork();

	if (p == 0) {
		if (!root && h_become(NOBODY) < 0)
			_exit(99);
		worker(root, seed, deadline, wfd);
	}
	return p;
}

/* root's own session "rootfz": 3 memfds with known labels and content */
static bool make_root_session(void)
{
	hl_client *c;
	bool good = hl_connect(h_sock, &c) == 0 && hl_create_session(c, "rootfz") == 0;

	for (int t = 1; good && t <= 3; t++) {
		char lbl[32], data[32];
		int fd;

		snprintf(lbl, sizeof(lbl), "root-label-%d", t);
		snprintf(data, sizeof(data), "root-data-%d", t);
		fd = h_make_memfd(data);
		good = fd >= 0 && hl_preserve_fd(c, "rootfz", (uint64_t)t, fd, lbl) == 0;
		if (fd >= 0)
			close(fd);
	}
	if (good)
		hl_disconnect(c);
	return good;
}

/* The rootfz entry of root's own list, as JSON text without volatile fields. */
static char *root_session_json(bool *incoming)
{
	hl_client *c;
	char *rep = NULL, *out = NULL;
	struct json_object *o, *arr;

	if (hl_connect(h_sock, &c) < 0)
		return NULL;
	if (hl_call_json(c, "{\"op\":\"list\"}", -1, &rep, NULL) == 0 && (o = hl_json_parse(rep, strlen(rep)))) {
		if (json_object_object_get_ex(o, "sessions", &arr))
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				struct json_object *e = json_object_array_get_idx(arr, i), *fds;

				if (!hl_jstr(e, "name") || strcmp(hl_jstr(e, "name"), "rootfz") ||
				    !json_object_object_get_ex(e, "fds", &fds))
					continue;
				if (incoming)
					*incoming = !strcmp(hl_jstr(e, "state") ? hl_jstr(e, "state") : "", "incoming");
				out = strdup(json_object_to_json_string_ext(fds, JSON_C_TO_STRING_PLAIN));
			}
		json_object_put(o);
	}
	free(rep);
	hl_disconnect(c);
	return out;
}

int main(int argc, char **argv)
{
	const char *secs = getenv("HL_FUZZ_SECONDS"), *seeds = getenv("HL_FUZZ_SEED");
	int seconds = secs ? atoi(secs) : 60, p[2], probes = 0, slow = 0, failed_probes = 0;
	uint64_t seed = seeds ? strtoull(seeds, NULL, 0) : (uint64_t)time(NULL);
	pid_t workers[2 * WORKERS_PER_UID];
	int64_t deadline, pid0, worst = 0;
	char *before, *after;
	unsigned long tot[5] = { 0, 0, 0, 0, 0 };
	int init = h_main_init(argc, argv, "fuzz_agent", "fuzz");

	if (init >= 0)
		return init;
	if (seconds <= 0)
		seconds = 60;
	diag("seed %llu, %d s, %d workers as root and %d as uid %d", (unsigned long long)seed, seconds,
	     WORKERS_PER_UID, WORKERS_PER_UID, NOBODY);
	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && make_root_session(), "agent up, root session rootfz with 3 fds")) {
		h_stop_all();
		return tap_done();
	}
	before = root_session_json(NULL);
	pid0 = h_agent_pid();
	if (pipe(p) < 0)
		return 1;
	deadline = hl_now_ms() + (int64_t)seconds * 1000;
	for (int i = 0; i < 2 * WORKERS_PER_UID; i++)
		workers[i] = start_worker(i < WORKERS_PER_UID, seed * 7919 + (uint64_t)i + 1, deadline, p[1]);
	close(p[1]);
	/* root's status stays served while the others hammer the agent */
	while (hl_now_ms() < deadline) {
		int64_t t0 = hl_now_ms(), dt;
		struct json_object *s = h_status();

		dt = hl_now_ms() - t0;
		probes++;
		if (!s)
			failed_probes++;
		if (dt > 2000)
			slow++;
		if (dt > worst)
			worst = dt;
		json_object_put(s);
		usleep(250000);
	}
	for (int i = 0; i < 2 * WORKERS_PER_UID; i++) {
		int st;

		waitpid(workers[i], &st, 0);
	}
	{
		FILE *f = fdopen(p[0], "r");
		unsigned long v[5];

		while (f && fscanf(f, "%lu %lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3], &v[4]) == 5)
			for (int i = 0; i < 5; i++)
				tot[i] += v[i];
		if (f)
			fclose(f);
	}
	diag("sent %lu messages (%lu malformed, %lu with an fd attached), read %lu replies (%lu ok); "
	     "%d status probes, worst %lld ms", tot[0], tot[1], tot[2], tot[3], tot[4], probes, (long long)worst);
	ok(tot[0] > 0 && tot[4] > 0, "the workers sent messages and got ok replies too (%lu sent, %lu ok)", tot[0],
	   tot[4]);
	ok(failed_probes == 0 && slow == 0, "root's status answered every probe within 2 s during the run "
	   "(%d probes, %d failed, %d slow, worst %lld ms)", probes, failed_probes, slow, (long long)worst);
	ok(h_agent_pid() == pid0, "the agent is the same process (no crash, no restart)");
	after = root_session_json(NULL);
	ok(before && after && !strcmp(before, after), "root's session rootfz is unchanged (%s)", after ? after : "gone");
	free(after);
	{
		char err[512];
		hl_client *c;
		int rc = -1;

		/* forced: the nobody workers subscribed and are gone (their sessions expect a barrier) */
		if (hl_connect(h_sock, &c) == 0) {
			char req[512];

			snprintf(req, sizeof(req), "{\"op\":\"update\",\"kernel\":\"%s\",\"cmdline\":\"kho=on liveupdate=on\","
				 "\"timeout_ms\":3000,\"force\":true}", h_kernel());
			rc = hl_call_json(c, req, -1, NULL, NULL);
			snprintf(err, sizeof(err), "%s", hl_last_error(c));
			hl_disconnect(c);
		}
		ok(rc == 0 && h_wait_gone((pid_t)pid0, 5000), "root's update on the fake backend works (%s)", err);
	}
	ok(h_agent_start(NULL) == 0, "the agent starts in the new 'kernel'");
	{
		bool incoming = false;
		int fd = -1;
		hl_client *c;

		after = root_session_json(&incoming);
		ok(incoming && after && before && strstr(after, "root-label-1") && strstr(after, "root-label-3"),
		   "root's session came through the update (%s)", after ? after : "gone");
		ok(hl_connect(h_sock, &c) == 0 && hl_retrieve_fd(c, "rootfz", 2, &fd) == 0 &&
		   h_memfd_has(fd, "root-data-2"), "root retrieves token 2 with its data");
		if (fd >= 0)
			close(fd);
		hl_disconnect(c);
		free(after);
	}
	free(before);
	ok(h_finish(), "no sanitizer reports in the agent / fakeluo / tool logs (%s)", h_dir);
	return h_exit(tap_done());
}
