/* SPDX-License-Identifier: MIT */
/* Target kernel image preflight: see kimage.h. */
#include "kimage.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/*
 * The compatible strings of the series (build/linux/include/linux/kho/abi/):
 * KHO_FDT_COMPATIBLE (kexec_handover.h), LUO_ABI_COMPATIBLE (luo.h),
 * MEMFD_LUO_FH_COMPATIBLE (memfd.h), HUGETLB_LUO_FH_COMPATIBLE and
 * HUGETLB_LUO_POOL_COMPATIBLE (hugetlb.h). A kernel that registers a
 * handler or writes a format has its string in .rodata. Change them here
 * only, together with the kernel's.
 */
const struct hl_format hl_formats[] = {
	{ "kho-v4", "KHO (kexec handover) FDT", HL_NEED_KHO,
	  "boot a kernel of the same KHO version with CONFIG_KEXEC_HANDOVER", "kho", 4 },
	{ "luo-v5", "LUO (live update orchestrator) ABI", HL_NEED_LUO,
	  "boot a kernel of the same LUO version with CONFIG_LIVEUPDATE", "luo", 5 },
	{ "memfd-v2", "memfd (shmem) file handler", HL_NEED_MEMFD,
	  "boot a kernel with CONFIG_LIVEUPDATE_MEMFD of the same memfd version", "memfd", 2 },
	{ "hugetlb-memfd-v1", "hugetlb file handler", HL_NEED_HUGETLB,
	  "boot a kernel with CONFIG_LIVEUPDATE_HUGETLB, or finish the sessions holding hugetlb files",
	  "hugetlb-memfd", 1 },
	{ "hugetlb-pool-v2", "hugetlb pool format", HL_NEED_HUGETLB,
	  "boot a kernel with CONFIG_LIVEUPDATE_HUGETLB, or finish the sessions holding hugetlb files",
	  "hugetlb-pool", 2 },
};
const size_t hl_nformats = sizeof(hl_formats) / sizeof(hl_formats[0]);
_Static_assert(sizeof(hl_formats) / sizeof(hl_formats[0]) <= HL_MAX_FORMATS, "hl_formats too long");

/* x86 boot protocol (Documentation/arch/x86/boot.rst) */
#define HDR_MIN		0x250		/* through payload_length */
#define OFF_SETUP_SECTS	0x1f1
#define OFF_BOOT_FLAG	0x1fe
#define OFF_HEADER	0x202
#define OFF_VERSION	0x206
#define OFF_LOADFLAGS	0x211
#define OFF_RELOC	0x234
#define OFF_XLOADFLAGS	0x236
#define OFF_PAYLOAD_OFF	0x248
#define OFF_PAYLOAD_LEN	0x24c
#define LOADED_HIGH	0x01
#define XLF_KERNEL_64	0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02

#define CHUNK (1u << 20)
#define OVL 512			/* longer than every compatible string + NUL and a banner */

struct scan {
	unsigned char *buf;	/* OVL + CHUNK */
	size_t keep;		/* bytes carried over from the previous chunk */
	uint64_t total, max;
	bool started;
	struct hl_kimage *ki;
	char *err;
	size_t errlen;
	const char *name;
	const char *banner;	/* or NULL */
	size_t banner_len;
};

static int fail(struct scan *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct scan *s, int code, const char *fmt, ...)
{
	va_list ap;
	int o = snprintf(s->err, s->errlen, "%s: ", s->name);

	va_start(ap, fmt);
	if (o >= 0 && (size_t)o < s->errlen)
		vsnprintf(s->err + o, s->errlen - (size_t)o, fmt, ap);
	va_end(ap);
	return -code;
}

/*
 * Every "<family>-vN" followed by a NUL in the have bytes at buf: bit N of
 * vers[i], and of vers_alone[i] when a NUL (or the start of the scan)
 * precedes it. Strings in the kept tail are seen twice, which a bit does
 * not mind; one cut by the chunk end is seen whole in the next chunk.
 */
