// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=4096 timeout=900 userspace=1 kernels="vm debug vm" check=no cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * kernel-a-b-a with the vm flavour as A and the debug flavour as B (issue
 * 10 item 1, "the vm flavour into the debug flavour and back"): the same
 * uname -r, another config (DEBUG_VM, page poisoning, KHO debug checks),
 * which the journal's config signature tells apart.
 *
 * Not in make check (check=no): its last run, under a load average of 11,
 * stopped in generation 1 (the debug kernel) right after "KHO: exec from"
 * and timed out; an earlier run reached generation 2 with every word
 * verified. Whether that is a hang or TCG starvation is not known yet.
 */
#include "kernel-a-b-a.c"
