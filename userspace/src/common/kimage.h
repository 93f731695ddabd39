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

struct hl_format {
	const char *compatible;	/* as the kernel spells it (include/linux/kho/abi/) */
	const char *what;	/* for messages */
	unsigned need;		/* HL_NEED_* bit */
	const char *fix;	/* what to do when it is missing */
};

/* The one table of formats (kernel ABI strings); hl_nformats entries. */
extern const struct hl_format hl_formats[];
extern const size_t hl_nformats;
#define HL_MAX_FORMATS 16

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
	bool found[HL_MAX_FORMATS];	/* index as hl_formats */
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

/* The needs mask of what is preserved: always KHO, LUO and memfd (the agent's state). */
unsigned hl_needs_of(int hugetlb_files);

/*
 * The formats of needs that ki lacks: a list "compat (what), ..." in out;
 * returns how many. fix (may be NULL) gets the fix of the first missing one.
 */
int hl_kimage_missing(const struct hl_kimage *ki, unsigned needs, char *out, size_t len, const char **fix);

#endif
