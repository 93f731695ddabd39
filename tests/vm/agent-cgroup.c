// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=1024 timeout=600 userspace=1 cmdline="hugepages=32"
 *
 * Issue 9 item 14: retrieved pages are charged to the client's cgroups, not
 * the agent's, when the client retrieves through `retrieve` + `handoff`
 * (the agent hands the client its own session fd and the client issues
 * LIVEUPDATE_SESSION_RETRIEVE_FD itself; hl_retrieve_fd_self() in
 * libhugelive; this static program speaks the same protocol). A plain
 * retrieve, where the agent issues the ioctl, still charges the agent:
 * that is the old behaviour, asserted here as the contrast.
 *
 * Both generations: cgroup2 on /sys/fs/cgroup with +hugetlb +memory in the
 * root's subtree_control; hugelived (and its keeper) in cgroup "agent",
 * the client service (uid 1000) in cgroup "svc"; the scenario process
 * itself goes back to the root cgroup.
 *
 * gen 0: the client fills four memfds with the pattern: token 1 hugetlb
 *        32 MiB and token 3 hugetlb 16 MiB (2 MiB pages), token 2 shmem
 *        16 MiB and token 4 shmem 16 MiB; session "cg", preserves all four
 *        through the agent, subscribes, answers ready; hugelivectl update.
 * gen 1: the client (uid 1000, cgroup svc) reconnects and:
 *        token 1 with handoff: svc's hugetlb.2MB.current is 32 MiB right
 *          after the ioctl (and after mapping and checking every word),
 *          agent's stays 0;
 *        token 3 plain retrieve: agent's hugetlb.2MB.current becomes
 *          16 MiB, svc's stays 32 MiB;
 *        token 2 with handoff: svc's memory.current grows by at least
 *          16 MiB, agent's by less than 4 MiB;
 *        token 4 plain: agent's memory.current grows by at least 16 MiB,
 *          svc's by less than 4 MiB;
 *        every word of every file verified; finish; once the files are
 *        closed both hugetlb counters are back to 0.
 */
#include "lib/agent.h"

#define USER		1000
#define CG		"/sys/fs/cgroup"
#define CG_AGENT	CG "/agent"
#define CG_SVC		CG "/svc"
#define HUGE1		(32ULL << 20)
#define HUGE3		(16ULL << 20)
#define SHM_SIZE	(16ULL << 20)
#define SLACK		(4LL << 20)	/* unrelated growth allowed in memory.current */
#define SEED		0x6367726f7570ULL

static const struct {
	int token;
	bool huge;
	uint64_t size;
	const char *label;
} files[] = {
	{ 1, true, HUGE1, "huge handoff" },
	{ 2, false, SHM_SIZE, "shmem handoff" },
	{ 3, true, HUGE3, "huge plain" },
	{ 4, false, SHM_SIZE, "shmem plain" },
};

static long long cg_val(const char *dir, const char *file)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return hl_read_ll(path);
}

#define HUGE_CUR(d)	cg_val(d, "hugetlb.2MB.current")
#define MEM_CUR(d)	cg_val(d, "memory.current")

