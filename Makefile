# hugelive top-level Makefile.
#
#   make demo            live update in a VM with the vm kernel, prints a report
#   make check           host unit tests + harness self-tests + VM scenarios (debug kernel)
#   make deps            install build/test dependencies (apt; sudo when not root)
#   make kernel          fetch build/linux and build the kernels (KFLAVOURS="vm debug")
#   make vm-bins         build the VM scenario programs only
#   make run S=NAME      run one VM scenario with the debug kernel (CORRUPT=1 possible)
#   make selftest        harness self-tests only (corrupt word, hang)
#   make bench           benchmarks in VMs (vm kernel) -> bench/results, docs/performance.md
#   make soak            endurance: one VM chain of GENS (100) updates, debug/vmb alternating,
#                        faults from SEED (default: the time) -> build/soak (not in make check)
#   make export-patches  build/linux baseline..HEAD -> kernel/patches/ + series
#   make debs            Debian packages of the userspace (debian/) -> build/debs/,
#                        with lintian's report (needs scripts/install-deps.sh --pkg)
#   make pkg-test        install build/debs/*.deb into a fresh Debian 12 root
#                        (mmdebstrap; downloads packages, root) and check them
#   make clean           remove build products of this checkout (not build/linux,
#                        not the kernel cache in ~/.cache/hugelive)

TOP       := $(abspath .)
LINUX     := $(TOP)/build/linux
VMBUILD   := $(TOP)/build/vm
KFLAVOURS ?= vm debug

CC        ?= cc
VM_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static \
             -I$(VMBUILD)/include -I$(TOP)/tests/vm
UAPI_HDR  := $(VMBUILD)/include/linux/liveupdate.h

