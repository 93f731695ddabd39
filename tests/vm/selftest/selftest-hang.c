// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=1 mem=256 timeout=40
 *
 * Harness self-test: a guest that never reports. vm/selftest.sh runs it and
 * asserts that the runner kills it at its timeout and reports a failure with
 * the console log tail. Not part of the normal scenario list.
 */
#include "../lib/scenario.h"

#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("selftest-hang: sleeping forever, the harness must kill this VM\n");
	fflush(stdout);
	for (;;)
		pause();
}
