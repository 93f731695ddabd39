/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Huge page helpers for VM scenarios: pool counters from /proc/meminfo and
 * sysfs (global, per size, per node), hugetlb memfds, cgroup v2 hugetlb
 * charges. Header-only so scenarios need nothing but lib/scenario.c.
 */
#ifndef HUGELIVE_HUGEPAGES_H
#define HUGELIVE_HUGEPAGES_H

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define HL_2M		(2ULL << 20)
#define HL_1G		(1ULL << 30)

/*
 * The number after "KEY" and one separator character (':' in /proc/meminfo,
 * ' ' in debugfs stats files) on a line of a file, or -1.
 */
static inline long long hl_file_value(const char *path, const char *key,
				      char sep)
{
	char line[256];
	size_t klen = strlen(key);
	long long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == sep) {
			val = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/* A value from /proc/meminfo ("HugePages_Free", "MemFree" in kB), or -1. */
static inline long long hl_meminfo(const char *key)
{
	return hl_file_value("/proc/meminfo", key, ':');
}

static inline long long hl_read_ll(const char *path)
{
	char buf[64];
	long long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		val = strtoll(buf, NULL, 10);
	fclose(f);
	return val;
}

static inline int hl_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static inline const char *hl_size_dir(unsigned long long hsize)
{
	return hsize == HL_1G ? "hugepages-1048576kB" : "hugepages-2048kB";
}

/* /sys/kernel/mm/hugepages/<size>/<what>: nr_hugepages, free_hugepages... */
static inline long long hl_hp(unsigned long long hsize, const char *what)
{
	char path[160];

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/%s/%s",
		 hl_size_dir(hsize), what);
	return hl_read_ll(path);
}

/* Per node: nr_hugepages, free_hugepages, surplus_hugepages. */
static inline long long hl_hp_node(int nid, unsigned long long hsize,
				   const char *what)
{
	char path[200];

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/%s/%s",
		 nid, hl_size_dir(hsize), what);
	return hl_read_ll(path);
}

struct hl_pool {
	long long nr, free, resv, surplus;
};

static inline struct hl_pool hl_pool_get(unsigned long long hsize)
{
	struct hl_pool p = {
		.nr = hl_hp(hsize, "nr_hugepages"),
		.free = hl_hp(hsize, "free_hugepages"),
		.resv = hl_hp(hsize, "resv_hugepages"),
		.surplus = hl_hp(hsize, "surplus_hugepages"),
	};
	return p;
}

