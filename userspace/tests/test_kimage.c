/* SPDX-License-Identifier: MIT */
/*
 * Preflight of the target image (issue 10 item 3): the bzImage parser and
 * decompressors on synthetic images (tests/kimgen.c), `hugelivectl check
 * --kernel` and `update` refusing a bad image or a command line without
 * kho=on liveupdate=on, and the agent's decision on the fake backend: a
 * hugetlb session into a kernel without the hugetlb handler is refused
 * naming the format, nothing changed; a shmem-only one is allowed and
 * carried. Optionally real images named by $HUGELIVE_TEST_IMAGES (visible
 * SKIP without it).
 * usage: test_kimage BINDIR   (root)
 */
#include "tap.h"
#include "harness.h"
#include "kimgen.h"
#include "hugelive.h"
#include "common/kimage.h"
#include "common/proto.h"
#include "common/util.h"

#include <errno.h>
#include <glob.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char img[256];

static const char *path(const char *name)
{
	snprintf(img, sizeof(img), "%s/%s", h_dir, name);
	return img;
}

static int found(const struct hl_kimage *k, const char *compat)
{
	for (size_t i = 0; i < hl_nformats; i++)
		if (!strcmp(hl_formats[i].compatible, compat))
			return k->found[i];
	return -1;
}

static bool all_found(const struct hl_kimage *k)
{
	for (size_t i = 0; i < hl_nformats; i++)
		if (!k->found[i])
			return false;
	return true;
}

/* ---- the parser -------------------------------------------------------- */