/* Move pid into the cgroup directory dir (CG itself for the root). */
static int cg_move(const char *dir, long pid)
{
	char path[200], buf[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(buf, sizeof(buf), "%ld", pid);
	return hl_write_str(path, buf);
}

/* "0::/name" of /proc/PID/cgroup is "/name"? */
static bool in_cgroup(long pid, const char *name)
{
	char path[64], buf[256], want[80];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	snprintf(want, sizeof(want), "0::%s\n", name);
	return ok && !strcmp(buf, want);
}

static bool cg_setup(void)
{
	char ctl[256] = "";
	FILE *f;
	int rc;

	mkdir(CG, 0755);
	rc = mount("none", CG, "cgroup2", 0, NULL) ? errno : 0;
	if (!hl_ok(!rc || rc == EBUSY, "cgroup2 on " CG " (%s)", rc ? strerror(rc) : "mounted"))
		return false;
	rc = hl_write_str(CG "/cgroup.subtree_control", "+hugetlb +memory") ? errno : 0;
	if (!hl_ok(!rc, "+hugetlb +memory written to the root's subtree_control (%s)",
		   rc ? strerror(rc) : "ok"))
		return false;
	f = fopen(CG "/cgroup.subtree_control", "r");
	if (f) {
		if (!fgets(ctl, sizeof(ctl), f))
			ctl[0] = 0;
		fclose(f);
	}
	hl_ok(strstr(ctl, "hugetlb") && strstr(ctl, "memory"), "subtree_control: %s", ctl);
	mkdir(CG_AGENT, 0755);
	mkdir(CG_SVC, 0755);
	return hl_ok(HUGE_CUR(CG_AGENT) == 0 && HUGE_CUR(CG_SVC) == 0 &&
		     MEM_CUR(CG_AGENT) >= 0 && MEM_CUR(CG_SVC) >= 0,
		     "cgroups agent and svc exist, hugetlb.2MB.current 0/0, memory.current %lld/%lld",
		     MEM_CUR(CG_AGENT), MEM_CUR(CG_SVC));
}

/* hugelived started inside cgroup "agent"; the scenario process leaves it. */
static bool start_agent_in_cgroup(void)
{
	long long pid;
	int rc;

	if (!hl_ok(!cg_move(CG_AGENT, getpid()), "scenario process into cgroup agent to start hugelived"))
		return false;
	rc = ag_start_agent(NULL);
	cg_move(CG, getpid());
	if (!hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc))
		return false;
	hl_ok(in_cgroup(getpid(), "/"), "scenario process back in the root cgroup");
	pid = ag_agent_pid();
	return hl_ok(pid > 0 && in_cgroup(pid, "/agent"), "hugelived (pid %lld) runs in cgroup /agent", pid);
}

/* Child: join svc (as root) and become uid 1000. */
static bool svc_enter(void)
{
	if (!ag_ok(!cg_move(CG_SVC, getpid()) && in_cgroup(getpid(), "/svc"), "client: in cgroup /svc"))
		return false;
	return ag_ok(!ag_drop_to(USER), "client: running as uid %d", USER);
}

static int svc_serve(void *arg)
{
	struct ag_client c = { .fd = -1 };
	struct ag_mem m[4];
	char ev[1024], buf[64];
	int rc;

	(void)arg;
	if (!svc_enter())
		return 1;
	for (int i = 0; i < 4; i++) {
		if (!ag_ok(!ag_mem_new(&m[i], files[i].label, files[i].size, files[i].huge,
				       SEED + (uint64_t)files[i].token),
			   "client: token %d: %llu MiB %s memfd filled with the pattern", files[i].token,
			   (unsigned long long)(files[i].size >> 20), files[i].huge ? "hugetlb" : "shmem"))
			return 1;
	}
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "client: connected (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"hello\",\"version\":1,\"client\":\"cg\"");
	ag_ok(!rc && ag_jint(c.reply, "uid", -1) == USER, "client: hello: uid %lld", ag_jint(c.reply, "uid", -1));
	rc = ag_call(&c, -1, NULL, "\"op\":\"create\",\"session\":\"cg\"");
	if (!ag_ok(!rc, "client: create session cg (%s)", ag_res(rc, &c)))
		return 1;
	for (int i = 0; i < 4; i++) {
		rc = ag_call(&c, m[i].fd, NULL, "\"op\":\"preserve\",\"session\":\"cg\",\"token\":%d,\"label\":\"%s\"",
			     files[i].token, files[i].label);
		if (!ag_ok(!rc, "client: preserve token %d (%s)", files[i].token, ag_res(rc, &c)))
			return 1;
	}
	rc = ag_call(&c, -1, NULL, "\"op\":\"subscribe\"");
	if (!ag_ok(!rc, "client: subscribed (%s)", ag_res(rc, &c)))
		return 1;
	ag_mark("ready");
	for (;;) {
		if (ag_event(&c, -1, ev, sizeof(ev)) < 0)
			return 0; /* the kexec ends it */
		if (ag_jstr(ev, "event", buf, sizeof(buf)) && !strcmp(buf, "prepare")) {
			unsigned long long id = (unsigned long long)ag_jint(ev, "update", 0);

			ag_hdr(&m[0])->prepared = id;
			ag_call(&c, -1, NULL, "\"op\":\"ready\",\"update\":%llu", id);
		}
	}
}