static void scan_family(struct scan *s, size_t i, size_t have)
{
	const char *fam = hl_formats[i].family;
	size_t flen = strlen(fam);
	const unsigned char *p = s->buf, *end = s->buf + have, *q;

	while ((q = memmem(p, (size_t)(end - p), fam, flen))) {
		const unsigned char *d = q + flen;
		unsigned v = 0;
		size_t nd = 0;

		p = q + 1;
		if (end - d < 4 || d[0] != '-' || d[1] != 'v')
			continue;
		for (d += 2; d < end && *d >= '0' && *d <= '9' && nd < 3; d++, nd++)
			v = v * 10 + (unsigned)(*d - '0');
		if (!nd || d >= end || *d || v > HL_MAX_VERSION)
			continue;
		s->ki->vers[i] |= 1ull << v;
		if (q == s->buf || q[-1] == '\0')
			s->ki->vers_alone[i] |= 1ull << v;
	}
}

/* n new bytes at buf + keep: look for the strings, keep the tail. */
static int feed(struct scan *s, size_t n)
{
	size_t have = s->keep + n;

	if (!n)
		return 0;
	if (!s->started) {
		s->started = true;
		if (have < 4 || memcmp(s->buf, "\177ELF", 4))
			return fail(s, ENOEXEC, "the decompressed payload is not an ELF kernel (not a Linux bzImage?)");
	}
	s->total += n;
	if (s->total > s->max)
		return fail(s, EFBIG, "the decompressed kernel exceeds the bound of %llu MiB",
			    (unsigned long long)(s->max >> 20));
	for (size_t i = 0; i < hl_nformats; i++) {
		if (!s->ki->found[i] && memmem(s->buf, have, hl_formats[i].compatible,
					       strlen(hl_formats[i].compatible) + 1))
			s->ki->found[i] = true;
		scan_family(s, i, have);
	}
	if (s->banner && !s->ki->banner_found && memmem(s->buf, have, s->banner, s->banner_len))
		s->ki->banner_found = true;
	s->keep = have < OVL ? have : OVL;
	memmove(s->buf, s->buf + have - s->keep, s->keep);
	return 0;
}

static int trunc_err(struct scan *s, const char *comp)
{
	return fail(s, ENOEXEC, "the %s payload is truncated (the image is cut short?)", comp);
}

static int un_gzip(struct scan *s, const unsigned char *in, size_t len)
{
	z_stream z;
	int ret, rc = 0;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return fail(s, ENOMEM, "zlib: cannot initialise");
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	do {
		z.next_out = s->buf + s->keep;
		z.avail_out = CHUNK;
		ret = inflate(&z, Z_NO_FLUSH);
		if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
			rc = fail(s, ENOEXEC, "the gzip payload is damaged (zlib: %s)", z.msg ? z.msg : zError(ret));
			break;
		}
		rc = feed(s, CHUNK - z.avail_out);
		if (rc)
			break;
		if (ret != Z_STREAM_END && z.avail_in == 0 && z.avail_out != 0) {
			rc = trunc_err(s, "gzip");
			break;
		}
	} while (ret != Z_STREAM_END);
	inflateEnd(&z);
	return rc;
}

static int un_lzma(struct scan *s, const unsigned char *in, size_t len, bool xz)
{
	lzma_stream z = LZMA_STREAM_INIT;
	lzma_ret ret;
	int rc = 0;

	ret = xz ? lzma_stream_decoder(&z, UINT64_MAX, 0) : lzma_alone_decoder(&z, UINT64_MAX);
	if (ret != LZMA_OK)
		return fail(s, ENOMEM, "liblzma: cannot initialise (%d)", (int)ret);
	z.next_in = in;
	z.avail_in = len;
	do {
		z.next_out = s->buf + s->keep;
		z.avail_out = CHUNK;
		ret = lzma_code(&z, LZMA_FINISH);
		rc = feed(s, CHUNK - z.avail_out);
		if (rc)
			break;
		if (ret == LZMA_BUF_ERROR) {
			rc = trunc_err(s, xz ? "xz" : "lzma");
			break;
		}
		if (ret != LZMA_OK && ret != LZMA_STREAM_END) {
			rc = fail(s, ENOEXEC, "the %s payload is damaged (liblzma error %d)", xz ? "xz" : "lzma", (int)ret);
			break;
		}
	} while (ret != LZMA_STREAM_END);
	lzma_end(&z);
	return rc;
}