static void t_parse(void)
{
	static const char *const comps[] = { "gzip", "xz", "lzma", "zstd", "none" };
	static const char *const lookalike[] = { "kho-v4", "luo-v5", "memfd-v20", NULL };
	struct hl_kimage k;
	char err[512], miss[512];
	const char *fix;
	int rc;

	for (size_t i = 0; i < HL_ARRAY_SIZE(comps); i++) {
		const char *p = path("all.img");

		rc = kimg_write(p, comps[i], kimg_all, 0) ? -999 : hl_kimage_inspect(p, 0, &k, err, sizeof(err));
		ok(rc == 0 && all_found(&k) && !strcmp(k.compression, comps[i]) && k.version == 0x020f,
		   "%s image with every string: accepted, all %zu formats found across the 1 MiB chunk edge "
		   "(rc %d, %s, %llu bytes out)", comps[i], hl_nformats, rc, err, (unsigned long long)k.out_len);
		p = path("nohuge.img");
		rc = kimg_write(p, comps[i], kimg_no_hugetlb, 0) ? -999 : hl_kimage_inspect(p, 0, &k, err, sizeof(err));
		ok(rc == 0 && found(&k, "kho-v4") == 1 && found(&k, "memfd-v2") == 1 &&
		   found(&k, "hugetlb-memfd-v1") == 0 && found(&k, "hugetlb-pool-v2") == 0,
		   "%s image without the hugetlb handler: parsed, hugetlb formats absent", comps[i]);
	}
	rc = hl_kimage_inspect(path("nohuge.img"), 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_missing(&k, hl_needs_of(0), miss, sizeof(miss), &fix) == 0 && !fix,
	   "no hugetlb file preserved: nothing missing");
	ok(hl_kimage_missing(&k, hl_needs_of(3), miss, sizeof(miss), &fix) == 2 &&
	   strstr(miss, "\"hugetlb-memfd-v1\" (hugetlb file handler)") && strstr(miss, "\"hugetlb-pool-v2\"") &&
	   fix && strstr(fix, "CONFIG_LIVEUPDATE_HUGETLB"),
	   "hugetlb files preserved: both hugetlb formats missing, named, with the fix (%s)", miss);

	rc = kimg_write(path("look.img"), "gzip", lookalike, 0) ? -999
	     : hl_kimage_inspect(path("look.img"), 0, &k, err, sizeof(err));
	ok(rc == 0 && found(&k, "memfd-v2") == 0 && hl_kimage_missing(&k, hl_needs_of(0), miss, sizeof(miss), NULL) == 1 &&
	   strstr(miss, "memfd-v2"), "\"memfd-v20\" is not \"memfd-v2\": memfd format missing (%s)", miss);

	/* refusals, each with its errno and message */
	rc = kimg_write(path("trunc.img"), "xz", kimg_all, KIMG_TRUNCATE) ? -999
	     : hl_kimage_inspect(path("trunc.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "truncated") && strstr(err, "trunc.img"), "file cut short -> ENOEXEC (%s)", err);
	{
		static const char *const c3[] = { "gzip", "xz", "zstd" };

		for (size_t i = 0; i < 3; i++) {
			rc = kimg_write(path("cut.img"), c3[i], kimg_all, KIMG_CUT_STREAM) ? -999
			     : hl_kimage_inspect(path("cut.img"), 0, &k, err, sizeof(err));
			ok(rc == -ENOEXEC && (strstr(err, "truncated") || strstr(err, "damaged")),
			   "%s stream cut short inside an intact header -> ENOEXEC (%s)", c3[i], err);
		}
	}
	{
		FILE *f = fopen(path("text.img"), "w");

		for (int i = 0; f && i < 200; i++)
			fputs("this is not a kernel, just a text file of some length\n", f);
		if (f)
			fclose(f);
		rc = hl_kimage_inspect(path("text.img"), 0, &k, err, sizeof(err));
		ok(rc == -ENOEXEC && strstr(err, "not an x86 bzImage") && strstr(err, "HdrS"),
		   "non-kernel file -> ENOEXEC naming the missing HdrS header (%s)", err);
		f = fopen(path("short.img"), "w");
		if (f) {
			fputs("MZ", f);
			fclose(f);
		}
		rc = hl_kimage_inspect(path("short.img"), 0, &k, err, sizeof(err));
		ok(rc == -ENOEXEC && strstr(err, "too short"), "2-byte file -> ENOEXEC (%s)", err);
	}
	rc = hl_kimage_inspect(path("nonexistent.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOENT && strstr(err, "nonexistent.img"), "missing file -> ENOENT (%s)", err);
	rc = hl_kimage_inspect(h_dir, 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "not a regular file"), "a directory -> ENOEXEC (%s)", err);

	rc = kimg_write(path("old.img"), "gzip", kimg_all, KIMG_OLD_PROTO) ? -999
	     : hl_kimage_inspect(path("old.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "2.11") && strstr(err, "2.12"), "boot protocol 2.11 -> ENOEXEC (%s)", err);
	rc = kimg_write(path("low.img"), "gzip", kimg_all, KIMG_NO_ABOVE_4G) ? -999
	     : hl_kimage_inspect(path("low.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "XLF_CAN_BE_LOADED_ABOVE_4G"), "not loadable above 4G -> ENOEXEC (%s)", err);
	rc = kimg_write(path("fixed.img"), "gzip", kimg_all, KIMG_NOT_RELOC) ? -999
	     : hl_kimage_inspect(path("fixed.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "not relocatable"), "not relocatable -> ENOEXEC (%s)", err);
	rc = kimg_write(path("lz4.img"), "lz4", kimg_all, 0) ? -999
	     : hl_kimage_inspect(path("lz4.img"), 0, &k, err, sizeof(err));
	ok(rc == -EOPNOTSUPP && strstr(err, "lz4-compressed") && strstr(err, "CONFIG_KERNEL_GZIP"),
	   "lz4 payload -> EOPNOTSUPP, named (%s)", err);
	rc = kimg_write(path("bz.img"), "bzip2", kimg_all, 0) ? -999
	     : hl_kimage_inspect(path("bz.img"), 0, &k, err, sizeof(err));
	ok(rc == -EOPNOTSUPP && strstr(err, "bzip2-compressed"), "bzip2 payload -> EOPNOTSUPP (%s)", err);
	rc = kimg_write(path("junk.img"), "gzip", kimg_all, KIMG_NOT_ELF) ? -999
	     : hl_kimage_inspect(path("junk.img"), 0, &k, err, sizeof(err));
	ok(rc == -ENOEXEC && strstr(err, "not an ELF kernel"), "payload that is no ELF -> ENOEXEC (%s)", err);
	rc = kimg_write(path("big.img"), "zstd", kimg_all, KIMG_BIG) ? -999
	     : hl_kimage_inspect(path("big.img"), 8u << 20, &k, err, sizeof(err));
	ok(rc == -EFBIG && strstr(err, "bound of 8 MiB") && k.out_len <= (9u << 20),
	   "24 MiB kernel with an 8 MiB bound -> EFBIG, stopped at %llu bytes (%s)", (unsigned long long)k.out_len, err);
	rc = hl_kimage_inspect(path("big.img"), 0, &k, err, sizeof(err));
	ok(rc == 0 && all_found(&k), "the same image under the default bound: accepted (%s)", err);
}

/* ---- what the running kernel writes ----------------------------------- */

static char banner[4096];
static int tool(const char *args, char *out, size_t len);
static const char *jcheck(struct json_object *o, const char *name, const char **reason);
static struct json_object *check_json(const char *args, int *rc);

/* strings of list plus this host's /proc/version banner (the "running kernel") */
static int write_running(const char *p, const char *comp, const char *const *list, bool with_banner)
{
	const char *l[16];
	size_t n = 0;

	for (; list[n] && n < 14; n++)
		l[n] = list[n];
	if (with_banner)
		l[n++] = banner;
	l[n] = NULL;
	return kimg_write(p, comp, l, 0);
}

static size_t fam(const char *family)
{
	for (size_t i = 0; i < hl_nformats; i++)
		if (!strcmp(hl_formats[i].family, family))
			return i;
	return 0;
}

static void t_running(void)
{
	static const char *const suffix[] = { "kho-v4", "luo-v5", "memfd-v2", "hugetlb-memfd-v3", "hugetlb-pool-v2", NULL };
	char *v = hl_read_file("/proc/version", sizeof(banner), NULL);
	char cur[256], v01[256], both[256], nob[256], miss[1024], cs[64];
	struct hl_running run;
	struct hl_kimage k;
	const char *fix = NULL;
	char err[1024];
	int rc;

	snprintf(banner, sizeof(banner), "%s", v ? v : "");
	free(v);
	banner[strcspn(banner, "\n")] = '\0';
	if (!ok(banner[0] != '\0', "/proc/version read: \"%.40s...\"", banner))
		return;
	snprintf(cur, sizeof(cur), "%s", path("run-current.img"));
	snprintf(v01, sizeof(v01), "%s", path("run-v01.img"));
	snprintf(both, sizeof(both), "%s", path("run-both.img"));
	snprintf(nob, sizeof(nob), "%s", path("run-nobanner.img"));
	ok(!write_running(cur, "xz", kimg_all, true) && !write_running(v01, "gzip", kimg_v01, true) &&
	   !write_running(both, "zstd", kimg_reads_v01, true) && !write_running(nob, "xz", kimg_v01, false),
	   "images written: current, v0.1 and reads-both with the banner, v0.1 without");

	/* versions per family: the highest, strings that start a string first */
	rc = hl_kimage_inspect(both, 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_version(&k, fam("hugetlb-pool")) == 2 && (k.vers[fam("hugetlb-pool")] & 6) == 6,
	   "pool-v1 and pool-v2 in one image: both seen, it writes v2 (mask 0x%llx)",
	   (unsigned long long)k.vers[fam("hugetlb-pool")]);
	rc = hl_kimage_inspect(v01, 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_version(&k, fam("hugetlb-pool")) == 1 && hl_kimage_version(&k, fam("memfd")) == 2,
	   "v0.1 image: writes hugetlb-pool-v1, memfd-v2");
	rc = kimg_write(path("suffix.img"), "xz", suffix, 0) ? -999 : hl_kimage_inspect(path("suffix.img"), 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_version(&k, fam("memfd")) == 2 && (k.vers[fam("memfd")] & (1u << 3)) &&
	   !(k.vers_alone[fam("memfd")] & (1u << 3)) && hl_kimage_version(&k, fam("hugetlb-memfd")) == 3,
	   "\"memfd-v3\" only as the tail of \"hugetlb-memfd-v3\": memfd still writes v2");

	/* the running kernel's image: the banner decides */
	rc = hl_running_formats(v01, &run);
	ok(rc == 0 && run.from_image && !strcmp(run.image, v01) && run.in_image[fam("hugetlb-pool")] &&
	   !strcmp(hl_running_compat(&run, fam("hugetlb-pool"), cs, sizeof(cs)), "hugetlb-pool-v1") && !run.note[0],
	   "running image v0.1 with this kernel's banner: formats from it, pool %s", cs);
	rc = hl_running_formats(nob, &run);
	ok(rc == 1 && !run.from_image && strstr(run.note, "not the running kernel") && strstr(run.note, "/proc/version") &&
	   strstr(run.note, "built-in format table") &&
	   !strcmp(hl_running_compat(&run, fam("hugetlb-pool"), cs, sizeof(cs)), "hugetlb-pool-v2"),
	   "an image without the running kernel's banner is not trusted: built-in table (%s)", run.note);
	rc = hl_running_formats(path("nonexistent.img"), &run);
	ok(rc == 1 && strstr(run.note, "cannot open") && strstr(run.note, "built-in"),
	   "a missing running image: built-in table (%s)", run.note);
	rc = hl_running_formats(path("text.img"), &run);
	ok(rc == 1 && strstr(run.note, "HdrS"), "a non-kernel running image: built-in table (%s)", run.note);

	/* the rule: the target must have what the running kernel writes */
	hl_running_formats(v01, &run);
	rc = hl_kimage_inspect(cur, 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_missing_run(&k, &run, hl_needs_of(1), miss, sizeof(miss), &fix) == 1 &&
	   strstr(miss, "\"hugetlb-pool-v1\" (hugetlb pool format, written by the running kernel)") &&
	   fix && strstr(fix, "reads \"hugetlb-pool-v1\""),
	   "v0.1 -> a series that cannot read pool-v1: hugetlb-pool-v1 missing (%s; %s)", miss, fix ? fix : "");
	ok(hl_kimage_missing_run(&k, &run, hl_needs_of(0), miss, sizeof(miss), NULL) == 0,
	   "v0.1 -> that series without hugetlb files: nothing missing");
	rc = hl_kimage_inspect(both, 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_missing_run(&k, &run, hl_needs_of(1), miss, sizeof(miss), &fix) == 0,
	   "v0.1 -> a series that reads pool-v1 too: nothing missing (%s)", miss);
	hl_running_formats(cur, &run);
	rc = hl_kimage_inspect(v01, 0, &k, err, sizeof(err));
	ok(rc == 0 && hl_kimage_missing_run(&k, &run, hl_needs_of(2), miss, sizeof(miss), &fix) == 1 &&
	   strstr(miss, "\"hugetlb-pool-v2\"") && !strstr(miss, "memfd"),
	   "downgrade current -> v0.1 with hugetlb files: hugetlb-pool-v2 missing (%s)", miss);
	ok(hl_kimage_missing(&k, hl_needs_of(2), miss, sizeof(miss), &fix) == 1 && strstr(miss, "hugetlb-pool-v2") &&
	   !strstr(miss, "written by"), "the built-in table agrees, without claiming the running kernel wrote it");

	/* hugelivectl check --running-kernel */
	{
		struct json_object *o;
		const char *why = "";
		char a[1024];
		bool c;

		snprintf(a, sizeof(a), "--require-hugetlb --kernel %s --running-kernel %s --append 'kho=on liveupdate=on'",
			 v01, cur);
		o = check_json(a, &rc);
		c = o && rc == 5 && !strcmp(jcheck(o, "running-kernel", &why), "pass") && strstr(why, cur);
		ok(c, "check --running-kernel: the running kernel's formats come from it (%s)", why);
		c = o && !strcmp(jcheck(o, "image-hugetlb-pool-v2", &why), "fail") &&
		    strstr(why, "written by the running kernel") && strstr(why, v01) &&
		    strstr(why, "reads \"hugetlb-pool-v2\"") && strstr(why, "has only hugetlb-pool-v1");
		ok(c, "check: downgrade into v0.1 with hugetlb fails on image-hugetlb-pool-v2 (%s)", why);
		c = o && !strcmp(jcheck(o, "image-hugetlb-memfd-v1", &why), "pass");
		ok(c, "check: hugetlb-memfd-v1 is there");
		json_object_put(o);
		why = "";
		snprintf(a, sizeof(a), "--require-hugetlb --kernel %s --running-kernel %s --append 'kho=on liveupdate=on'",
			 both, v01);
		o = check_json(a, &rc);
		c = o && rc != 5 && hl_jint(o, "image_failures", -1) == 0 &&
		    !strcmp(jcheck(o, "image-hugetlb-pool-v1", &why), "pass");
		ok(c, "check: v0.1 running -> an image that reads pool-v1: image-hugetlb-pool-v1 passes (exit %d)", rc);
		json_object_put(o);
		why = "";
		snprintf(a, sizeof(a), "--kernel %s --running-kernel %s --append 'kho=on liveupdate=on'", cur, nob);
		o = check_json(a, &rc);
		c = o && !strcmp(jcheck(o, "running-kernel", &why), "warn") && strstr(why, "built-in table") &&
		    strstr(why, "not the running kernel");
		ok(c, "check: a running image that is not the running kernel: warn, built-in table (%s)", why);
		json_object_put(o);
		ok(tool("check --running-kernel /x", err, sizeof(err)) == 2, "check --running-kernel without --kernel: usage, exit 2");
	}
}

/* ---- hugelivectl ------------------------------------------------------- */

/* Run hugelivectl; stdout (and stderr) into out. Returns the exit status. */
static int tool(const char *args, char *out, size_t len)
{
	char cmd[2048];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "HUGELIVE_SOCKET=%s %s/hugelivectl %s 2>&1", h_sock, h_bindir, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* status and reason of one check of `check --json` output, "" if absent */
static const char *jcheck(struct json_object *o, const char *name, const char **reason)
{
	struct json_object *arr;

	*reason = "";
	if (!o || !json_object_object_get_ex(o, "checks", &arr))
		return "";
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *c = json_object_array_get_idx(arr, i);

		if (!strcmp(hl_jstr(c, "check"), name)) {
			*reason = hl_jstr(c, "reason");
			return hl_jstr(c, "status");
		}
	}
	return "";
}

static struct json_object *check_json(const char *args, int *rc)
{
	static char out[65536];
	char a[1024];

	snprintf(a, sizeof(a), "--json check %s", args);
	*rc = tool(a, out, sizeof(out));
	return hl_json_parse(out, strlen(out));
}

static void t_tool(void)
{
	char a[1024], out[8192];
	struct json_object *o;
	const char *why;
	bool c;
	int rc;

	/* no agent runs here */
	kimg_write(path("all.img"), "xz", kimg_all, 0);
	kimg_write(path("nohuge.img"), "zstd", kimg_no_hugetlb, 0);
	kimg_write(path("trunc.img"), "gzip", kimg_all, KIMG_TRUNCATE);

	snprintf(a, sizeof(a), "--kernel %s --append 'console=ttyS0 kho=on liveupdate=on'", path("all.img"));
	o = check_json(a, &rc);
	c = o && rc != 5 && hl_jint(o, "image_failures", -1) == 0 && !strcmp(jcheck(o, "image", &why), "pass") &&
	   strstr(why, "xz payload") && !strcmp(jcheck(o, "image-hugetlb-memfd-v1", &why), "pass") &&
	   !strcmp(jcheck(o, "new-cmdline", &why), "pass");
	ok(c, "check --kernel good image: image checks pass, exit %d is not 5", rc);
	json_object_put(o);
	why = "";

	snprintf(a, sizeof(a), "--kernel %s --append 'kho=on liveupdate=on'", path("nohuge.img"));
	o = check_json(a, &rc);
	c = o && rc != 5 && !strcmp(jcheck(o, "image-hugetlb-memfd-v1", &why), "warn") && strstr(why, "allowed");
	ok(c, "check --kernel without hugetlb handler, no hugetlb preserved: warn, not refused (exit %d: %s)", rc, why);
	json_object_put(o);
	why = "";
	snprintf(a, sizeof(a), "--require-hugetlb --kernel %s --append 'kho=on liveupdate=on'", path("nohuge.img"));
	o = check_json(a, &rc);
	c = o && rc == 5 && !strcmp(jcheck(o, "image-hugetlb-memfd-v1", &why), "fail") &&
	    strstr(why, "lacks the hugetlb file handler (\"hugetlb-memfd-v1\")") && strstr(why, "CONFIG_LIVEUPDATE_HUGETLB");
	ok(c, "check --require-hugetlb --kernel without the handler: exit 5 naming the format (%s)", why);
	json_object_put(o);
	why = "";

	snprintf(a, sizeof(a), "--kernel %s --append 'kho=on liveupdate=on'", path("trunc.img"));
	o = check_json(a, &rc);
	c = o && rc == 5 && !strcmp(jcheck(o, "image", &why), "fail") && strstr(why, "truncated");
	ok(c, "check --kernel truncated image: exit 5 (%s)", why);
	json_object_put(o);
	why = "";
	snprintf(a, sizeof(a), "--kernel %s --append 'kho=on liveupdate=on'", path("text.img"));
	o = check_json(a, &rc);
	c = o && rc == 5 && !strcmp(jcheck(o, "image", &why), "fail") && strstr(why, "HdrS");
	ok(c, "check --kernel non-kernel file: exit 5 (%s)", why);
	json_object_put(o);
	why = "";
	snprintf(a, sizeof(a), "--kernel %s --append 'console=ttyS0 kho=on'", path("all.img"));
	o = check_json(a, &rc);
	c = o && rc == 5 && !strcmp(jcheck(o, "new-cmdline", &why), "fail") && strstr(why, "lacks liveupdate=on") &&
	    !strstr(why, "lacks kho=on");
	ok(c, "check --kernel with a command line without liveupdate=on: exit 5 (%s)", why);
	json_object_put(o);
	why = "";

	snprintf(a, sizeof(a), "check --kernel %s --append 'kho=on'", path("trunc.img"));
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "FAIL   image") && strstr(out, "truncated") && strstr(out, "FAIL   new-cmdline"),
	   "check --kernel text output: both failures listed, exit 5");
	ok(tool("check --append 'kho=on'", out, sizeof(out)) == 2, "check --append without --kernel: usage, exit 2");

	/* update refuses before it needs root or the agent (none runs: 3 would mean it went on) */
	snprintf(a, sizeof(a), "update --kernel %s --append 'kho=on liveupdate=on'", path("trunc.img"));
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "kernel image refused") && strstr(out, "truncated") && strstr(out, "nothing was changed") &&
	   strstr(out, "give the complete x86-64 bzImage"),
	   "update --kernel truncated image: exit 5 before the agent (%s)", out);
	snprintf(a, sizeof(a), "--json update --kernel %s --append 'kho=on liveupdate=on'", path("text.img"));
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "\"exit\":5") && strstr(out, "\"name\":\"ENOEXEC\"") && strstr(out, "HdrS"),
	   "update --json non-kernel file: exit 5, ENOEXEC (%s)", out);
	snprintf(a, sizeof(a), "update --kernel %s --append 'kho=on'", path("all.img"));
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "liveupdate=on"), "update with a command line without liveupdate=on: exit 5");
}

/* ---- the agent's decision (fake backend) -------------------------------- */

static int dry_run(const char *kernel, char *err, size_t len)
{
	hl_client *c;
	char req[1024];
	int rc;

	if (hl_connect(h_sock, &c) < 0)
		return -ECONNREFUSED;
	snprintf(req, sizeof(req), "{\"op\":\"update\",\"kernel\":\"%s\",\"cmdline\":\"kho=on liveupdate=on\","
		 "\"timeout_ms\":2000,\"dry_run\":true}", kernel);
	rc = hl_call_json(c, req, -1, NULL, NULL);
	snprintf(err, len, "%s", hl_last_error(c));
	hl_disconnect(c);
	return rc;
}

static int preserve(hl_client *c, const char *sess, uint64_t token, bool hugetlb, const char *content)
{
	int fd, rc;

	if (hugetlb) {
		fd = memfd_create("hl-test-huge", MFD_HUGETLB | MFD_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else {
		fd = h_make_memfd(content);
	}
	rc = hl_preserve_fd(c, sess, token, fd, hugetlb ? "huge" : "shm");
	close(fd);
	return rc;
}

static void t_agent(void)
{
	char err[1024], out[4096], a[512];
	char nohuge[256], all[256];
	struct json_object *st;
	hl_client *c;
	int64_t old;
	int rc, fd;

	/* path() returns one static buffer: copies */
	snprintf(nohuge, sizeof(nohuge), "%s", path("nohuge-agent.img"));
	snprintf(all, sizeof(all), "%s", path("all-agent.img"));
	kimg_write(nohuge, "xz", kimg_no_hugetlb, 0);
	kimg_write(all, "gzip", kimg_all, 0);

	/* shmem only, into a kernel without the hugetlb handler: allowed and carried */
	h_fake_hugetlb = true;
	h_fresh_kernel();
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "agent up on the fake backend"))
		return;
	ok(hl_create_session(c, "shm") == 0 && preserve(c, "shm", 1, false, "shm-content-1") == 0,
	   "a shmem memfd preserved");
	rc = dry_run(nohuge, err, sizeof(err));
	ok(rc == 0, "shmem only -> image without the hugetlb handler: allowed (dry run, %d %s)", rc, err);
	st = h_status();
	ok(st && hl_jint(st, "outgoing_files", -1) == 1 && hl_jint(st, "outgoing_hugetlb_files", -1) == 0,
	   "status counts 1 outgoing file, 0 hugetlb");
	json_object_put(st);
	snprintf(a, sizeof(a), "--json check --kernel %s --append 'kho=on liveupdate=on'", nohuge);
	tool(a, out, sizeof(out));
	ok(strstr(out, "\"image_failures\":0") || strstr(out, "\"image_failures\": 0"),
	   "check --kernel agrees: no image failure with shmem only");

	/* add a hugetlb file: the same image is now refused, naming the format */
	rc = preserve(c, "shm", 2, true, NULL);
	if (rc == -EINVAL || rc == -ENOENT || rc == -ENOSYS) {
		diag("SKIP hugetlb part: memfd_create(MFD_HUGETLB) failed on this host (%s)", strerror(-rc));
		hl_disconnect(c);
		return;
	}
	ok(rc == 0, "a hugetlb memfd preserved in the same session (%d %s)", rc, hl_last_error(c));
	rc = h_update(nohuge, 2000, err, sizeof(err));
	ok(rc == -EOPNOTSUPP && strstr(err, nohuge) && strstr(err, "\"hugetlb-memfd-v1\" (hugetlb file handler)") &&
	   strstr(err, "\"hugetlb-pool-v2\"") && strstr(err, "1 hugetlb file(s) in 1 session(s)") &&
	   strstr(err, "CONFIG_LIVEUPDATE_HUGETLB") && strstr(err, "nothing was loaded or frozen"),
	   "hugetlb session -> image without the handler: EOPNOTSUPP naming image and format (%s)", err);
	ok(strstr(h_fake_dump(), "loaded 0") != NULL, "nothing loaded after the refusal");
	ok(h_log_has("update 2: preflight: inspecting") && !h_log_has("update 2: (load|barrier|kexec)"),
	   "refused in preflight: no load, no barrier (nothing frozen)");
	st = h_status();
	ok(st && hl_jint(st, "outgoing_sessions", -1) == 1 && hl_jint(st, "outgoing_hugetlb_files", -1) == 1,
	   "sessions unchanged after the refusal");
	{
		struct json_object *lu = NULL;

		ok(st && json_object_object_get_ex(st, "last_update", &lu) && !strcmp(hl_jstr(lu, "result"), "cancelled") &&
		   strstr(hl_jstr(lu, "message"), "hugetlb-memfd-v1"), "last_update records the refusal");
	}
	json_object_put(st);
	snprintf(a, sizeof(a), "update --kernel %s --append 'kho=on liveupdate=on'", nohuge);
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "hugetlb-memfd-v1"), "hugelivectl update into it: exit 5 naming the format");
	snprintf(a, sizeof(a), "--json check --kernel %s --append 'kho=on liveupdate=on'", nohuge);
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "needed by 1 hugetlb file(s) preserved by the agent"),
	   "check --kernel asks the agent: exit 5, hugetlb needed");

	/* a later good update carries everything */
	old = h_agent_pid();
	rc = h_update(all, 2000, err, sizeof(err));
	ok(rc == 0, "update into an image with every format: done (%d %s)", rc, err);
	hl_disconnect(c);
	/* the old agent still exits after its fake kexec: wait before restarting */
	ok(old > 1 && h_wait_gone((pid_t)old, 5000), "the old agent (pid %lld) has exited", (long long)old);
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "agent up in the new 'kernel'"))
		return;
	fd = -1;
	ok(hl_retrieve_fd_self(c, "shm", 1, &fd) == 0 && h_memfd_has(fd, "shm-content-1"), "shmem memfd carried");
	if (fd >= 0)
		close(fd);
	fd = -1;
	ok(hl_retrieve_fd_self(c, "shm", 2, &fd) == 0 && hl_fd_is_hugetlb(fd), "hugetlb memfd carried");
	if (fd >= 0)
		close(fd);
	hl_disconnect(c);
}