/* Retrieve token i's file, with handoff or plain; the fd or -1. */
static int svc_retrieve(struct ag_client *c, int i, bool handoff)
{
	int rc, fd = -1, sfd = -1;
	char be[16] = "";

	if (!handoff) {
		rc = ag_call(c, -1, &fd, "\"op\":\"retrieve\",\"session\":\"cg\",\"token\":%d", files[i].token);
		if (!ag_ok(!rc && fd >= 0 && ag_jbool(c->reply, "handoff") != 1,
			   "client: plain retrieve token %d: the agent retrieved it and sent the file (%s)",
			   files[i].token, ag_res(rc, c)))
			return -1;
		return fd;
	}
	rc = ag_call(c, -1, &sfd, "\"op\":\"retrieve\",\"session\":\"cg\",\"token\":%d,\"handoff\":true",
		     files[i].token);
	ag_jstr(c->reply, "backend", be, sizeof(be));
	if (!ag_ok(!rc && sfd >= 0 && ag_jbool(c->reply, "handoff") == 1 && !strcmp(be, "luo") &&
		   hl_fd_size(sfd) <= 0 && !ag_is_hugetlb(sfd),
		   "client: retrieve token %d with handoff: got the session fd, backend \"%s\" (%s)",
		   files[i].token, be, ag_res(rc, c)))
		return -1;
	fd = hl_luo_retrieve_fd(sfd, (uint64_t)files[i].token);
	ag_ok(fd >= 0, "client: LIVEUPDATE_SESSION_RETRIEVE_FD token %d on it, issued by the client (%s)",
	      files[i].token, fd >= 0 ? "ok" : strerror(errno));
	close(sfd);
	return fd;
}