static int un_zstd(struct scan *s, const unsigned char *in, size_t len)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t ret = 1;
	int rc = 0;

	if (!d)
		return fail(s, ENOMEM, "libzstd: cannot initialise");
	while (ret != 0) {
		ZSTD_outBuffer ob = { s->buf + s->keep, CHUNK, 0 };

		ret = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(ret)) {
			rc = fail(s, ENOEXEC, "the zstd payload is damaged (libzstd: %s)", ZSTD_getErrorName(ret));
			break;
		}
		rc = feed(s, ob.pos);
		if (rc)
			break;
		/* a frame not complete with all input read and output room left */
		if (ret != 0 && ib.pos == ib.size && ob.pos < ob.size) {
			rc = trunc_err(s, "zstd");
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return rc;
}

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = pread(fd, buf + off, len - off, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		off += (size_t)n;
	}
	return 0;
}

static int inspect(struct scan *s, const unsigned char *img, size_t flen)
{
	struct hl_kimage *ki = s->ki;
	const unsigned char *p;
	uint64_t setup, poff, plen;
	unsigned ss;

	if (flen < HDR_MIN)
		return fail(s, ENOEXEC, "%zu bytes: too short for an x86 boot setup header (truncated, or not a kernel)",
			    flen);
	if (memcmp(img + OFF_HEADER, "HdrS", 4) || le16(img + OFF_BOOT_FLAG) != 0xAA55)
		return fail(s, ENOEXEC, "not an x86 bzImage (no \"HdrS\" setup header / boot flag 0xAA55)");
	ki->version = le16(img + OFF_VERSION);
	ki->loadflags = img[OFF_LOADFLAGS];
	ki->relocatable = img[OFF_RELOC];
	ki->xloadflags = le16(img + OFF_XLOADFLAGS);
	if (ki->version < 0x020c)
		return fail(s, ENOEXEC, "boot protocol %u.%02u: kexec_file_load needs 2.12 or later",
			    ki->version >> 8, ki->version & 0xff);
	if (!(ki->loadflags & LOADED_HIGH))
		return fail(s, ENOEXEC, "a zImage (LOADED_HIGH not set), kexec_file_load loads bzImages only");
	if (!(ki->xloadflags & XLF_KERNEL_64))
		return fail(s, ENOEXEC, "not a 64-bit kernel (XLF_KERNEL_64 not set)");
	if (!(ki->xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G))
		return fail(s, ENOEXEC, "XLF_CAN_BE_LOADED_ABOVE_4G not set: kexec_file_load refuses it");
	if (!ki->relocatable)
		return fail(s, ENOEXEC, "the kernel is not relocatable (CONFIG_RELOCATABLE off)");
	ss = img[OFF_SETUP_SECTS] ? img[OFF_SETUP_SECTS] : 4;
	setup = ((uint64_t)ss + 1) * 512;
	poff = le32(img + OFF_PAYLOAD_OFF);
	plen = le32(img + OFF_PAYLOAD_LEN);
	ki->payload_len = plen;
	if (plen < 8)
		return fail(s, ENOEXEC, "empty payload (payload_length %llu)", (unsigned long long)plen);
	if (setup + poff + plen > flen)
		return fail(s, ENOEXEC, "truncated: the payload ends at byte %llu, the file has %zu",
			    (unsigned long long)(setup + poff + plen), flen);
	p = img + setup + poff;
	if (!memcmp(p, "\037\213", 2)) {
		ki->compression = "gzip";
		return un_gzip(s, p, plen);
	}
	if (!memcmp(p, "\3757zXZ\0", 6)) {
		ki->compression = "xz";
		return un_lzma(s, p, plen, true);
	}
	if (!memcmp(p, "\135\0\0", 3)) {
		ki->compression = "lzma";
		return un_lzma(s, p, plen, false);
	}
	if (!memcmp(p, "\050\265\057\375", 4)) {
		ki->compression = "zstd";
		return un_zstd(s, p, plen);
	}
	if (!memcmp(p, "\177ELF", 4)) {
		size_t done = 0;

		ki->compression = "none";
		while (done < plen) {
			size_t n = plen - done < CHUNK ? plen - done : CHUNK;
			int rc;

			memcpy(s->buf + s->keep, p + done, n);
			rc = feed(s, n);
			if (rc)
				return rc;
			done += n;
		}
		return 0;
	}
	ki->compression = !memcmp(p, "BZh", 3) ? "bzip2" :
			  !memcmp(p, "\002\041\114\030", 4) || !memcmp(p, "\004\042\115\030", 4) ? "lz4" :
			  !memcmp(p, "\211LZO", 4) ? "lzo" : NULL;
	if (ki->compression)
		return fail(s, EOPNOTSUPP, "the payload is %s-compressed, which hugelive cannot read "
			    "(build the kernel with CONFIG_KERNEL_GZIP, _XZ, _LZMA or _ZSTD)", ki->compression);
	ki->compression = "unknown";
	return fail(s, ENOEXEC, "the payload has no known compression magic (damaged image?)");
}

