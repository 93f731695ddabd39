// SPDX-License-Identifier: GPL-2.0
/*
 * hugelive-scenario: generations=3 mem=4096 timeout=900 userspace=1 kernels="v0.1 debug debug" cmdline="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=64"
 *
 * Release N -> N+1 (issue 10 item 2): generation 0 boots the kernel of the
 * previous release (v0.1, f41e0f1, built from kernel/releases/v0.1), which
 * writes hugetlb-memfd-v1 records without a mode and the hugetlb-pool-v1
 * table; hugelived and hugelivectl (this release's userspace) preflight the
 * current debug kernel against the formats read from the running v0.1 image
 * and update into it. Generation 1 (the current series) must carry a 2 MiB
 * and a 1 GiB hugetlb file, a shmem memfd and the agent's state word for
 * word, with the pools what a fault-in gives and no WARNING (the v0.1 pool
 * table is read; LUO finds no hugetlb-pool-v2 FLB for these files).
 * Generation 1 then tries to go back into v0.1 with the files preserved
 * again: v0.1 cannot read what the current series writes, so `hugelivectl
 * check --kernel` and `update` refuse it with exit 5, nothing loaded or
 * frozen; the update into the debug kernel (generation 2) carries
 * everything once more.
 * The same program as kernel-a-b-a, with other kernels.
 */
#define AB_DOWNGRADE "/boot/bzImage-v0.1"
#include "kernel-a-b-a.c"
