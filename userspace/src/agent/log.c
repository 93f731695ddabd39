/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int hl_log_verbose = 1;

void hl_log(int level, const char *fmt, ...)
{
	static const char *const pfx[] = { "<3>", "<6>", "<7>" };
	char buf[1024];
	va_list ap;

	if (level > hl_log_verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* sd-daemon prefixes are understood by journald; harmless on a console. */
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "%shugelived: %s\n", pfx[level > 2 ? 2 : level], buf);
	else
		fprintf(stderr, "hugelived[%d]: %s\n", (int)getpid(), buf);
}
