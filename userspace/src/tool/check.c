/* SPDX-License-Identifier: MIT */
/*
 * `hugelivectl check`: is this machine ready for a live update? Works with
 * or without a running agent. Each check is pass / warn / fail / skip with
 * a reason; any fail makes the exit status 1.
 */
#include "tool.h"
#include "hugelive.h"
#include "../common/kcheck.h"
#include "../common/kimage.h"
#include "../common/proto.h"
#include "../common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct checks {
	struct json_object *arr;
	int fails, warns;
	int image_fails;	/* failures of the target image / new command line */
	bool json;
};

static void add(struct checks *c, const char *name, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(struct checks *c, const char *name, const char *status, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char reason[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (!strcmp(status, "fail"))
		c->fails++;
	if (!strcmp(status, "warn"))
		c->warns++;
	json_object_object_add(o, "check", json_object_new_string(name));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_array_add(c->arr, o);
	if (!c->json)
		printf("%-6s %-20s %s\n", !strcmp(status, "pass") ? "PASS" : !strcmp(status, "fail") ? "FAIL" :
		       !strcmp(status, "warn") ? "WARN" : "SKIP", name, reason);
}

static long read_long(const char *path)
{
	char *s = hl_read_file(path, 64, NULL);
	long v = s ? strtol(s, NULL, 10) : -1;

	free(s);
	return v;
}

static void check_pools(struct checks *c)
{
	DIR *d = opendir("/sys/kernel/mm/hugepages");
	struct dirent *e;
	char desc[900] = "";
	size_t off = 0;
	long total = 0;

	if (!d) {
		add(c, "hugetlb-pools", "fail", "/sys/kernel/mm/hugepages missing: kernel without HUGETLBFS");
		return;
	}
	while ((e = readdir(d))) {
		char p[512];
		long nr, fr;

		if (strncmp(e->d_name, "hugepages-", 10))
			continue;
		snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/%s/nr_hugepages", e->d_name);
		nr = read_long(p);
		snprintf(p, sizeof(p), "/sys/kernel/mm/hugepages/%s/free_hugepages", e->d_name);
		fr = read_long(p);
		if (off < sizeof(desc) - 80)
			off += (size_t)snprintf(desc + off, sizeof(desc) - off, "%s%s: %ld total, %ld free",
						off ? "; " : "", e->d_name + 10, nr, fr);
		if (nr > 0)
			total += nr;
	}
	closedir(d);
	{
		char *mi = hl_read_file("/proc/meminfo", 1 << 16, NULL);
		char *p = mi ? strstr(mi, "Hugepagesize:") : NULL;

		if (p && off < sizeof(desc) - 60) {
			long kb = strtol(p + 13, NULL, 10);

			off += (size_t)snprintf(desc + off, sizeof(desc) - off, "; default size %ld kB", kb);
		}
		free(mi);
	}
	if (total > 0)
		add(c, "hugetlb-pools", "pass", "%s", desc);
	else
		add(c, "hugetlb-pools", "warn", "no huge pages reserved (%s); set hugepages= or nr_hugepages",
		    off ? desc : "no pools");
}

/*
 * The target image and the new command line, judged as the agent judges
 * them before an update (update.c preflight_image): the needs come from
 * what the agent preserves (its status), or, without an agent, from the
 * agent's own state plus --require-hugetlb.
 */
static void check_image(struct checks *c, const char *kernel, const char *newcl, struct json_object *agent_status,
			bool require_hugetlb, const char *running_kernel)
{
	struct json_object *v;
	struct hl_running run;
	struct hl_kimage ki;
	char err[512];
	int before = c->fails, hfiles = 0, rc;
	unsigned needs;
	const char *who;

	if (agent_status && json_object_object_get_ex(agent_status, "outgoing_hugetlb_files", &v)) {
		hfiles = json_object_get_int(v);
		who = "preserved by the agent";
	} else {
		hfiles = require_hugetlb;
		who = require_hugetlb ? "asked by --require-hugetlb (no agent answers)" : "no agent answers";
	}
	needs = hl_needs_of(hfiles);
	if (hl_running_formats(running_kernel, &run) == 0) {
		char list[256] = "", cs[64];
		size_t o = 0;

		for (size_t i = 0; i < hl_nformats && o < sizeof(list); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s%s", o ? " " : "",
					      hl_running_compat(&run, i, cs, sizeof(cs)), run.in_image[i] ? "" : "(table)");
		add(c, "running-kernel", "pass", "the running kernel %s (%s) writes: %s", run.release, run.image, list);
	} else {
		add(c, "running-kernel", "warn", "the formats the running kernel writes are unknown (%s); the target "
		    "is checked against hugelive's built-in table", run.note);
	}
	rc = hl_kimage_inspect(kernel, 0, &ki, err, sizeof(err));
	if (rc < 0) {
		add(c, "image", "fail", "kernel image refused: %s; %s", err, HL_KIMAGE_FIX);
	} else {
		add(c, "image", "pass", "%s: bzImage protocol %u.%02u, 64-bit, relocatable, loadable above 4G, %s payload "
		    "of %llu bytes, %llu bytes decompressed", kernel, ki.version >> 8, ki.version & 0xff, ki.compression,
		    (unsigned long long)ki.payload_len, (unsigned long long)ki.out_len);
		for (size_t i = 0; i < hl_nformats; i++) {
			const struct hl_format *f = &hl_formats[i];
			char name[80], compat[64], miss[300];
			const char *fix;
			bool needed = needs & f->need;

			hl_running_compat(&run, i, compat, sizeof(compat));
			snprintf(name, sizeof(name), "image-%s", compat);
			if (hl_kimage_takes(&ki, &run, i)) {
				add(c, name, "pass", "%s has the %s (\"%s\")", kernel, f->what, compat);
				continue;
			}
			/* for the fix text: this one format alone */
			hl_kimage_missing_run(&ki, &run, f->need, miss, sizeof(miss), &fix);
			if (!fix)
				fix = f->fix;
			if (needed && f->need == HL_NEED_HUGETLB)
				add(c, name, "fail", "%s lacks the %s (\"%s\"%s), needed by %d hugetlb file(s) %s; %s",
				    kernel, f->what, compat, run.in_image[i] ? ", written by the running kernel" : "",
				    hfiles, who, fix);
			else if (needed)
				add(c, name, "fail", "%s lacks the %s (\"%s\"%s), needed by every update (the agent's "
				    "state); %s", kernel, f->what, compat,
				    run.in_image[i] ? ", written by the running kernel" : "", fix);
			else
				add(c, name, "warn", "%s lacks the %s (\"%s\"): allowed, no hugetlb file is preserved "
				    "(%s), but hugetlb files could not be carried into it", kernel, f->what,
				    compat, who);
		}
	}
	if (!newcl)
		add(c, "new-cmdline", "fail", "no new command line");
	else if (!hl_param_on(newcl, "kho") || !hl_param_on(newcl, "liveupdate"))
		add(c, "new-cmdline", "fail", "the new command line must keep kho=on and liveupdate=on, it %s%s%s "
		    "(command line: %s)", hl_param_on(newcl, "kho") ? "" : "lacks kho=on",
		    !hl_param_on(newcl, "kho") && !hl_param_on(newcl, "liveupdate") ? " and " : "",
		    hl_param_on(newcl, "liveupdate") ? "" : "lacks liveupdate=on", newcl);
	else
		add(c, "new-cmdline", "pass", "the new command line keeps kho=on and liveupdate=on");
	c->image_fails += c->fails - before;
}

int hl_check_run(bool json, const char *sock, bool require_hugetlb, const char *kernel, const char *newcl,
		 const char *running_kernel)
{
	struct checks c = { .arr = json_object_new_array(), .json = json };
	char *cl = hl_read_file("/proc/cmdline", 8192, NULL);
	const char *dev = getenv("HUGELIVE_DEVICE");
	struct json_object *agent_status = NULL;
	hl_client *hc = NULL;
	int devfd = -1, hs = -1;
	const char *how = "";

	if (!dev || !*dev)
		dev = "/dev/liveupdate";
	if (cl) {
		size_t l = strlen(cl);

		while (l && (cl[l - 1] == '\n' || cl[l - 1] == ' '))
			cl[--l] = '\0';
	}

	/* Command line */
	if (!cl)
		add(&c, "cmdline", "fail", "cannot read /proc/cmdline");
	else {
		char *k = hl_cmdline_param(cl, "kho"), *lu = hl_cmdline_param(cl, "liveupdate");

		if (hl_param_on(cl, "kho"))
			add(&c, "cmdline-kho", "pass", "kho=%s on the kernel command line", k);
		else if (!k && access("/sys/kernel/debug/kho", F_OK) == 0)
			add(&c, "cmdline-kho", "warn", "kho= not on the command line, but KHO is enabled by default "
			    "(/sys/kernel/debug/kho exists); the update keeps kho=on explicitly");
		else
			add(&c, "cmdline-kho", "fail", k ? "kho=%s: KHO is disabled; boot with kho=on"
						       : "%sno kho=on on the kernel command line; boot with kho=on", k ? k : "");
		if (hl_param_on(cl, "liveupdate"))
			add(&c, "cmdline-liveupdate", "pass", "liveupdate=%s on the kernel command line", lu);
		else
			add(&c, "cmdline-liveupdate", "fail", lu ? "liveupdate=%s: LUO is disabled; boot with liveupdate=on"
				: "%skernel booted without liveupdate=on; LUO is off", lu ? lu : "");
		free(k);
		free(lu);
	}

	/* Kernel config, when readable */
	{
		static const char *const syms[] = { "KEXEC_FILE", "KEXEC_HANDOVER", "LIVEUPDATE", "LIVEUPDATE_MEMFD" };
		char missing[256] = "";
		size_t off = 0;
		bool readable = hl_kconfig("KEXEC_FILE") != 0;

		if (!readable) {
			add(&c, "kernel-config", "skip", "no /proc/config.gz or /boot/config-$(uname -r); judged by the other checks");
		} else {
			for (size_t i = 0; i < HL_ARRAY_SIZE(syms); i++)
				if (hl_kconfig(syms[i]) == 'n')
					off += (size_t)snprintf(missing + off, sizeof(missing) - off, " CONFIG_%s", syms[i]);
			if (off)
				add(&c, "kernel-config", "fail", "not enabled:%s", missing);
			else
				add(&c, "kernel-config", "pass", "KEXEC_FILE, KEXEC_HANDOVER, LIVEUPDATE, LIVEUPDATE_MEMFD enabled");
		}
	}

	/* Device and agent */
	if (hl_connect(sock, &hc) == 0) {
		char *rep = NULL;

		if (hl_call_json(hc, "{\"op\":\"status\"}", -1, &rep, NULL) == 0 && rep)
			agent_status = hl_json_parse(rep, strlen(rep));
		free(rep);
	}
	if (access(dev, F_OK) != 0) {
		add(&c, "luo-device", "fail", "%s does not exist: kernel without CONFIG_LIVEUPDATE or booted without liveupdate=on", dev);
	} else if (agent_status) {
		/*
		 * The agent answers: it owns the device (one opener only). Do not
		 * open it: a check that holds it while the agent (re)starts would
		 * make the agent fail with EBUSY.
		 */
		add(&c, "luo-device", "pass", "%s present, owned by hugelived (pid %lld)", dev,
		    (long long)hl_jint(agent_status, "pid", 0));
	} else {
		/* no agent: probe briefly, closed before anything slow happens */
		devfd = open(dev, O_RDWR | O_CLOEXEC);
		if (devfd >= 0)
			add(&c, "luo-device", "pass", "%s present and free (no agent holds it)", dev);
		else if (errno == EBUSY && agent_status)
			add(&c, "luo-device", "pass", "%s present, owned by hugelived (pid %lld)", dev,
			    (long long)hl_jint(agent_status, "pid", 0));
		else if (errno == EBUSY) {
			char who[512];
			bool sd = false;

			if (hl_dev_holders(dev, who, sizeof(who), &sd) > 0 && sd)
				add(&c, "luo-device", "fail", "%s is held by %s: %s", dev, who, HL_SYSTEMD_OWNS);
			else if (who[0])
				add(&c, "luo-device", "warn", "%s is held by %s, and no agent answers (a stale keeper?)",
				    dev, who);
			else
				add(&c, "luo-device", "warn", "%s is busy but no agent answers: another process owns it "
				    "(a stale keeper?; run check as root to see which)", dev);
		}
		else
			add(&c, "luo-device", "fail", "cannot open %s: %s", dev, strerror(errno));
	}
	if (agent_status)
		add(&c, "agent", "pass", "hugelived %s running, boot %s, %lld outgoing / %lld incoming session(s)",
		    hl_jstr(agent_status, "agent") ? hl_jstr(agent_status, "agent") : "?",
		    hl_jstr(agent_status, "boot") ? hl_jstr(agent_status, "boot") : "?",
		    (long long)hl_jint(agent_status, "outgoing_sessions", 0),
		    (long long)hl_jint(agent_status, "incoming_sessions", 0));
	else
		add(&c, "agent", "warn", "hugelived not reachable at %s; `update` needs it",
		    sock ? sock : getenv("HUGELIVE_SOCKET") ? getenv("HUGELIVE_SOCKET") : HUGELIVE_DEFAULT_SOCKET);

	/* kexec */
	{
		long dis = read_long("/proc/sys/kernel/kexec_load_disabled");

		if (dis > 0)
			add(&c, "kexec", "fail", "kernel.kexec_load_disabled=1: kexec is locked until reboot");
		else if (access("/sys/kernel/kexec_loaded", F_OK) != 0)
			add(&c, "kexec", "fail", "/sys/kernel/kexec_loaded missing: kernel without kexec");
		else if (geteuid() != 0)
			add(&c, "kexec", "warn", "kexec support present; loading needs root (CAP_SYS_BOOT)");
		else
			add(&c, "kexec", "pass", "kexec_file_load available");
	}

	/* hugetlb */
	check_pools(&c);
	if (agent_status && json_object_object_get_ex(agent_status, "hugetlb_support", NULL) &&
	    hl_jbool(agent_status, "hugetlb_support", false)) {
		hs = 1;
		how = "reported by the agent";
	} else if (agent_status && hl_jbool(agent_status, "hugetlb_support", true) == false) {
		hs = 0;
		how = "reported by the agent: no LUO handler accepts hugetlb files";
	} else {
		hs = hl_hugetlb_support(devfd, &how);
	}
	if (hs == 1)
		add(&c, "hugetlb-handler", "pass", "kernel can preserve hugetlb files (%s)", how);
	else if (hs == 0)
		add(&c, "hugetlb-handler", require_hugetlb ? "fail" : "warn",
		    "kernel cannot preserve hugetlb files (%s); only memfd (shmem) sessions survive an update", how);
	else
		add(&c, "hugetlb-handler", require_hugetlb ? "fail" : "warn", "%s", how);
	if (devfd >= 0)
		close(devfd);
	if (kernel)
		check_image(&c, kernel, newcl, agent_status, require_hugetlb, running_kernel);

	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "ready", json_object_new_boolean(c.fails == 0));
		json_object_object_add(o, "failures", json_object_new_int(c.fails));
		if (kernel)
			json_object_object_add(o, "image_failures", json_object_new_int(c.image_fails));
		json_object_object_add(o, "warnings", json_object_new_int(c.warns));
		json_object_object_add(o, "checks", c.arr);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("%s: %d failure(s), %d warning(s)\n", c.fails ? "NOT READY" : "READY", c.fails, c.warns);
		json_object_put(c.arr);
	}
	json_object_put(agent_status);
	hl_disconnect(hc);
	free(cl);
	return c.image_fails ? EXIT_PREFLIGHT : c.fails ? EXIT_FAIL : EXIT_OK;
}