static int inspect_fd(int fd, const char *name, uint64_t max_out, const char *banner, struct hl_kimage *ki,
		      char *err, size_t errlen)
{
	struct scan s = { .ki = ki, .err = err, .errlen = errlen, .name = name,
			  .max = max_out ? max_out : HL_KIMAGE_MAX_OUT, .banner = banner,
			  .banner_len = banner ? strlen(banner) : 0 };
	unsigned char *img;
	struct stat st;
	int rc;

	memset(ki, 0, sizeof(*ki));
	if (errlen)
		err[0] = '\0';
	if (fstat(fd, &st) < 0)
		return fail(&s, errno, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(&s, ENOEXEC, "not a regular file");
	if ((uint64_t)st.st_size > HL_KIMAGE_MAX_FILE)
		return fail(&s, EFBIG, "%lld bytes: larger than any kernel image (bound %llu MiB)",
			    (long long)st.st_size, (unsigned long long)(HL_KIMAGE_MAX_FILE >> 20));
	ki->file_len = (uint64_t)st.st_size;
	img = malloc((size_t)st.st_size + 1);
	s.buf = malloc(OVL + CHUNK);
	if (!img || !s.buf) {
		free(img);
		free(s.buf);
		return fail(&s, ENOMEM, "out of memory");
	}
	rc = read_all(fd, img, (size_t)st.st_size);
	if (rc == -ENODATA)
		rc = fail(&s, ENOEXEC, "the file shrank while it was read");
	else if (rc)
		rc = fail(&s, -rc, "cannot read: %s", strerror(-rc));
	else
		rc = inspect(&s, img, (size_t)st.st_size);
	ki->out_len = s.total;
	free(img);
	free(s.buf);
	return rc;
}

int hl_kimage_inspect_fd(int fd, const char *name, uint64_t max_out, struct hl_kimage *ki,
			 char *err, size_t errlen)
{
	return inspect_fd(fd, name, max_out, NULL, ki, err, errlen);
}

int hl_kimage_inspect_banner(const char *path, uint64_t max_out, const char *banner, struct hl_kimage *ki,
			     char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		rc = errno;
		memset(ki, 0, sizeof(*ki));
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(rc));
		return -rc;
	}
	rc = inspect_fd(fd, path, max_out, banner && *banner ? banner : NULL, ki, err, errlen);
	close(fd);
	return rc;
}

int hl_kimage_inspect(const char *path, uint64_t max_out, struct hl_kimage *ki, char *err, size_t errlen)
{
	return hl_kimage_inspect_banner(path, max_out, NULL, ki, err, errlen);
}

static unsigned top_bit(uint64_t m)
{
	unsigned v = 0;

	for (unsigned b = 0; b <= HL_MAX_VERSION; b++)
		if (m & (1ull << b))
			v = b;
	return v;
}

unsigned hl_kimage_version(const struct hl_kimage *ki, size_t i)
{
	/*
	 * "memfd-v1" may occur only as the tail of "hugetlb-memfd-v1": a
	 * string that starts one counts first, a tail only when no string of
	 * the family starts one.
	 */
	return top_bit(ki->vers_alone[i] ? ki->vers_alone[i] : ki->vers[i]);
}

void hl_running_builtin(struct hl_running *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < hl_nformats; i++)
		r->version[i] = hl_formats[i].version;
}