LIB_SRC   := tests/vm/lib/scenario.c
LIB_HDR   := $(wildcard tests/vm/lib/*.h)
SCEN_SRC  := $(sort $(wildcard tests/vm/*.c))
SELF_SRC  := $(sort $(wildcard tests/vm/selftest/*.c))
DEMO_SRC  := $(sort $(wildcard tests/vm/demo/*.c))
SCEN_BIN  := $(patsubst tests/vm/%.c,$(VMBUILD)/scenarios/%,$(SCEN_SRC))
SELF_BIN  := $(patsubst tests/vm/selftest/%.c,$(VMBUILD)/scenarios/%,$(SELF_SRC))
DEMO_BIN  := $(patsubst tests/vm/demo/%.c,$(VMBUILD)/scenarios/%,$(DEMO_SRC))

.PHONY: kernel-deb all deps kernel fetch vm-bins vm-progs demo check selftest run export-patches clean userspace bench \
	debs pkg-test soak

all: vm-bins

deps:
	@scripts/install-deps.sh

fetch: deps
	@scripts/fetch-kernel.sh

kernel: fetch
	@for f in $(KFLAVOURS); do scripts/build-kernel.sh $$f || exit 1; done

# Scenarios that are another one with other metadata (#include "X.c").
$(VMBUILD)/scenarios/kernel-vm-debug $(VMBUILD)/scenarios/kernel-v01-current: tests/vm/kernel-a-b-a.c

# The LUO uapi header comes from the kernel tree we build (it may be patched).
$(LINUX)/include/uapi/linux/liveupdate.h:
	@scripts/install-deps.sh
	@scripts/fetch-kernel.sh

$(UAPI_HDR): $(LINUX)/include/uapi/linux/liveupdate.h
	@mkdir -p $(dir $@)
	cp $< $@

$(VMBUILD)/scenarios/%: tests/vm/%.c $(LIB_SRC) $(LIB_HDR) $(UAPI_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(VM_CFLAGS) -o $@ $< $(LIB_SRC)

$(VMBUILD)/scenarios/%: tests/vm/selftest/%.c $(LIB_SRC) $(LIB_HDR) $(UAPI_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(VM_CFLAGS) -o $@ $< $(LIB_SRC)

$(VMBUILD)/scenarios/%: tests/vm/demo/%.c $(LIB_SRC) $(LIB_HDR) $(UAPI_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(VM_CFLAGS) -o $@ $< $(LIB_SRC)

# The kernel's own liveupdate kselftests (from the patched tree), run in the
# VM by tests/vm/kselftest-liveupdate.c (luo_kexec_hugetlb, a two-stage
# test, across a kexec by tests/vm/kselftest-kexec-hugetlb.c).
KSFT_DIR  := $(LINUX)/tools/testing/selftests/liveupdate
KSFT_BIN  := $(VMBUILD)/kselftest/liveupdate $(VMBUILD)/kselftest/luo_hugetlb \
	     $(VMBUILD)/kselftest/luo_kexec_hugetlb
$(VMBUILD)/kselftest/lu_utils.o: $(KSFT_DIR)/lib/lu_utils.c $(UAPI_HDR)
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -I$(VMBUILD)/include -I$(KSFT_DIR)/lib/include -c -o $@ $<
# liveupdate.c relies on the build to define _GNU_SOURCE (for memfd_create).
$(VMBUILD)/kselftest/liveupdate: KSFT_CFLAGS := -D_GNU_SOURCE
$(VMBUILD)/kselftest/%: $(KSFT_DIR)/%.c $(VMBUILD)/kselftest/lu_utils.o $(UAPI_HDR)
	$(CC) $(KSFT_CFLAGS) -O2 -Wall -Wno-unused-function -static -I$(VMBUILD)/include \
		-I$(KSFT_DIR)/lib/include -o $@ $< $(VMBUILD)/kselftest/lu_utils.o

# build/linux must exist and carry the current series before make looks at
# rules whose sources live in it (the kselftests, the uapi header): fetch
# first (a no-op when up to date), then a sub-make.
vm-bins:
	@scripts/fetch-kernel.sh
	@$(MAKE) -s --no-print-directory vm-progs

vm-progs: $(SCEN_BIN) $(SELF_BIN) $(DEMO_BIN) $(KSFT_BIN)

# Userspace programs (owned by userspace/): built if there is a Makefile,
# and everything in userspace/build/bin goes into the VM's /usr/local/bin.
userspace:
	@if [ -f userspace/Makefile ]; then $(MAKE) -C userspace; fi

demo: deps
	@$(MAKE) -s --no-print-directory vm-bins userspace
	@vm/demo.sh

check: deps
	@$(MAKE) -s --no-print-directory vm-bins userspace
	@vm/check.sh

selftest: deps
	@$(MAKE) -s --no-print-directory vm-bins
	@vm/check.sh --selftest-only

# make run S=memfd-3gen [CORRUPT=1] [FLAVOUR=vm]
run: vm-bins
	@test -n "$(S)" || { echo "usage: make run S=SCENARIO [CORRUPT=1] [FLAVOUR=debug|vm]"; exit 2; }
	@vm/check.sh --run "$(S)" --flavour "$(or $(FLAVOUR),debug)"

bench: deps
	@bench/run.sh

# make soak [GENS=100] [SEED=N] [FAULTS=f0,f1,...] [DOC=1]: tests/vm/soak.c via vm/soak.sh
soak: deps
	@$(MAKE) -s --no-print-directory vm-bins userspace
	@GENS="$(GENS)" SEED="$(SEED)" FAULTS="$(FAULTS)" DOC="$(DOC)" vm/soak.sh

export-patches:
	@scripts/export-patches.sh

# Packages: outside `make check` (pkg-test downloads a Debian root).
debs:
	@scripts/install-deps.sh --pkg
	@scripts/build-debs.sh

pkg-test:
	@scripts/install-deps.sh --pkg
	@tests/pkg/install-test.sh build/debs

# linux-image/linux-headers packages: Debian's config + the series + live
# update (hours on 2 CPUs; not in make check)
kernel-deb:
	@scripts/install-deps.sh --pkg
	@scripts/fetch-kernel.sh
	@scripts/build-kernel-deb.sh

clean:
	rm -rf $(VMBUILD) build/logs build/debs
	@if [ -f userspace/Makefile ]; then $(MAKE) -C userspace clean; fi

# The nested guest of the vmm=1 scenarios (tests/vm/vmguest-*.c, the demo):
# its static workload and its initramfs (vm/mkguest.sh).
$(VMBUILD)/guest/hlguest: tests/vm/guest/hlguest.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -o $@ $<

$(VMBUILD)/guest/guest.cpio: $(VMBUILD)/guest/hlguest tests/vm/guest/init vm/mkguest.sh
	@vm/mkguest.sh -o $@ -w $(VMBUILD)/guest/hlguest