static int svc_claim(void *arg)
{
	struct ag_client c = { .fd = -1 };
	struct ag_mem m[4];
	int fd[4] = { -1, -1, -1, -1 }, rc;
	long long ma, ms, a, s;
	char what[64];

	(void)arg;
	if (!svc_enter())
		return 1;
	rc = ag_connect(&c, 10000);
	if (!ag_ok(!rc, "client: connected (%s)", ag_errname(rc)))
		return 1;
	rc = ag_call(&c, -1, NULL, "\"op\":\"list\"");
	ag_ok(!rc && strstr(c.reply, "\"name\":\"cg\"") && strstr(c.reply, "\"incoming\""),
	      "client: session cg is incoming (%s)", ag_res(rc, &c));
	ag_ok(HUGE_CUR(CG_SVC) == 0 && HUGE_CUR(CG_AGENT) == 0,
	      "before any retrieve: hugetlb.2MB.current svc %lld agent %lld (want 0 0)",
	      HUGE_CUR(CG_SVC), HUGE_CUR(CG_AGENT));

	/* token 1, hugetlb, handoff: the client's hugetlb cgroup pays */
	fd[0] = svc_retrieve(&c, 0, true);
	if (fd[0] < 0)
		return 1;
	a = HUGE_CUR(CG_AGENT);
	s = HUGE_CUR(CG_SVC);
	ag_ok(s == (long long)HUGE1 && a == 0,
	      "handoff retrieve of 32 MiB hugetlb: hugetlb.2MB.current svc %lld (want %llu), agent %lld (want 0)",
	      s, HUGE1, a);
	if (!ag_mem_verify(fd[0], "token 1 (hugetlb, handoff)", true, HUGE1, SEED + 1, &m[0]))
		return 1;
	a = HUGE_CUR(CG_AGENT);
	s = HUGE_CUR(CG_SVC);
	ag_ok(s == (long long)HUGE1 && a == 0,
	      "after mapping and verifying token 1: svc %lld (want %llu), agent %lld (want 0)", s, HUGE1, a);
	ag_ok(ag_hdr(&m[0])->prepared > 0, "token 1 header: prepared for update %llu before the kexec",
	      (unsigned long long)ag_hdr(&m[0])->prepared);

	/* token 3, hugetlb, plain: the old behaviour, the agent's cgroup pays */
	fd[2] = svc_retrieve(&c, 2, false);
	if (fd[2] < 0)
		return 1;
	a = HUGE_CUR(CG_AGENT);
	s = HUGE_CUR(CG_SVC);
	ag_ok(a == (long long)HUGE3 && s == (long long)HUGE1,
	      "plain retrieve of 16 MiB hugetlb (old behaviour): agent %lld (want %llu), svc %lld (still %llu)",
	      a, HUGE3, s, HUGE1);
	if (!ag_mem_verify(fd[2], "token 3 (hugetlb, plain)", true, HUGE3, SEED + 3, &m[2]))
		return 1;
	ag_ok(HUGE_CUR(CG_AGENT) == (long long)HUGE3 && HUGE_CUR(CG_SVC) == (long long)HUGE1,
	      "mapping token 3 in svc moves no charge: agent %lld, svc %lld",
	      HUGE_CUR(CG_AGENT), HUGE_CUR(CG_SVC));

	/* token 2, shmem, handoff: the client's memcg pays */
	ma = MEM_CUR(CG_AGENT);
	ms = MEM_CUR(CG_SVC);
	fd[1] = svc_retrieve(&c, 1, true);
	if (fd[1] < 0)
		return 1;
	a = MEM_CUR(CG_AGENT) - ma;
	s = MEM_CUR(CG_SVC) - ms;
	ag_ok(s >= (long long)SHM_SIZE && a < SLACK,
	      "handoff retrieve of 16 MiB shmem: memory.current svc +%lld (want >= %llu), agent +%lld (want < %lld)",
	      s, SHM_SIZE, a, SLACK);
	if (!ag_mem_verify(fd[1], "token 2 (shmem, handoff)", false, SHM_SIZE, SEED + 2, &m[1]))
		return 1;

	/* token 4, shmem, plain: the agent's memcg pays */
	ma = MEM_CUR(CG_AGENT);
	ms = MEM_CUR(CG_SVC);
	fd[3] = svc_retrieve(&c, 3, false);
	if (fd[3] < 0)
		return 1;
	a = MEM_CUR(CG_AGENT) - ma;
	s = MEM_CUR(CG_SVC) - ms;
	ag_ok(a >= (long long)SHM_SIZE && s < SLACK,
	      "plain retrieve of 16 MiB shmem (old behaviour): memory.current agent +%lld (want >= %llu), svc +%lld (want < %lld)",
	      a, SHM_SIZE, s, SLACK);
	if (!ag_mem_verify(fd[3], "token 4 (shmem, plain)", false, SHM_SIZE, SEED + 4, &m[3]))
		return 1;

	rc = ag_call(&c, -1, NULL, "\"op\":\"finish\",\"session\":\"cg\"");
	ag_ok(!rc, "client: finish cg (%s)", ag_res(rc, &c));
	for (int i = 0; i < 4; i++) {
		munmap(m[i].p, m[i].size);
		close(fd[i]);
	}
	snprintf(what, sizeof(what), "%lld/%lld", HUGE_CUR(CG_SVC), HUGE_CUR(CG_AGENT));
	ag_ok(HUGE_CUR(CG_SVC) == 0 && HUGE_CUR(CG_AGENT) == 0,
	      "files closed: hugetlb.2MB.current svc/agent %s (want 0/0)", what);
	ag_close(&c);
	return 0;
}

static void gen0(void)
{
	struct ag_child svc;

	if (!cg_setup() || !start_agent_in_cgroup())
		return;
	ag_fork(&svc, "svc", svc_serve, NULL);
	if (!hl_ok(ag_relay(&svc, "ready", 120000), "client service (uid %d, cgroup svc) preserved 4 files", USER))
		return;
	ag_update(120);
}

static void gen1(void)
{
	struct ag_child svc;
	int rc;

	if (!cg_setup() || !start_agent_in_cgroup())
		return;
	ag_fork(&svc, "svc", svc_claim, NULL);
	rc = ag_wait_child(&svc, 300000);
	hl_ok(rc == 0, "client service retrieved and verified all 4 files (exit %d)", rc);
}

int main(void)
{
	if (hl_gen() == 0)
		gen0();
	else
		gen1();
	return hl_exit();
}
