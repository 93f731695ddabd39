// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=1 mem=512 timeout=300 cmdline="hugepagesz=2M hugepages=32" bins="build/vm/kselftest/liveupdate build/vm/kselftest/luo_hugetlb"
 *
 * Runs the kernel's liveupdate kselftests built from the patched tree
 * (tools/testing/selftests/liveupdate: liveupdate, and luo_hugetlb from the
 * hugetlb series) in the VM, and turns each KTAP result into a TAP line of
 * ours. A test that the kselftest itself skips is reported as a failure
 * here: in this VM every one of them must be able to run.
 */
#include "lib/scenario.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static void run(const char *prog)
{
	char line[512], cmd[128];
	int n = 0, status;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "/usr/local/bin/%s 2>&1", prog);
	f = popen(cmd, "r");
	if (!f) {
		hl_ok(false, "%s: popen: %s", prog, strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		bool okl = !strncmp(line, "ok ", 3), bad = !strncmp(line, "not ok ", 7);

		line[strcspn(line, "\n")] = 0;
		hl_diag("%s: %s", prog, line);
		if (!okl && !bad)
			continue;
		n++;
		hl_ok(okl && !strstr(line, "# SKIP"), "%s: %s", prog, line);
	}
	status = pclose(f);
	hl_ok(n > 0, "%s reported %d results", prog, n);
	hl_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "%s exit status %d", prog, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(void)
{
	run("liveupdate");
	run("luo_hugetlb");
	return hl_exit();
}
