// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=4096 timeout=900 userspace=1 kernels="debug debug stock" cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * The preflight of the target image (issue 10 item 3), on real kernels.
 * Two client services (lib/carry.h, each its own process and session):
 * "hl" carries a 64 MiB hugetlb memfd (2 MiB pages), a 1 GiB one and an
 * 8 MiB shmem memfd; "shm" carries a 16 MiB shmem memfd only.
 *
 * gen 0 (debug kernel), both services ready:
 *   - `hugelivectl check --kernel /boot/bzImage-stock` (stock 7.3, no
 *     hugetlb handler) exits 5, its image-hugetlb-memfd-v1 row fails;
 *   - `hugelivectl update` into it exits 5 with a message naming
 *     "hugetlb-memfd-v1" and "nothing was loaded or frozen"; then no kernel
 *     is loaded, both sessions are still outgoing, last_update says
 *     cancelled, and no client was asked to prepare (the services would
 *     have marked "resumed");
 *   - a truncated copy of the stock image and a file that is no kernel
 *     (busybox) are refused with exit 5 by the tool itself;
 *   - then a good update (into the debug kernel) carries everything.
 * gen 1 (debug): both services get every word back; "hl" finishes and
 *   closes its files (pools whole again), "shm" preserves again; only shmem
 *   is preserved now, so check --kernel stock passes (the hugetlb row is a
 *   warning) and the update into stock is allowed.
 * gen 2 (stock): "shm" gets every word back; the agent's state crossed.
 */
#include "lib/carry.h"

#define NR_2M	64LL

static struct carry hl = {
	.session = "hl",
	.last_gen = 1,
	.nfiles = 3,
	.f = {
		{ .label = "64 MiB hugetlb 2M", .kind = CR_2M, .size = 64ULL << 20, .seed = 0x49524832ULL },
		{ .label = "1 GiB hugetlb 1G", .kind = CR_1G, .size = 1ULL << 30, .seed = 0x49524831ULL },
		{ .label = "8 MiB shmem", .kind = CR_SHMEM, .size = 8ULL << 20, .seed = 0x4952484dULL },
	},
};

static struct carry shm = {
	.session = "shm",
	.nfiles = 1,
	.f = {
		{ .label = "16 MiB shmem", .kind = CR_SHMEM, .size = 16ULL << 20, .seed = 0x49525353ULL },
	},
};

static char out[65536];

static const char *row_status(const char *js, const char *name, char *buf, size_t len)
{
	char key[96];
	const char *p, *st;

	snprintf(key, sizeof(key), "\"check\":\"%s\"", name);
	p = strstr(js, key);
	st = p ? strstr(p, "\"status\":\"") : NULL;
	if (!st)
		return "missing";
	st += 10;
	snprintf(buf, len, "%.*s", (int)strcspn(st, "\""), st);
	return buf;
}