/*
 * The agent judges with the running kernel's formats: started with
 * --running-kernel (a "current series" image carrying this host's banner),
 * a downgrade into a v0.1-like image with a hugetlb file is refused naming
 * hugetlb-pool-v2 and where that requirement came from; the request's own
 * running_kernel (hugelivectl update --running-kernel) overrides it; the
 * sessions stay; an update into an image that reads the format carries
 * everything.
 */
static void t_agent_running(void)
{
	char cur[256], v01[256], both[256], err[1024], out[4096], a[1024];
	struct json_object *st;
	hl_client *c;
	int64_t old;
	int rc, fd = -1;
	bool ok_;

	snprintf(cur, sizeof(cur), "%s", path("run-current.img"));
	snprintf(v01, sizeof(v01), "%s", path("run-v01.img"));
	snprintf(both, sizeof(both), "%s", path("run-both.img"));
	h_fake_hugetlb = true;
	h_fresh_kernel();
	snprintf(a, sizeof(a), "--running-kernel %s", cur);
	if (!ok(h_agent_start(a) == 0 && hl_connect(h_sock, &c) == 0, "agent up with --running-kernel"))
		return;
	rc = hl_create_session(c, "dg");
	if (rc == 0)
		rc = preserve(c, "dg", 1, false, "dg-shm");
	if (rc == 0)
		rc = preserve(c, "dg", 2, true, NULL);
	ok(rc == 0, "a shmem and a hugetlb memfd preserved (%d %s)", rc, rc ? hl_last_error(c) : "");
	rc = h_update(v01, 2000, err, sizeof(err));
	ok_ = rc == -EOPNOTSUPP && strstr(err, v01) &&
	      strstr(err, "\"hugetlb-pool-v2\" (hugetlb pool format, written by the running kernel)") &&
	      !strstr(err, "hugetlb-memfd-v1") && strstr(err, "formats from ") && strstr(err, cur) &&
	      strstr(err, "reads \"hugetlb-pool-v2\"") && strstr(err, "nothing was loaded or frozen");
	ok(ok_, "downgrade with a hugetlb file: refused naming hugetlb-pool-v2 and the running image (%s)", err);
	ok(h_log_has("formats come from .*run-current.img"), "the agent logged where the formats came from");
	ok(strstr(h_fake_dump(), "loaded 0") != NULL, "nothing loaded after the refusal");
	st = h_status();
	ok(st && hl_jint(st, "outgoing_sessions", -1) == 1 && hl_jint(st, "outgoing_hugetlb_files", -1) == 1 &&
	   hl_jint(st, "outgoing_files", -1) == 2, "the session and both files are still there");
	json_object_put(st);
	/* the request's running_kernel: v0.1 runs (so the target must read pool-v1) */
	snprintf(a, sizeof(a), "update --kernel %s --running-kernel %s --append 'kho=on liveupdate=on' --dry-run", cur, v01);
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "\"hugetlb-pool-v1\"") && strstr(out, "run-v01.img"),
	   "update --running-kernel v0.1 into a series that cannot read pool-v1: exit 5 naming hugetlb-pool-v1");
	snprintf(a, sizeof(a), "update --kernel %s --running-kernel %s --append 'kho=on liveupdate=on' --dry-run", both, v01);
	rc = tool(a, out, sizeof(out));
	ok(rc == 0, "update --running-kernel v0.1 --dry-run into a series that reads pool-v1: passes (exit %d)", rc);
	snprintf(a, sizeof(a), "update --kernel %s --running-kernel relative.img --append 'kho=on liveupdate=on'", both);
	rc = tool(a, out, sizeof(out));
	ok(rc == 5 && strstr(out, "running kernel image relative.img"), "update --running-kernel of a missing file: exit 5");
	/* a good update carries everything */
	old = h_agent_pid();
	rc = h_update(both, 2000, err, sizeof(err));
	ok(rc == 0, "update into an image that reads hugetlb-pool-v2: done (%d %s)", rc, err);
	hl_disconnect(c);
	ok(old > 1 && h_wait_gone((pid_t)old, 5000), "the old agent has exited");
	if (!ok(h_agent_start(NULL) == 0 && hl_connect(h_sock, &c) == 0, "agent up in the new 'kernel'"))
		return;
	ok(hl_retrieve_fd_self(c, "dg", 1, &fd) == 0 && h_memfd_has(fd, "dg-shm"), "shmem memfd carried");
	if (fd >= 0)
		close(fd);
	fd = -1;
	ok(hl_retrieve_fd_self(c, "dg", 2, &fd) == 0 && hl_fd_is_hugetlb(fd), "hugetlb memfd carried");
	if (fd >= 0)
		close(fd);
	hl_disconnect(c);
}

