/* SPDX-License-Identifier: MIT */
/*
 * hugelive-vm: the guest's configuration (what QEMU is started with, the
 * same before and after an update: the migration stream only fits a QEMU
 * with the same machine), its checks, QEMU's command line, and the
 * manifest that carries it across the update (JSON in a memfd).
 */
#ifndef HLVM_VMCFG_H
#define HLVM_VMCFG_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_NAME_MAX	40	/* sessions NAME and NAME.state: agent names are <= 48 */
#define VM_MIN_QEMU_MAJOR 4	/* x-ignore-shared came with QEMU 4.0 */
#define VM_RUNDIR	"/run/hugelive-vm"

struct vm_cfg {
	char name[VM_NAME_MAX + 1];
	char qemu[PATH_MAX];		/* program (a path, or a name looked up in PATH) */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];		/* "" : none */
	char append[1024];
	char accel[8];			/* "kvm" or "tcg" */
	char cpu[64];			/* "" : host,-xsave (kvm), max (tcg) */
	char machine[32];		/* QEMU machine type */
	uint64_t mem;			/* bytes */
	uint64_t page;			/* huge page size of the RAM memfd: 2 MiB or 1 GiB */
	int smp;
};

/* Defaults (name "vm", 512 MiB, 2 MiB pages, kvm, 1 CPU, machine "pc"). */
void vm_cfg_defaults(struct vm_cfg *c);
/* "512M", "1G", "2048K", "1073741824": bytes. 0 or -EINVAL/-ERANGE. */
int vm_parse_size(const char *s, uint64_t *out);
/* The whole configuration makes sense: 0, or -EINVAL with a message in err. */
int vm_cfg_check(const struct vm_cfg *c, char *err, size_t errlen);
/*
 * QEMU's argv (NULL-terminated, strings allocated; vm_free_argv()):
 * ram_path and console_path are /proc/PID/fd/N paths of the memfds,
 * qmp_path the QMP socket; incoming adds "-S -incoming defer".
 */
char **vm_qemu_argv(const struct vm_cfg *c, const char *qemu_path, const char *ram_path,
		    const char *console_path, const char *qmp_path, bool incoming);
void vm_free_argv(char **argv);
/* The argv as one shell-like line, for the log. */
char *vm_argv_str(char *const *argv);

/* Manifest: the configuration plus what the next kernel's launcher needs. */
struct vm_manifest {
	struct vm_cfg cfg;
	int64_t stop_realtime_ns;	/* when the guest was stopped for the update */
	uint64_t stop_tsc;		/* the same moment, TSC (counts across kexec) */
	uint64_t state_bytes;		/* size of the saved device state */
	uint64_t save_ms;		/* stop -> device state saved */
	uint32_t updates;		/* host updates this guest went through before this one */
};
/* Serialise: a JSON string (free()). */
char *vm_manifest_to_json(const struct vm_manifest *m);
/* Parse and check: 0, or -EINVAL with a message in err. */
int vm_manifest_from_json(const char *text, struct vm_manifest *m, char *err, size_t errlen);

/*
 * A fd that is to be guest RAM: a hugetlb memfd (or hugetlbfs file) of
 * page size `page` and at least `size` bytes, open read-write. 0, or a
 * negative errno with a message in err that says what it is instead.
 */
int vm_check_ram_fd(int fd, uint64_t size, uint64_t page, char *err, size_t errlen);

#endif