int hl_running_formats(const char *image, struct hl_running *r)
{
	char *banner = hl_read_file("/proc/version", 4096, NULL);
	char err[1024], cand[2][400];
	struct hl_kimage ki;
	struct utsname u;
	size_t nc = 0, l, o = 0;
	int rc = -ENOENT;

	hl_running_builtin(r);
	if (uname(&u) == 0)
		snprintf(r->release, sizeof(r->release), "%s", u.release);
	if (banner) {
		l = strlen(banner);
		while (l && (banner[l - 1] == '\n' || banner[l - 1] == ' '))
			banner[--l] = '\0';
	}
	if (image && *image) {
		snprintf(cand[nc++], sizeof(cand[0]), "%s", image);
	} else {
		snprintf(cand[nc++], sizeof(cand[0]), "/boot/vmlinuz-%s", r->release);
		snprintf(cand[nc++], sizeof(cand[0]), "/lib/modules/%s/vmlinuz", r->release);
	}
	for (size_t c = 0; c < nc; c++) {
		snprintf(r->image, sizeof(r->image), "%.400s", cand[c]);
		if (access(cand[c], F_OK) && !(image && *image)) {
			o += (size_t)snprintf(r->note + o, o < sizeof(r->note) ? sizeof(r->note) - o : 0,
					      "%s%s: no such file", o ? "; " : "", cand[c]);
			continue;
		}
		rc = hl_kimage_inspect_banner(cand[c], 0, banner, &ki, err, sizeof(err));
		if (rc == 0 && banner && !ki.banner_found) {
			snprintf(err, sizeof(err), "%.400s: not the running kernel (its banner \"%.60s...\" from "
				 "/proc/version is not in it)", cand[c], banner);
			rc = -ESTALE;
		}
		if (rc == 0)
			break;
		o += (size_t)snprintf(r->note + o, o < sizeof(r->note) ? sizeof(r->note) - o : 0, "%s%s",
				      o ? "; " : "", err);
	}
	free(banner);
	if (rc) {
		if (o < sizeof(r->note))
			snprintf(r->note + o, sizeof(r->note) - o, "; using the built-in format table");
		return 1;
	}
	r->from_image = true;
	r->note[0] = '\0';
	for (size_t i = 0; i < hl_nformats; i++) {
		unsigned v = hl_kimage_version(&ki, i);

		/* a family it does not write: nothing of it can be preserved here, keep the table's */
		if (v) {
			r->version[i] = v;
			r->in_image[i] = true;
		}
	}
	return 0;
}

const char *hl_running_compat(const struct hl_running *r, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s-v%u", hl_formats[i].family, r ? r->version[i] : hl_formats[i].version);
	return buf;
}

bool hl_kimage_takes(const struct hl_kimage *ki, const struct hl_running *r, size_t i)
{
	unsigned v = r ? r->version[i] : hl_formats[i].version;

	return v <= HL_MAX_VERSION && (ki->vers[i] & (1ull << v));
}

unsigned hl_needs_of(int hugetlb_files)
{
	return HL_NEED_KHO | HL_NEED_LUO | HL_NEED_MEMFD | (hugetlb_files > 0 ? HL_NEED_HUGETLB : 0);
}

int hl_kimage_missing_run(const struct hl_kimage *ki, const struct hl_running *run, unsigned needs, char *out,
			  size_t len, const char **fix)
{
	static char fixbuf[300];
	size_t o = 0;
	int n = 0;

	if (len)
		out[0] = '\0';
	if (fix)
		*fix = NULL;
	for (size_t i = 0; i < hl_nformats; i++) {
		char compat[64];
		/* the image has the family in another version: the fix is a kernel that reads this one */
		bool other = (run && run->version[i] != hl_formats[i].version) || ki->vers[i];

		if (!(needs & hl_formats[i].need) || hl_kimage_takes(ki, run, i))
			continue;
		hl_running_compat(run, i, compat, sizeof(compat));
		if (fix && !*fix) {
			if (other) {
				snprintf(fixbuf, sizeof(fixbuf), "boot a kernel that reads \"%s\" (the format the "
					 "running kernel writes; the image has only %s-v%u), or finish the sessions "
					 "that need it", compat, hl_formats[i].family, hl_kimage_version(ki, i));
				*fix = fixbuf;
			} else {
				*fix = hl_formats[i].fix;
			}
		}
		n++;
		if (o < len) {
			int w = snprintf(out + o, len - o, "%s\"%s\" (%s%s)", o ? ", " : "", compat, hl_formats[i].what,
					 run && run->in_image[i] ? ", written by the running kernel" : "");

			o += w > 0 ? (size_t)w : 0;
		}
	}
	return n;
}

int hl_kimage_missing(const struct hl_kimage *ki, unsigned needs, char *out, size_t len, const char **fix)
{
	return hl_kimage_missing_run(ki, NULL, needs, out, len, fix);
}