/* ---- optionally a real cached image ------------------------------------ */

static void t_real(void)
{
	const char *pat = getenv("HUGELIVE_TEST_IMAGES");
	struct hl_kimage k;
	char err[512];
	glob_t g;
	bool c;

	/*
	 * Only an image of the series under test proves anything: cached
	 * images of older series lack its newer formats. vm/check.sh runs the
	 * same inspection on the kernel it has just built.
	 */
	if (!pat) {
		diag("SKIP real image: HUGELIVE_TEST_IMAGES not set (not counted)");
		return;
	}
	if (glob(pat, 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		diag("SKIP real image: none matches %s (not counted)", pat);
		return;
	}
	c = hl_kimage_inspect(g.gl_pathv[0], 0, &k, err, sizeof(err)) == 0 && all_found(&k);

	ok(c, "real image %s: %s payload, %llu bytes, every format of the series found (%s)", g.gl_pathv[0],
	   k.compression ? k.compression : "?", (unsigned long long)k.out_len, err);
	globfree(&g);
}

int main(int argc, char **argv)
{
	if (argc < 2 || h_init(argv[1], "kimage") < 0) {
		fprintf(stderr, "usage: test_kimage BINDIR\n");
		return 2;
	}
	t_parse();
	t_tool();
	t_running();
	if (geteuid() == 0) {
		t_agent();
		t_agent_running();
	} else
		diag("SKIP agent part: needs root (not counted)");
	t_real();
	h_stop_all();
	ok(h_logs_clean(), "no sanitizer report in the logs");
	h_cleanup();
	return tap_done();
}