/* A hugetlb memfd of the given page size and file size, or -1. */
static inline int hl_hugetlb_memfd(const char *name, unsigned long long hsize,
				   unsigned long long size)
{
	unsigned int flags = MFD_HUGETLB | MFD_ALLOW_SEALING |
		(hsize == HL_1G ? MFD_HUGE_1GB : MFD_HUGE_2MB);
	int fd = memfd_create(name, flags);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * A hugetlb memfd of size bytes in pages of hsize, mapped and filled with
 * the per-word pattern of seed; bails out (the scenario cannot go on)
 * when it cannot be made. Returns the fd.
 */
static inline int hl_filled_hugetlb(const char *name, unsigned long long hsize,
				    unsigned long long size, uint64_t seed)
{
	int fd = hl_hugetlb_memfd(name, hsize, size);
	uint8_t *p = fd < 0 ? NULL : hl_map(fd, (size_t)size);

	if (!p)
		hl_bail("hugetlb memfd %s of %llu MiB: %s", name, size >> 20, strerror(errno));
	hl_pattern_fill(p, (size_t)size, 0, seed);
	munmap(p, (size_t)size);
	return fd;
}

/*
 * The pool of hsize pages is usable: a file of all n pages maps, every
 * word is written and read back, and no page of the pool is left free.
 */
static inline void hl_use_all_pages(unsigned long long hsize, long long n, const char *what)
{
	size_t sz = (size_t)(hsize * (unsigned long long)n);
	int fd = hl_hugetlb_memfd(what, hsize, sz);
	uint8_t *p = fd < 0 ? NULL : hl_map(fd, sz);

	hl_ok(p != NULL, "%s: a file of all %lld pages maps (%s)", what, n, p ? "ok" : strerror(errno));
	if (p) {
		hl_pattern_fill(p, sz, 0, 0x5e);
		hl_ok(hl_pattern_verify(p, sz, 0, 0x5e, NULL) && hl_hp(hsize, "free_hugepages") == 0,
		      "%s: every page written and read back, none left free", what);
		munmap(p, sz);
	}
	if (fd >= 0)
		close(fd);
}

/* Bind [addr, addr+len) to one NUMA node (MPOL_BIND); 0 or -1. */
static inline int hl_bind_node(void *addr, size_t len, int nid)
{
	unsigned long mask = 1UL << nid;

	/* MPOL_BIND == 2 */
	return (int)syscall(SYS_mbind, addr, len, 2, &mask,
			    sizeof(mask) * 8, 0);
}

/*
 * Put this process into cgroup v2 group NAME with the hugetlb controller
 * enabled; returns the group directory or NULL.
 */
static inline const char *hl_cgroup_enter(const char *name)
{
	static char dir[128];
	char pid[32];

	mkdir("/sys/fs/cgroup", 0755);
	if (mount("none", "/sys/fs/cgroup", "cgroup2", 0, NULL) && errno != EBUSY)
		return NULL;
	if (hl_write_str("/sys/fs/cgroup/cgroup.subtree_control", "+hugetlb"))
		return NULL;
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s", name);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return NULL;
	snprintf(pid, sizeof(pid), "%d", getpid());
	{
		char procs[160];

		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		if (hl_write_str(procs, pid))
			return NULL;
	}
	return dir;
}

/* hugetlb.<2MB|1GB>.current of a cgroup directory, bytes, or -1. */
static inline long long hl_cgroup_hugetlb(const char *dir,
					  unsigned long long hsize)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/hugetlb.%s.current", dir,
		 hsize == HL_1G ? "1GB" : "2MB");
	return hl_read_ll(path);
}

/* debugfs directory of the hugetlb live update handler (stats, test knobs). */
#define HL_LUO_DEBUGFS "/sys/kernel/debug/hugetlb/liveupdate"

/* A counter from HL_LUO_DEBUGFS/stats, or -1. */
static inline long long hl_luo_stat(const char *key)
{
	return hl_file_value(HL_LUO_DEBUGFS "/stats", key, ' ');
}

/*
 * Free memory, comparable between generations (hugetlb-10gen, soak):
 * caches dropped, per-cpu vm counters folded (stat_refresh), tmpfs/shmem
 * pages added back (MemFree + Shmem: the initramfs for a next generation
 * and shmem memfds come and go by design), the median of five samples
 * 100 ms apart (single samples scatter by several MB: pages on per-cpu
 * lists are not counted as free). kB.
 */
static inline long long hl_memfree_kb(void)
{
	long long v[5], t;

	hl_write_str("/proc/sys/vm/drop_caches", "3");
	for (int i = 0; i < 5; i++) {
		usleep(100000);
		hl_write_str("/proc/sys/vm/stat_refresh", "1");
		v[i] = hl_meminfo("MemFree") + hl_meminfo("Shmem");
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			if (v[j] < v[i]) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
			}
	return v[2];
}

/* Least-squares slope of the points (x[i], y[i]), i < n (0 when n < 2). */
static inline double hl_slope(const double *x, const double *y, int n)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, d;

	for (int i = 0; i < n; i++) {
		sx += x[i];
		sy += y[i];
		sxx += x[i] * x[i];
		sxy += x[i] * y[i];
	}
	d = n * sxx - sx * sx;
	return n < 2 || d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

#endif
