/* SPDX-License-Identifier: MIT */
/* Minimal TAP output for the host tests. */
#ifndef HL_TAP_H
#define HL_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_fail;

static inline int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_fail++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)
#define diag(...) (printf("# " __VA_ARGS__), printf("\n"), fflush(stdout))

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	printf("%d passed, %d failed\n", tap_n - tap_fail, tap_fail);
	return tap_fail ? 1 : 0;
}

#endif
