/* SPDX-License-Identifier: MIT */
/*
 * Preflight of a target kernel image (issue 10 item 3): read the x86
 * bzImage setup header, decompress the payload (zlib, liblzma, libzstd)
 * and look in the decompressed kernel for the compatible strings of the
 * formats that what is preserved needs. Shared by the agent (which refuses
 * an update before loading anything) and `hugelivectl check --kernel`.
 */
#ifndef HL_KIMAGE_H
#define HL_KIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a format is needed for (bits of a "needs" mask). */
enum {
	HL_NEED_KHO = 1u << 0,		/* any update: the KHO FDT the next kernel parses */
	HL_NEED_LUO = 1u << 1,		/* any preserved session (the agent's own state is one) */
	HL_NEED_MEMFD = 1u << 2,	/* a shmem memfd (the agent's state memfd is one) */
	HL_NEED_HUGETLB = 1u << 3,	/* a hugetlb file */
};

/*
 * A format family ("hugetlb-pool") and the version this build knows the
 * kernel series writes ("hugetlb-pool-v2" = family "-v" version). A kernel
 * carries the compatible string of every version it writes or reads in its
 * .rodata; it writes the highest one (include/linux/kho/abi/, and
 * docs/compatibility.md).
 */
struct hl_format {
	const char *compatible;	/* as the kernel spells it (include/linux/kho/abi/) */
	const char *what;	/* for messages */
	unsigned need;		/* HL_NEED_* bit */
	const char *fix;	/* what to do when it is missing */
	const char *family;	/* compatible without its "-vN" */
	unsigned version;	/* N: the built-in table's version */
};

/* The one table of formats (kernel ABI strings); hl_nformats entries. */
extern const struct hl_format hl_formats[];
extern const size_t hl_nformats;
#define HL_MAX_FORMATS 16
#define HL_MAX_VERSION 63

/* Default bound of the decompressed kernel (bytes) and of the image file. */
#define HL_KIMAGE_MAX_OUT (512ull << 20)
#define HL_KIMAGE_MAX_FILE (256ull << 20)

struct hl_kimage {
	uint16_t version;		/* boot protocol, 0x020c = 2.12 */
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t relocatable;
	uint64_t file_len;
	uint64_t payload_len;
	uint64_t out_len;		/* bytes of decompressed kernel scanned */
	const char *compression;	/* "gzip", "xz", "lzma", "zstd", "none", ... */
	bool found[HL_MAX_FORMATS];	/* index as hl_formats: its compatible occurs */
	/*
	 * Per family (index as hl_formats): bit N set when "<family>-vN" occurs
	 * NUL-terminated (vers; possibly only as the tail of a longer string,
	 * which the linker's string merging can make of a real one) and when
	 * it also starts a string (vers_alone: preceded by a NUL).
	 */
	uint64_t vers[HL_MAX_FORMATS];
	uint64_t vers_alone[HL_MAX_FORMATS];
	bool banner_found;		/* the banner asked for occurs (hl_kimage_inspect_banner) */
};

/*
 * Inspect the image open on fd (read with pread; name is for messages).
 * max_out bounds the decompressed size (0: HL_KIMAGE_MAX_OUT). Returns 0,
 * or -errno with a message in err: -ENOEXEC not a loadable x86-64 bzImage
 * (no "HdrS", old protocol, flags kexec_file_load needs, truncated or
 * damaged payload), -EOPNOTSUPP a compression this build cannot read
 * (lz4, bzip2, lzo), -EFBIG over a bound, or the errno of a read.
 */
int hl_kimage_inspect_fd(int fd, const char *name, uint64_t max_out, struct hl_kimage *ki,
			 char *err, size_t errlen);
/* The same on a path (opened read-only). */
int hl_kimage_inspect(const char *path, uint64_t max_out, struct hl_kimage *ki, char *err, size_t errlen);
/* hl_kimage_inspect() that also looks for banner (e.g. /proc/version without its newline). */
int hl_kimage_inspect_banner(const char *path, uint64_t max_out, const char *banner, struct hl_kimage *ki,
			     char *err, size_t errlen);
/* The highest version of family i in ki (strings that start a string first), 0 if none. */
unsigned hl_kimage_version(const struct hl_kimage *ki, size_t i);

/*
 * The formats the running kernel writes (issue 10): the highest version of
 * every family in the running kernel's image. The image is the one given,
 * else /boot/vmlinuz-$(uname -r), else /lib/modules/$(uname -r)/vmlinuz; it
 * only counts when /proc/version (the banner of the kernel that runs)
 * occurs in it. Without such an image, or for a family the image lacks,
 * the built-in table (hl_formats) stands in and note says why.
 */
struct hl_running {
	bool from_image;		/* read from the running kernel's image */
	char image[512];		/* the image read (or tried) */
	char release[128];		/* uname -r */
	unsigned version[HL_MAX_FORMATS]; /* per family: the version required of a target */
	bool in_image[HL_MAX_FORMATS];	/* that version came from the image */
	char note[600];			/* why the built-in table is used; "" when it is not */
};
/* Fills r; returns 0 when the formats come from the image, 1 when from the built-in table. */
int hl_running_formats(const char *image, struct hl_running *r);
/* The built-in table as the running kernel's formats (no image looked at). */
void hl_running_builtin(struct hl_running *r);
/* "<family>-vN": the compatible string family i of the running kernel needs in a target. */
const char *hl_running_compat(const struct hl_running *r, size_t i, char *buf, size_t len);
/* Does ki have the compatible string of family i that r writes? */
bool hl_kimage_takes(const struct hl_kimage *ki, const struct hl_running *r, size_t i);

/* The needs mask of what is preserved: always KHO, LUO and memfd (the agent's state). */
unsigned hl_needs_of(int hugetlb_files);

/*
 * The formats of needs that ki lacks: a list "compat (what), ..." in out;
 * returns how many. fix (may be NULL) gets the fix of the first missing one
 * (a static buffer for a format the running kernel writes in another
 * version than the built-in table's). run: what the running kernel writes
 * (NULL: the built-in table).
 */
int hl_kimage_missing_run(const struct hl_kimage *ki, const struct hl_running *run, unsigned needs, char *out,
			  size_t len, const char **fix);
int hl_kimage_missing(const struct hl_kimage *ki, unsigned needs, char *out, size_t len, const char **fix);

/* What to do about an image hl_kimage_inspect() refuses: part of every such message. */
#define HL_KIMAGE_FIX "give the complete x86-64 bzImage of the kernel to update into, as its build " \
	"(arch/x86/boot/bzImage) or package (/boot/vmlinuz-VERSION) installs it"

#endif