static void gen0(struct ag_child *a, struct ag_child *b)
{
	char st[32];
	const char *lu;
	long long id;
	int rc;

	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check --kernel /boot/bzImage-stock --reuse-cmdline");
	hl_ok(rc == 5 && !strcmp(row_status(out, "image-hugetlb-memfd-v1", st, sizeof(st)), "fail"),
	      "check --kernel stock with hugetlb preserved: exit %d (want 5), image-hugetlb-memfd-v1 %s (want fail)",
	      rc, row_status(out, "image-hugetlb-memfd-v1", st, sizeof(st)));
	hl_ok(!strcmp(row_status(out, "image-memfd-v2", st, sizeof(st)), "pass"),
	      "check --kernel stock: image-memfd-v2 %s (want pass: stock takes shmem memfds)", st);

	ag_update_refused("/boot/bzImage-stock", "stock 7.3 (no hugetlb handler)", "hugetlb-memfd-v1", "nothing was loaded or frozen");
	rc = ag_status(out, sizeof(out));
	lu = ag_jfind(out, "last_update");
	id = lu ? ag_jint(lu, "id", -1) : -1;
	hl_ok(rc == 0 && ag_jint(out, "outgoing_sessions", -1) == 2 && lu && ag_jis(lu, "result", "cancelled") &&
	      ag_contains(lu, "hugetlb-memfd-v1"),
	      "status after the refusal: 2 outgoing sessions, last_update %lld cancelled naming hugetlb-memfd-v1", id);

	ag_run(NULL, 0, -1, "head -c 300000 /boot/bzImage-stock >/tmp/truncated.bzImage");
	ag_update_refused("/tmp/truncated.bzImage", "a truncated image", "kernel image refused", "truncated");
	ag_update_refused("/bin/busybox", "a file that is no kernel", "kernel image refused", "nothing was changed");
	rc = ag_status(out, sizeof(out));
	lu = ag_jfind(out, "last_update");
	hl_ok(rc == 0 && lu && ag_jint(lu, "id", -1) == id && ag_jint(out, "outgoing_sessions", -1) == 2,
	      "the tool refused those two itself: the agent saw no update since %lld, sessions intact", id);

	/* Neither service was asked to prepare: a resume would have come. */
	hl_ok(!ag_relay(a, "resumed", 2000) && !ag_relay(b, "resumed", 1000),
	      "no service was asked to prepare or resumed by the refused updates");
	hl_diag("now a good update, id %lld, into the debug kernel", id + 1);
	ag_update(120);
}

static void gen1(struct ag_child *a)
{
	char st[32];
	int rc;

	cr_release(a);
	rc = ag_wait_child(a, 60000);
	hl_ok(rc == 0, "service hl finished its session and closed its files (exit %d)", rc);
	cr_pools("hl closed its files", NR_2M, NR_2M, 1, 1);
	rc = ag_run(out, sizeof(out), -1, "hugelivectl --json check --kernel /boot/bzImage-stock --reuse-cmdline");
	hl_ok(rc == 0 && !strcmp(row_status(out, "image-hugetlb-memfd-v1", st, sizeof(st)), "warn"),
	      "check --kernel stock with only shmem preserved: exit %d (want 0), image-hugetlb-memfd-v1 %s (want warn)",
	      rc, row_status(out, "image-hugetlb-memfd-v1", st, sizeof(st)));
	ag_update(120);
}

int main(void)
{
	struct ag_child a = { 0 }, b;
	int g = hl_gen(), rc;

	hl_diag("gen %d runs flavour %s", g, hl_flavour(g));
	/* gen 1: both sessions incoming; gen 2: shm's */
	if (!cr_agent(&shm, g == 1 ? 2 : 1, g == 0 ? 0 : g == 1 ? 2 : 3))
		return hl_exit();
	if (g <= 1) {
		ag_fork(&a, "hl", cr_client, &hl);
		if (!hl_ok(ag_relay(&a, "claimed", 180000), "service hl has its memory (gen %d)", g))
			return hl_exit();
	}
	ag_fork(&b, "shm", cr_client, &shm);
	if (!hl_ok(ag_relay(&b, "claimed", 180000), "service shm has its memory (gen %d)", g))
		return hl_exit();
	if (g == 0 && !hl_ok(ag_relay(&a, "ready", 300000), "service hl preserved everything and subscribed"))
		return hl_exit();
	if (hl_last_gen()) {
		cr_release(&b);
		rc = ag_wait_child(&b, 60000);
		hl_ok(rc == 0, "service shm finished (exit %d)", rc);
		rc = ag_status(out, sizeof(out));
		hl_ok(rc == 0 && ag_jint(out, "incoming_sessions", -1) == 0, "status: no incoming session left");
		return hl_exit();
	}
	if (!hl_ok(ag_relay(&b, "ready", 300000), "service shm preserved its memfd and subscribed"))
		return hl_exit();
	if (g == 0)
		gen0(&a, &b);
	else
		gen1(&a);
	return hl_exit();
}
