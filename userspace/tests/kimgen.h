/* SPDX-License-Identifier: MIT */
/*
 * Synthetic x86 bzImage files for the host tests: a valid boot setup
 * header ("HdrS", protocol 2.15, 64-bit, relocatable, loadable above 4G)
 * and a compressed "vmlinux" (ELF magic, filler, then the given strings,
 * each NUL-terminated and placed across the 1 MiB scan chunk boundary).
 */
#ifndef HL_TEST_KIMGEN_H
#define HL_TEST_KIMGEN_H

#include <stddef.h>

enum {
	KIMG_OLD_PROTO = 1 << 0,	/* boot protocol 2.11 */
	KIMG_NO_ABOVE_4G = 1 << 1,	/* XLF_CAN_BE_LOADED_ABOVE_4G clear */
	KIMG_NOT_RELOC = 1 << 2,	/* relocatable_kernel 0 */
	KIMG_TRUNCATE = 1 << 3,		/* file cut in the middle of the payload */
	KIMG_CUT_STREAM = 1 << 4,	/* header intact, compressed stream cut short */
	KIMG_BAD_START = 1 << 5,	/* "BAD" at offset 0: the fake kexec load refuses it */
	KIMG_NOT_ELF = 1 << 6,		/* payload decompresses to something else */
	KIMG_BIG = 1 << 7,		/* 24 MiB of zeros before the strings */
};

/* The strings of a kernel of this series with the hugetlb handler (NULL-terminated). */
extern const char *const kimg_all[];
/* ... and of one without it (stock 7.3 + memfd: KHO, LUO, memfd). */
extern const char *const kimg_no_hugetlb[];
/* ... of release v0.1 (it writes hugetlb-pool-v1) */
extern const char *const kimg_v01[];
/* ... of a series that writes hugetlb-pool-v2 and reads hugetlb-pool-v1 too */
extern const char *const kimg_reads_v01[];

/* comp: "gzip", "xz", "lzma", "zstd", "none", or "lz4"/"bzip2" (magic only). Returns 0 or -1. */
int kimg_write(const char *path, const char *comp, const char *const *strings, unsigned flags);

#endif
