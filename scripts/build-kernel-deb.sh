#!/bin/bash
# Installable Debian kernel packages of the series (issue 12 item 4):
#
#   scripts/build-kernel-deb.sh            (make kernel-deb)
#
# Debian's own amd64 configuration of 7.3 (package linux-config-7.3), the
# series (build/linux, baseline..HEAD) and what live update needs:
# KEXEC_FILE, KEXEC_HANDOVER, LIVEUPDATE, LIVEUPDATE_MEMFD,
# LIVEUPDATE_HUGETLB (Debian's config has KHO off). Module signing with
# Debian's key is not possible outside Debian's build, so it is turned off
# (a locally built kernel is unsigned either way), as is BTF debug info
# (pahole is not a build dependency here). The kernel's own `bindeb-pkg`
# target makes linux-image-VERSION and linux-headers-VERSION packages,
# LOCALVERSION -hugelive. Output: build/kernel-deb/*.deb and build.log.
#
# Boot the installed kernel with `kho=on liveupdate=on` on its command line
# (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub); see
# docs/install.md.
#
# A full Debian configuration is thousands of modules: hours on 2 CPUs.
# Not part of make check. JOBS sets make -j (default: the number of CPUs).
# DEBIAN_FLAVOUR picks which of Debian's amd64 configurations: amd64 (the
# default: Debian's generic kernel, 4043 modules) or cloud-amd64 (Debian's
# smaller server/VM kernel, 1012 modules, KVM included: about a third of
# the build).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
# HUGELIVE_LINUX: another kernel work tree (as for build-kernel.sh).
LINUX=${HUGELIVE_LINUX:-$TOP/build/linux}
OUT=$TOP/build/kernel-deb
FLAVOUR=${DEBIAN_FLAVOUR:-amd64}
case $FLAVOUR in amd64|cloud-amd64|rt-amd64) ;; *) echo "build-kernel-deb: DEBIAN_FLAVOUR=$FLAVOUR: amd64, cloud-amd64 or rt-amd64" >&2; exit 2;; esac
CFG=/usr/src/linux-config-7.3/config.amd64_none_$FLAVOUR.xz
JOBS=${JOBS:-$(nproc)}

[ -r "$CFG" ] || { echo "build-kernel-deb: $CFG missing (apt-get install linux-config-7.3)" >&2; exit 2; }
git -C "$LINUX" rev-parse -q --verify baseline >/dev/null ||
	{ echo "build-kernel-deb: $LINUX has no baseline (run scripts/fetch-kernel.sh)" >&2; exit 2; }
for t in dpkg-deb fakeroot rsync; do
	command -v $t >/dev/null || { echo "build-kernel-deb: $t missing (scripts/install-deps.sh --pkg)" >&2; exit 2; }
done

# bindeb-pkg writes its packages into the parent of the source tree, so the
# source is a copy of the series' commit under build/kernel-deb/src.
mkdir -p "$OUT"
rm -rf "$OUT/src"
git -C "$LINUX" worktree prune
git -C "$LINUX" worktree add -q --detach "$OUT/src" HEAD
trap 'git -C "$LINUX" worktree remove --force "$OUT/src" 2>/dev/null || true' EXIT
cd "$OUT/src"
xzcat "$CFG" >.config
scripts/kconfig/merge_config.sh -m .config "$TOP/kernel/config/debian-liveupdate.config" >/dev/null
scripts/config --file .config --set-str LOCALVERSION "-hugelive"
make -s olddefconfig
for sym in KEXEC_HANDOVER LIVEUPDATE LIVEUPDATE_MEMFD LIVEUPDATE_HUGETLB; do
	grep -q "^CONFIG_$sym=y" .config || { echo "build-kernel-deb: CONFIG_$sym did not survive olddefconfig" >&2; exit 1; }
done
start=$(date +%s)
echo "build-kernel-deb: make bindeb-pkg -j$JOBS in $OUT/src (log: $OUT/build.log)"
make -j"$JOBS" bindeb-pkg KDEB_PKGVERSION="7.3.4-hugelive$(git rev-parse --short=8 HEAD)" >"$OUT/build.log" 2>&1 ||
	{ tail -n 30 "$OUT/build.log" >&2; exit 1; }
echo "build-kernel-deb: built in $(( $(date +%s) - start ))s:"
ls -la "$OUT"/*.deb
