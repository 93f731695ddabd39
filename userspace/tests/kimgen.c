/* SPDX-License-Identifier: MIT */
/* Synthetic bzImage writer for the host tests: see kimgen.h. */
#include "kimgen.h"

#include <lzma.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

const char *const kimg_all[] = { "kho-v4", "luo-v5", "memfd-v2", "hugetlb-memfd-v1", "hugetlb-pool-v2", NULL };
const char *const kimg_no_hugetlb[] = { "kho-v4", "luo-v5", "memfd-v2", NULL };
const char *const kimg_v01[] = { "kho-v4", "luo-v5", "memfd-v2", "hugetlb-memfd-v1", "hugetlb-pool-v1", NULL };
const char *const kimg_reads_v01[] = { "kho-v4", "luo-v5", "memfd-v2", "hugetlb-memfd-v1", "hugetlb-pool-v1",
				       "hugetlb-pool-v2", NULL };

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned char *compress_buf(const char *comp, const unsigned char *in, size_t len, size_t *out_len)
{
	size_t cap = len + len / 2 + 65536;
	unsigned char *out = malloc(cap);

	if (!out)
		return NULL;
	if (!strcmp(comp, "gzip")) {
		z_stream z;

		memset(&z, 0, sizeof(z));
		if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			goto bad;
		z.next_in = (unsigned char *)in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
			deflateEnd(&z);
			goto bad;
		}
		*out_len = z.total_out;
		deflateEnd(&z);
	} else if (!strcmp(comp, "xz") || !strcmp(comp, "lzma")) {
		lzma_stream z = LZMA_STREAM_INIT;
		lzma_options_lzma opt;

		lzma_lzma_preset(&opt, 6);
		if ((!strcmp(comp, "xz") ? lzma_easy_encoder(&z, 6, LZMA_CHECK_CRC32)
					 : lzma_alone_encoder(&z, &opt)) != LZMA_OK)
			goto bad;
		z.next_in = in;
		z.avail_in = len;
		z.next_out = out;
		z.avail_out = cap;
		if (lzma_code(&z, LZMA_FINISH) != LZMA_STREAM_END) {
			lzma_end(&z);
			goto bad;
		}
		*out_len = z.total_out;
		lzma_end(&z);
	} else if (!strcmp(comp, "zstd")) {
		size_t r = ZSTD_compress(out, cap, in, len, 19);

		if (ZSTD_isError(r))
			goto bad;
		*out_len = r;
	} else if (!strcmp(comp, "none")) {
		memcpy(out, in, len);
		*out_len = len;
	} else if (!strcmp(comp, "lz4") || !strcmp(comp, "bzip2")) {
		memset(out, 0, 64);
		memcpy(out, !strcmp(comp, "lz4") ? "\002\041\114\030" : "BZh9", 4);
		*out_len = 64;
	} else {
		goto bad;
	}
	return out;
bad:
	free(out);
	return NULL;
}

int kimg_write(const char *path, const char *comp, const char *const *strings, unsigned flags)
{
	size_t filler = (flags & KIMG_BIG) ? (24u << 20) : (1u << 20) - 5, vlen = filler + 4096, o, clen = 0;
	unsigned char *vm = calloc(1, vlen), *pay, *img;
	size_t setup = 2 * 512, poff = 0x100, flen;
	FILE *f;
	int rc = -1;

	if (!vm)
		return -1;
	memcpy(vm, (flags & KIMG_NOT_ELF) ? "JUNK" : "\177ELF", 4);
	o = filler;
	for (size_t i = 0; strings && strings[i]; i++) {
		memcpy(vm + o, strings[i], strlen(strings[i]) + 1);
		o += strlen(strings[i]) + 1 + 16;	/* NUL, then a gap */
	}
	pay = compress_buf(comp, vm, o, &clen);
	free(vm);
	if (!pay)
		return -1;
	if (flags & KIMG_CUT_STREAM)
		clen = clen * 2 / 3;
	flen = setup + poff + clen + 4 + 512;
	img = calloc(1, flen);
	if (!img) {
		free(pay);
		return -1;
	}
	memcpy(img, (flags & KIMG_BAD_START) ? "BAD" : "MZ", (flags & KIMG_BAD_START) ? 3 : 2);
	img[0x1f1] = 1;					/* setup_sects */
	put16(img + 0x1fe, 0xAA55);			/* boot_flag */
	memcpy(img + 0x202, "HdrS", 4);
	put16(img + 0x206, (flags & KIMG_OLD_PROTO) ? 0x020b : 0x020f);
	img[0x211] = 0x01;				/* LOADED_HIGH */
	img[0x234] = (flags & KIMG_NOT_RELOC) ? 0 : 1;
	put16(img + 0x236, (flags & KIMG_NO_ABOVE_4G) ? 0x01 : 0x03);
	put32(img + 0x248, (uint32_t)poff);
	put32(img + 0x24c, (uint32_t)(clen + 4));
	memcpy(img + setup + poff, pay, clen);
	put32(img + setup + poff + clen, (uint32_t)o);	/* the kernel's size_append */
	free(pay);
	if (flags & KIMG_TRUNCATE)
		flen = setup + poff + clen / 2;
	f = fopen(path, "w");
	if (f) {
		rc = fwrite(img, 1, flen, f) == flen ? 0 : -1;
		if (fclose(f))
			rc = -1;
	}
	free(img);
	return rc;
}
