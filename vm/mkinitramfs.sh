#!/bin/bash
# Build the hugelive VM initramfs (newc cpio, optionally gzip'd).
#
#   vm/mkinitramfs.sh -o OUT.cpio -k BZIMAGE [-K FLAVOUR=BZIMAGE]... [-z] [-s DIR]... [-x FILE]... [-b FILE]... [-d DIR]... [-f SRC=DEST]...
#
#   -k BZIMAGE  kernel to kexec into, stored as /boot/bzImage
#   -K F=IMG    a kernel flavour of a multi-kernel scenario, /boot/bzImage-F
#   -s DIR      every executable in DIR goes to /scenarios/ (scenario binaries)
#   -x FILE     one scenario program, goes to /scenarios/
#   -z          compress with gzip (default: a plain cpio, which the guest
#               kernel unpacks faster than it inflates gzip under TCG)
#   -b FILE     extra program, goes to /usr/local/bin/ (dynamically linked
#               programs get their libraries and loader copied too)
#   -d DIR      every executable in DIR goes to /usr/local/bin/ (like -b)
#   -f SRC=DEST a data file at an absolute path DEST (e.g. QEMU's firmware;
#               symlinks are followed, mode 0644)
#
# Contents: busybox-static with all applet links, vm/init as /init, a
# /dev/console node, the binaries above. No root needed: the archive is
# written by the kernel's usr/gen_init_cpio from a list, owned by root.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT= KERNEL=
SCEN_DIRS=() SCEN_FILES=() BINS=() GZIP=0 KFLAVS=() DATA=()
while getopts "o:k:K:s:x:b:d:f:z" opt; do
	case $opt in
	o) OUT=$OPTARG ;;
	k) KERNEL=$OPTARG ;;
	K) KFLAVS+=("$OPTARG") ;;
	s) SCEN_DIRS+=("$OPTARG") ;;
	x) SCEN_FILES+=("$OPTARG") ;;
	z) GZIP=1 ;;
	b) BINS+=("$OPTARG") ;;
	d) for f in "$OPTARG"/*; do [ -f "$f" ] && [ -x "$f" ] && BINS+=("$f"); done ;;
	f) DATA+=("$OPTARG") ;;
	*) echo "usage: $0 -o OUT -k BZIMAGE [-K F=BZIMAGE]... [-z] [-s DIR]... [-x FILE]... [-b FILE]... [-d DIR]... [-f SRC=DEST]..." >&2; exit 2 ;;
	esac
done
[ -n "$OUT" ] && [ -n "$KERNEL" ] || { echo "mkinitramfs: -o and -k are required" >&2; exit 2; }
[ -f "$KERNEL" ] || { echo "mkinitramfs: no kernel image $KERNEL" >&2; exit 1; }

# busybox-static and gen_init_cpio from the kernel tree, built once.
. "$TOP/vm/cpio-tools.sh"
cpio_tools mkinitramfs

LIST=$(mktemp)
trap 'rm -f "$LIST"' EXIT
declare -A DIRS=()
adddir() {  # adddir /a/b/c: every missing parent, once
	local d=$1 acc=
	IFS=/ read -ra parts <<<"${d#/}"
	for p in "${parts[@]}"; do
		acc=$acc/$p
		[ -n "${DIRS[$acc]:-}" ] && continue
		DIRS[$acc]=1
		echo "dir $acc 0755 0 0" >>"$LIST"
	done
}
declare -A FILES=()
addfile() {  # addfile DEST SRC MODE
	[ -n "${FILES[$1]:-}" ] && return 0
	FILES[$1]=1
	adddir "$(dirname "$1")"
	echo "file $1 $(readlink -f "$2") $3 0 0" >>"$LIST"
}
# Shared libraries (and the loader) of a dynamically linked program.
addlibs() {
	local f=$1 lib
	ldd "$f" >/dev/null 2>&1 || return 0   # static
	for lib in $(ldd "$f" | grep -o '/[^ ]*' | sort -u); do
		[ -f "$lib" ] && addfile "$lib" "$lib" 0755
	done
}

for d in /dev /proc /sys /tmp /run /root /etc /boot /scenarios /usr/local/bin; do adddir "$d"; done
echo "nod /dev/console 0600 0 0 c 5 1" >>"$LIST"
echo "nod /dev/null 0666 0 0 c 1 3" >>"$LIST"
addfile /init "$TOP/vm/init" 0755
addfile /bin/busybox "$BUSYBOX" 0755
for app in $("$BUSYBOX" --list-full); do
	[ "/$app" = /bin/busybox ] && continue
	adddir "/$(dirname "$app")"
	echo "slink /$app /bin/busybox 0777 0 0" >>"$LIST"
done
addfile /boot/bzImage "$KERNEL" 0644
for kf in ${KFLAVS[@]+"${KFLAVS[@]}"}; do
	[ -f "${kf#*=}" ] || { echo "mkinitramfs: no kernel image ${kf#*=} (flavour ${kf%%=*})" >&2; exit 1; }
	addfile "/boot/bzImage-${kf%%=*}" "${kf#*=}" 0644
done
echo "root:x:0:0:root:/root:/bin/sh" >"$LIST.passwd"
addfile /etc/passwd "$LIST.passwd" 0644
trap 'rm -f "$LIST" "$LIST.passwd"' EXIT

for d in "${SCEN_DIRS[@]}"; do
	for f in "$d"/*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		addfile "/scenarios/$(basename "$f")" "$f" 0755
		addlibs "$f"
	done
done
for f in "${SCEN_FILES[@]}"; do
	[ -f "$f" ] && [ -x "$f" ] || { echo "mkinitramfs: no program $f" >&2; exit 1; }
	addfile "/scenarios/$(basename "$f")" "$f" 0755
	addlibs "$f"
done
for f in "${BINS[@]}"; do
	addfile "/usr/local/bin/$(basename "$f")" "$f" 0755
	addlibs "$f"
done
for d in ${DATA[@]+"${DATA[@]}"}; do
	src=${d%%=*} dest=${d#*=}
	[ -f "$src" ] && [ "${dest#/}" != "$dest" ] || { echo "mkinitramfs: -f $d: no file $src or DEST not absolute" >&2; exit 1; }
	addfile "$dest" "$src" 0644
done

mkdir -p "$(dirname "$OUT")"
if [ $GZIP = 1 ]; then
	"$GIC" -t 0 "$LIST" | gzip -n -6 >"$OUT.tmp.$$"
else
	"$GIC" -t 0 -o "$OUT.tmp.$$" "$LIST"
fi
mv "$OUT.tmp.$$" "$OUT"
echo "mkinitramfs: $OUT ($(du -k "$OUT" | cut -f1) KiB, $(grep -c '^file' "$LIST") files)" >&2
