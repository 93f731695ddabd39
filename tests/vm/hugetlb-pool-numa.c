// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=2 mem=2048 smp=2 numa=2 timeout=300 cmdline="hugepagesz=2M hugepages=0:40,1:40"
 *
 * The pool rule with per-node pools: both kernels boot with
 * hugepages=0:40,1:40. Ten pages preserved on node 0 and twenty on node 1
 * count towards each node's request: the next kernel allocates 30 and 20
 * at boot, and after retrieve each node holds exactly 40 again, with the
 * preserved pages in use on the node they were on.
 */
#include "lib/scenario.h"
#include "lib/hugepages.h"

#define NA	10	/* on node 0 */
#define NB	20	/* on node 1 */

static bool nodes_are(const char *what, long long nr0, long long fr0,
		      long long nr1, long long fr1)
{
	long long a = hl_hp_node(0, HL_2M, "nr_hugepages");
	long long b = hl_hp_node(0, HL_2M, "free_hugepages");
	long long c = hl_hp_node(1, HL_2M, "nr_hugepages");
	long long d = hl_hp_node(1, HL_2M, "free_hugepages");

	return hl_ok(a == nr0 && b == fr0 && c == nr1 && d == fr1,
		     "%s: node0 nr %lld free %lld, node1 nr %lld free %lld (want %lld %lld %lld %lld)",
		     what, a, b, c, d, nr0, fr0, nr1, fr1);
}

static int make_on_node(const char *name, int pages, int nid, uint64_t seed)
{
	size_t sz = (size_t)pages * HL_2M;
	int fd = hl_hugetlb_memfd(name, HL_2M, sz);
	void *p;

	if (fd < 0)
		hl_bail("memfd %s: %s", name, strerror(errno));
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		hl_bail("mmap %s: %s", name, strerror(errno));
	if (hl_bind_node(p, sz, nid))
		hl_bail("mbind %s to node %d: %s", name, nid, strerror(errno));
	hl_pattern_fill(p, sz, 0, seed);
	munmap(p, sz);
	return fd;
}

int main(void)
{
	int luo = hl_luo_open(), sess, a, b;
	uint8_t *pa, *pb;

	if (luo < 0)
		hl_bail("open /dev/liveupdate: %s", strerror(errno));

	if (hl_gen() == 0) {
		nodes_are("at boot", 40, 40, 40, 40);
		a = make_on_node("node0", NA, 0, 0xa0);
		b = make_on_node("node1", NB, 1, 0xb1);
		nodes_are("files faulted in", 40, 40 - NA, 40, 40 - NB);
		sess = hl_luo_create_session(luo, "numa");
		hl_success(hl_luo_preserve_fd(sess, a, 1), errno, "preserve 10 pages on node 0");
		hl_success(hl_luo_preserve_fd(sess, b, 2), errno, "preserve 20 pages on node 1");
		if (hl_failures())
			return hl_exit();
		hl_kexec_next_generation(NULL);
		return hl_exit();
	}

	nodes_are("before retrieve (per-node request minus preserved)",
		  40 - NA, 40 - NA, 40 - NB, 40 - NB);
	sess = hl_luo_retrieve_session(luo, "numa");
	a = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 1);
	b = sess < 0 ? -1 : hl_luo_retrieve_fd(sess, 2);
	if (a < 0 || b < 0)
		hl_bail("retrieve: %s", strerror(errno));
	nodes_are("after retrieve", 40, 40 - NA, 40, 40 - NB);
	pa = hl_map(a, NA * HL_2M);
	pb = hl_map(b, NB * HL_2M);
	hl_ok(pa && hl_pattern_verify(pa, NA * HL_2M, 0, 0xa0, NULL), "node 0 file verified");
	hl_ok(pb && hl_pattern_verify(pb, NB * HL_2M, 0, 0xb1, NULL), "node 1 file verified");
	hl_success(hl_luo_finish(sess), errno, "finish");
	close(sess);
	munmap(pa, NA * HL_2M);
	munmap(pb, NB * HL_2M);
	close(a);
	close(b);
	nodes_are("after close", 40, 40, 40, 40);
	return hl_exit();
}
