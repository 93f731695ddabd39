// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=512 timeout=300 userspace=1 cmdline="hugepages=8"
 *
 * `hugelivectl check`, the operator's first step, on a ready kernel and on
 * one booted without liveupdate=on.
 *
 * gen 0 (the harness's kho=on liveupdate=on): check without an agent:
 *        exit 0, READY, PASS for cmdline-liveupdate, luo-device (free) and
 *        hugetlb-handler (probe on the device); --json says ready:true;
 *        --require-hugetlb passes. With hugelived running: still READY,
 *        the agent PASS, the device owned by it, hugetlb support reported
 *        by the agent. `hugelivectl update` with a command line lacking
 *        liveupdate=on is refused by preflight (exit 5, nothing loaded);
 *        --dry-run with --reuse-cmdline loads and unloads (exit 0). Then
 *        stop the agent and its keeper and kexec directly (not through the
 *        agent, which would refuse) into gen 1 with this command line minus
 *        liveupdate=on. Before that, a stand-in holder named "systemd"
 *        keeps /dev/liveupdate open (systemd v261+ owning live update):
 *        hugelived refuses to start and check fails luo-device, both
 *        naming systemd and what to do.
 * gen 1 (no liveupdate=on): check exits 1, NOT READY, FAIL cmdline-
 *        liveupdate with the reason "booted without liveupdate=on", FAIL
 *        luo-device (no /dev/liveupdate); --json ready:false naming the
 *        failed checks; hugelived refuses to start (exit 1) saying why.
 */
#include "lib/agent.h"

#include <linux/reboot.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/syscall.h>

static char out[65536];

/*
 * Issue 12 item 5: systemd v261+ may own /dev/liveupdate (one opener).
 * A stand-in holder named "systemd" keeps it open: hugelived refuses to
 * start naming the holder and what to do, check fails luo-device saying
 * systemd owns it; once it is gone the device is free again.
 */
static void systemd_holds_the_device(void)
{
	int p[2], rc;
	pid_t pid;
	char c = 0;

	if (pipe(p))
		return;
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/liveupdate", O_RDWR);

		prctl(PR_SET_NAME, "systemd");
		if (write(p[1], fd >= 0 ? "y" : "n", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (!hl_ok(read(p[0], &c, 1) == 1 && c == 'y', "a stand-in named systemd holds /dev/liveupdate"))
		goto out;
	rc = ag_run(out, sizeof(out), -1, "hugelived --daemonize 2>&1");
	hl_ok(rc != 0 && ag_contains(out, "(systemd)") && ag_contains(out, "systemd owns live update"),
	      "hugelived refuses to start beside it: exit %d, %s", rc, ag_line_with(out, "held by"));
	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	hl_ok(rc == 1 && ag_contains(out, "FAIL   luo-device") && ag_contains(out, "(systemd)") &&
	      ag_contains(out, "systemd owns live update"),
	      "check: NOT READY, exit %d, %s", rc, ag_line_with(out, "luo-device"));
out:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	hl_ok(ag_contains(out, "present and free"), "the stand-in gone, the device is free again (exit %d)", rc);
}

static void gen0(void)
{
	char cmdline[4096], next[4096] = "";
	const char *initrd = getenv("HUGELIVE_NEXT_INITRD");
	int rc, kfd, ifd;
	FILE *f;

	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	hl_ok(rc == 0 && ag_contains(out, "READY: 0 failure(s)"), "check without an agent: exit %d, %s", rc,
	      ag_line_with(out, "READY"));
	hl_ok(ag_contains(out, "PASS   cmdline-liveupdate") && ag_contains(out, "PASS   cmdline-kho") &&
	      ag_contains(out, "PASS   kernel-config") && ag_contains(out, "PASS   kexec") &&
	      ag_contains(out, "PASS   hugetlb-pools"),
	      "check: cmdline, kernel config, kexec and hugetlb pools pass");
	hl_ok(ag_contains(out, "PASS   luo-device           /dev/liveupdate present and free"),
	      "check: %s", ag_line_with(out, "luo-device"));
	hl_ok(ag_contains(out, "PASS   hugetlb-handler      kernel can preserve hugetlb files (probe"),
	      "check: %s", ag_line_with(out, "hugetlb-handler"));
	hl_ok(ag_contains(out, "WARN   agent"), "check: the missing agent is only a warning");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check");
	hl_ok(rc == 0 && ag_jbool(out, "ready") == 1 && ag_jint(out, "failures", -1) == 0,
	      "check --json: ready true, 0 failures (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl check --require-hugetlb");
	hl_ok(rc == 0, "check --require-hugetlb: exit %d", rc);

	rc = ag_start_agent(NULL);
	hl_ok(rc == 0, "hugelived --daemonize started (exit %d)", rc);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	hl_ok(rc == 0 && ag_contains(out, "READY: 0 failure(s), 0 warning(s)"),
	      "check with the agent: exit %d, %s", rc, ag_line_with(out, "READY"));
	hl_ok(ag_contains(out, "PASS   agent") && ag_contains(out, "owned by hugelived") &&
	      ag_contains(out, "kernel can preserve hugetlb files (reported by the agent)"),
	      "check with the agent: agent PASS, device owned by it, hugetlb handler reported by it");

	/* a command line without liveupdate=on: refused before anything is loaded */
	f = fopen("/proc/cmdline", "r");
	if (!f || !fgets(cmdline, sizeof(cmdline), f))
		hl_bail("cannot read /proc/cmdline");
	fclose(f);
	cmdline[strcspn(cmdline, "\n")] = 0;
	for (char *save = NULL, *w = strtok_r(cmdline, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (!strncmp(w, "liveupdate=", 11) || !strncmp(w, "hugelive.gen=", 13))
			continue;
		snprintf(next + strlen(next), sizeof(next) - strlen(next), "%s ", w);
	}
	snprintf(next + strlen(next), sizeof(next) - strlen(next), "hugelive.gen=%d", hl_gen() + 1);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl update --kernel /boot/bzImage --initrd %s --append '%s'",
		    initrd, next);
	hl_ok(rc == AG_EXIT_PREFLIGHT && ag_contains(out, "must keep kho=on and liveupdate=on"),
	      "update without liveupdate=on: preflight refuses, exit %d (want %d)", rc, AG_EXIT_PREFLIGHT);
	hl_ok(hl_read_ll("/sys/kernel/kexec_loaded") == 0, "nothing loaded (kexec_loaded=%lld)",
	      hl_read_ll("/sys/kernel/kexec_loaded"));
	rc = ag_run(out, sizeof(out), -1, "hugelivectl update --kernel /boot/bzImage --initrd %s --reuse-cmdline --dry-run",
		    initrd);
	hl_ok(rc == 0 && ag_contains(out, "dry run passed") && hl_read_ll("/sys/kernel/kexec_loaded") == 0,
	      "update --dry-run: loads and unloads (exit %d)", rc);

	/* stop the agent and its keeper: no session crosses this kexec */
	long agent = ag_agent_pid(), keeper = ag_find_proc("hugelived", "--keeper");

	ag_run(NULL, 0, -1, "kill -9 %ld %ld", agent, keeper);
	for (int i = 0; i < 100 && (ag_alive(agent) || ag_alive(keeper)); i++)
		usleep(50000);
	hl_ok(!ag_alive(agent) && !ag_alive(keeper), "agent (%ld) and keeper (%ld) stopped", agent, keeper);

	systemd_holds_the_device();
	hl_diag("kexec into gen %d with: %s", hl_gen() + 1, next);
	kfd = open("/boot/bzImage", O_RDONLY | O_CLOEXEC);
	ifd = open(initrd, O_RDONLY | O_CLOEXEC);
	if (!hl_success(syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next, 0UL), errno,
			"kexec_file_load with the command line without liveupdate=on"))
		return;
	sync();
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
	hl_ok(false, "reboot(LINUX_REBOOT_CMD_KEXEC) returned: %s", strerror(errno));
}

static void gen1(void)
{
	char cmdline[4096] = "";
	int rc;
	FILE *f = fopen("/proc/cmdline", "r");

	if (f) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = 0;
		fclose(f);
	}
	hl_ok(!strstr(cmdline, "liveupdate=") && access("/dev/liveupdate", F_OK) != 0,
	      "booted without liveupdate=on: no /dev/liveupdate");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl check");
	hl_ok(rc == AG_EXIT_FAIL && ag_contains(out, "NOT READY"), "check: exit %d (want 1), %s", rc,
	      ag_line_with(out, "READY"));
	hl_ok(ag_contains(out, "FAIL   cmdline-liveupdate   kernel booted without liveupdate=on; LUO is off"),
	      "check names the reason: %s", ag_line_with(out, "cmdline-liveupdate"));
	hl_ok(ag_contains(out, "FAIL   luo-device           /dev/liveupdate does not exist"),
	      "check: %s", ag_line_with(out, "luo-device"));
	hl_ok(ag_contains(out, "PASS   cmdline-kho"), "check: kho=on still passes");
	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check");
	hl_ok(rc == AG_EXIT_FAIL && ag_jbool(out, "ready") == 0 && ag_jint(out, "failures", -1) >= 2,
	      "check --json: ready false, %lld failures (exit %d)", ag_jint(out, "failures", -1), rc);
	{
		const char *p = strstr(out, "\"cmdline-liveupdate\"");
		char why[200] = "";

		hl_ok(p && ag_jis(p, "status", "fail") && ag_jstr(p, "reason", why, sizeof(why)) &&
		      strstr(why, "without liveupdate=on"),
		      "check --json: cmdline-liveupdate fail: \"%s\"", why);
	}
	rc = ag_run(out, sizeof(out), -1, "hugelived --daemonize 2>&1");
	hl_ok(rc == 1 && ag_contains(out, "booted without liveupdate=on"),
	      "hugelived refuses to start: exit %d, %s", rc, ag_line_with(out, "liveupdate"));
}

int main(void)
{
	return hl_run_gens(gen0, gen1);
}
