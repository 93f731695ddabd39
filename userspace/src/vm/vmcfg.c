/* SPDX-License-Identifier: MIT */
/* hugelive-vm: configuration, QEMU's command line, manifest (see vmcfg.h). */
#include "vmcfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

void vm_cfg_defaults(struct vm_cfg *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->name, "vm");
	strcpy(c->qemu, "qemu-system-x86_64");
	strcpy(c->append, "console=ttyS0");
	strcpy(c->accel, "kvm");
	strcpy(c->machine, "pc");
	c->mem = 512 * MiB;
	c->page = 2 * MiB;
	c->smp = 1;
}

int vm_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mul = 1ULL << 10; break;
		case 'm': case 'M': mul = 1ULL << 20; break;
		case 'g': case 'G': mul = 1ULL << 30; break;
		default: return -EINVAL;
		}
		if (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *psize(uint64_t p)
{
	return p == GiB ? "1 GiB" : p == 2 * MiB ? "2 MiB" : p == 4096 ? "4 KiB" : "unusual";
}

int vm_cfg_check(const struct vm_cfg *c, char *err, size_t errlen)
{
	size_t n = strlen(c->name);

	if (!n || n > VM_NAME_MAX || c->name[0] == '.' || c->name[0] == '-')
		return fail(err, errlen, "name '%s': 1-%d characters of [A-Za-z0-9._-], not starting with '.' or '-'",
			    c->name, VM_NAME_MAX);
	for (const char *p = c->name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return fail(err, errlen, "name '%s': character '%c' not allowed (use [A-Za-z0-9._-])",
				    c->name, *p);
	if (c->page != 2 * MiB && c->page != GiB)
		return fail(err, errlen, "page size %llu: guest RAM is in 2 MiB or 1 GiB huge pages (--page-size 2M|1G)",
			    (unsigned long long)c->page);
	if (c->mem < 64 * MiB)
		return fail(err, errlen, "memory %llu MiB: at least 64 MiB", (unsigned long long)(c->mem / MiB));
	if (c->mem % c->page)
		return fail(err, errlen, "memory %llu MiB is not a multiple of the %s page size",
			    (unsigned long long)(c->mem / MiB), psize(c->page));
	if (c->smp < 1 || c->smp > 64)
		return fail(err, errlen, "cpus %d: 1 to 64", c->smp);
	if (strcmp(c->accel, "kvm") && strcmp(c->accel, "tcg"))
		return fail(err, errlen, "accelerator '%s': kvm or tcg", c->accel);
	if (!c->kernel[0])
		return fail(err, errlen, "no guest kernel (--kernel PATH)");
	if (!c->qemu[0])
		return fail(err, errlen, "no QEMU program (--qemu PATH)");
	for (const char *p = c->append; *p; p++)
		if ((unsigned char)*p < 0x20)
			return fail(err, errlen, "guest command line has a control character");
	for (const char *s = c->machine; *s; s++)
		if (*s == ',')
			return fail(err, errlen, "machine type '%s': no options here", c->machine);
	return 0;
}

static int add(char **v, size_t *n, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int add(char **v, size_t *n, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*n + 1 >= cap)
		return -1;
	va_start(ap, fmt);
	r = vasprintf(&v[*n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		v[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

/* QEMU's option syntax doubles a ',' inside a value. */
static char *commas(const char *s)
{
	size_t n = 0;
	char *o, *p;

	for (const char *q = s; *q; q++)
		n += *q == ',' ? 2 : 1;
	o = p = malloc(n + 1);
	if (!o)
		return NULL;
	for (const char *q = s; *q; q++) {
		*p++ = *q;
		if (*q == ',')
			*p++ = ',';
	}
	*p = 0;
	return o;
}

char **vm_qemu_argv(const struct vm_cfg *c, const char *qemu_path, const char *ram_path,
		    const char *console_path, const char *qmp_path, bool incoming)
{
	const size_t cap = 64;
	char **v = calloc(cap, sizeof(*v));
	char *ram = commas(ram_path), *con = commas(console_path), *qmp = commas(qmp_path);
	size_t n = 0;
	int bad = !v || !ram || !con || !qmp;
	const char *cpu = c->cpu[0] ? c->cpu : !strcmp(c->accel, "kvm") ? "host,-xsave" : "max";

	if (!bad) {
		bad |= add(v, &n, cap, "%s", qemu_path);
		bad |= add(v, &n, cap, "-name") | add(v, &n, cap, "%s", c->name);
		bad |= add(v, &n, cap, "-nodefaults") | add(v, &n, cap, "-no-user-config");
		bad |= add(v, &n, cap, "-display") | add(v, &n, cap, "none");
		bad |= add(v, &n, cap, "-no-reboot");
		bad |= add(v, &n, cap, "-machine") | add(v, &n, cap, "%s,memory-backend=hlvm-ram", c->machine);
		bad |= add(v, &n, cap, "-accel") | add(v, &n, cap, "%s", c->accel);
		bad |= add(v, &n, cap, "-cpu") | add(v, &n, cap, "%s", cpu);
		bad |= add(v, &n, cap, "-smp") | add(v, &n, cap, "%d", c->smp);
		bad |= add(v, &n, cap, "-m") | add(v, &n, cap, "%lluM", (unsigned long long)(c->mem / MiB));
		bad |= add(v, &n, cap, "-object");
		bad |= add(v, &n, cap, "memory-backend-file,id=hlvm-ram,size=%llu,mem-path=%s,share=on",
			   (unsigned long long)c->mem, ram);
		bad |= add(v, &n, cap, "-kernel") | add(v, &n, cap, "%s", c->kernel);
		if (c->initrd[0])
			bad |= add(v, &n, cap, "-initrd") | add(v, &n, cap, "%s", c->initrd);
		bad |= add(v, &n, cap, "-append") | add(v, &n, cap, "%s", c->append);
		bad |= add(v, &n, cap, "-chardev") | add(v, &n, cap, "file,id=hlvm-con,path=%s,append=on", con);
		bad |= add(v, &n, cap, "-serial") | add(v, &n, cap, "chardev:hlvm-con");
		bad |= add(v, &n, cap, "-qmp") | add(v, &n, cap, "unix:%s,server=on,wait=off", qmp);
		if (incoming) {
			bad |= add(v, &n, cap, "-S");
			bad |= add(v, &n, cap, "-incoming") | add(v, &n, cap, "defer");
		}
	}
	free(ram);
	free(con);
	free(qmp);
	if (bad) {
		vm_free_argv(v);
		return NULL;
	}
	return v;
}

void vm_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

char *vm_argv_str(char *const *argv)
{
	size_t len = 1;
	char *s, *p;

	for (char *const *a = argv; *a; a++)
		len += strlen(*a) + 3;
	s = p = malloc(len);
	if (!s)
		return NULL;
	for (char *const *a = argv; *a; a++) {
		bool q = strpbrk(*a, " \t\"'") != NULL;

		p += sprintf(p, "%s%s%s%s", a == argv ? "" : " ", q ? "'" : "", *a, q ? "'" : "");
	}
	return s;
}

/* ---- manifest ----------------------------------------------------------- */

char *vm_manifest_to_json(const struct vm_manifest *m)
{
	json_object *o = json_object_new_object();
	const struct vm_cfg *c = &m->cfg;
	char *s;

	json_object_object_add(o, "format", json_object_new_string("hugelive-vm-manifest-v1"));
	json_object_object_add(o, "name", json_object_new_string(c->name));
	json_object_object_add(o, "qemu", json_object_new_string(c->qemu));
	json_object_object_add(o, "kernel", json_object_new_string(c->kernel));
	json_object_object_add(o, "initrd", json_object_new_string(c->initrd));
	json_object_object_add(o, "append", json_object_new_string(c->append));
	json_object_object_add(o, "accel", json_object_new_string(c->accel));
	json_object_object_add(o, "cpu", json_object_new_string(c->cpu));
	json_object_object_add(o, "machine", json_object_new_string(c->machine));
	json_object_object_add(o, "mem", json_object_new_int64((int64_t)c->mem));
	json_object_object_add(o, "page", json_object_new_int64((int64_t)c->page));
	json_object_object_add(o, "smp", json_object_new_int(c->smp));
	json_object_object_add(o, "stop_realtime_ns", json_object_new_int64(m->stop_realtime_ns));
	json_object_object_add(o, "stop_tsc", json_object_new_int64((int64_t)m->stop_tsc));
	json_object_object_add(o, "state_bytes", json_object_new_int64((int64_t)m->state_bytes));
	json_object_object_add(o, "save_ms", json_object_new_int64((int64_t)m->save_ms));
	json_object_object_add(o, "updates", json_object_new_int64(m->updates));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static int jstr(json_object *o, const char *k, char *dst, size_t len, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return fail(err, errlen, "manifest: no string \"%s\"", k);
	if (strlen(json_object_get_string(v)) >= len)
		return fail(err, errlen, "manifest: \"%s\" too long", k);
	strcpy(dst, json_object_get_string(v));
	return 0;
}

static int jint(json_object *o, const char *k, int64_t *dst, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return fail(err, errlen, "manifest: no number \"%s\"", k);
	*dst = json_object_get_int64(v);
	return 0;
}

int vm_manifest_from_json(const char *text, struct vm_manifest *m, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(text);
	char fmt[64];
	int64_t mem = 0, page = 0, smp = 0, tsc = 0, sb = 0, sm = 0, up = 0;
	struct vm_cfg *c = &m->cfg;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(err, errlen, "manifest: not a JSON object");
	}
	rc = jstr(o, "format", fmt, sizeof(fmt), err, errlen);
	if (!rc && strcmp(fmt, "hugelive-vm-manifest-v1"))
		rc = fail(err, errlen, "manifest: unknown format '%s'", fmt);
	if (!rc)
		rc = jstr(o, "name", c->name, sizeof(c->name), err, errlen) ||
		     jstr(o, "qemu", c->qemu, sizeof(c->qemu), err, errlen) ||
		     jstr(o, "kernel", c->kernel, sizeof(c->kernel), err, errlen) ||
		     jstr(o, "initrd", c->initrd, sizeof(c->initrd), err, errlen) ||
		     jstr(o, "append", c->append, sizeof(c->append), err, errlen) ||
		     jstr(o, "accel", c->accel, sizeof(c->accel), err, errlen) ||
		     jstr(o, "cpu", c->cpu, sizeof(c->cpu), err, errlen) ||
		     jstr(o, "machine", c->machine, sizeof(c->machine), err, errlen) ||
		     jint(o, "mem", &mem, err, errlen) || jint(o, "page", &page, err, errlen) ||
		     jint(o, "smp", &smp, err, errlen) ||
		     jint(o, "stop_realtime_ns", &m->stop_realtime_ns, err, errlen) ||
		     jint(o, "stop_tsc", &tsc, err, errlen) || jint(o, "state_bytes", &sb, err, errlen) ||
		     jint(o, "save_ms", &sm, err, errlen) || jint(o, "updates", &up, err, errlen) ? -EINVAL : 0;
	json_object_put(o);
	if (rc)
		return -EINVAL;
	if (mem <= 0 || page <= 0 || smp <= 0 || smp > 64 || sb < 0 || up < 0)
		return fail(err, errlen, "manifest: a number is out of range");
	c->mem = (uint64_t)mem;
	c->page = (uint64_t)page;
	c->smp = (int)smp;
	m->stop_tsc = (uint64_t)tsc;
	m->state_bytes = (uint64_t)sb;
	m->save_ms = (uint64_t)sm;
	m->updates = (uint32_t)up;
	return vm_cfg_check(c, err, errlen);
}

int vm_check_ram_fd(int fd, uint64_t size, uint64_t page, char *err, size_t errlen)
{
	struct statfs sf;
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "guest RAM fd %d: %s", fd, strerror(errno));
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "guest RAM fd %d is not a file (%s): it must be a hugetlb memfd", fd,
			 S_ISFIFO(st.st_mode) ? "a pipe" : S_ISSOCK(st.st_mode) ? "a socket" :
			 S_ISDIR(st.st_mode) ? "a directory" : "a device or other special file");
		return -EINVAL;
	}
	if (fstatfs(fd, &sf)) {
		snprintf(err, errlen, "guest RAM fd %d: fstatfs: %s", fd, strerror(errno));
		return -errno;
	}
	if ((unsigned long)sf.f_type != HUGETLBFS_MAGIC) {
		snprintf(err, errlen, "guest RAM fd %d is %s, not hugetlb: create it with "
			 "memfd_create(MFD_HUGETLB | MFD_HUGE_%s)", fd,
			 (unsigned long)sf.f_type == TMPFS_MAGIC ? "a shmem (tmpfs) file" : "on another file system",
			 page == GiB ? "1GB" : "2MB");
		return -EINVAL;
	}
	if ((uint64_t)sf.f_bsize != page) {
		snprintf(err, errlen, "guest RAM fd %d has %s pages, the guest is configured for %s pages", fd,
			 psize((uint64_t)sf.f_bsize), psize(page));
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < size) {
		snprintf(err, errlen, "guest RAM fd %d holds %llu MiB, the guest needs %llu MiB", fd,
			 (unsigned long long)(st.st_size >> 20), (unsigned long long)(size / MiB));
		return -EINVAL;
	}
	if ((fl & O_ACCMODE) != O_RDWR) {
		snprintf(err, errlen, "guest RAM fd %d is not open read-write", fd);
		return -EBADF;
	}
	return 0;
}
