#!/bin/bash
# Install everything hugelive needs on a Debian 12 host.
# Idempotent: does nothing when every package is already present.
#   --pkg   also what the Debian packaging needs (meson build, man pages,
#           dpkg-buildpackage, lintian, the mmdebstrap install test):
#           make debs / make pkg-test pass it; plain CI does not.
set -euo pipefail

WITH_PKG=0
for a in "$@"; do
	case $a in
	--pkg) WITH_PKG=1 ;;
	*) echo "usage: install-deps.sh [--pkg]" >&2; exit 2 ;;
	esac
done

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

PKGS=(build-essential flex bison bc libelf-dev libssl-dev cpio xz-utils
      busybox-static qemu-system-x86 kmod git rsync pkg-config
      libjson-c-dev libsystemd-dev zlib1g-dev liblzma-dev libzstd-dev clang gnuplot-nox python3 python3-ply
      linux-config-7.3)
if [ $WITH_PKG = 1 ]; then
	PKGS+=(meson ninja-build scdoc debhelper lintian devscripts mmdebstrap bash-completion pkgconf fakeroot dpkg-dev libdw-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

# linux-source-7.3 comes from trixie-backports; pin it low so nothing else
# on the host is upgraded from there.
SRC_LIST=/etc/apt/sources.list.d/hugelive-trixie-backports.list
PIN=/etc/apt/preferences.d/hugelive-trixie-backports
need_update=0
if [ ! -f "$SRC_LIST" ]; then
	echo "deb http://deb.debian.org/debian trixie-backports main" | $SUDO tee "$SRC_LIST" >/dev/null
	printf 'Package: *\nPin: release n=trixie-backports\nPin-Priority: 100\n' | $SUDO tee "$PIN" >/dev/null
	need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
	$SUDO apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
