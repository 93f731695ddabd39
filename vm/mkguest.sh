#!/bin/bash
# Build the nested guest's initramfs (the VM that hugelive-vm runs inside
# the test VM; see docs/vm-guest.md):
#
#   vm/mkguest.sh -o OUT.cpio -w HLGUEST
#
# Contents: busybox-static (the few applets tests/vm/guest/init uses),
# tests/vm/guest/init as /init, the static workload HLGUEST as /bin/hlguest,
# /dev/console. A plain newc cpio written by the kernel's gen_init_cpio
# (built by vm/mkinitramfs.sh; no root needed). Its kernel is the test VM's
# own image (/boot/bzImage there).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT= WL=
while getopts "o:w:" opt; do
	case $opt in
	o) OUT=$OPTARG ;; w) WL=$OPTARG ;;
	*) echo "usage: $0 -o OUT.cpio -w HLGUEST" >&2; exit 2 ;;
	esac
done
[ -n "$OUT" ] && [ -x "$WL" ] || { echo "usage: $0 -o OUT.cpio -w HLGUEST" >&2; exit 2; }
. "$TOP/vm/cpio-tools.sh"
cpio_tools mkguest
LIST=$(mktemp)
trap 'rm -f "$LIST"' EXIT
{
	for d in /bin /dev /proc /sys /tmp; do echo "dir $d 0755 0 0"; done
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "file /init $TOP/tests/vm/guest/init 0755 0 0"
	echo "file /bin/busybox $BUSYBOX 0755 0 0"
	for a in sh mount uname grep tr sleep cat echo; do echo "slink /bin/$a /bin/busybox 0777 0 0"; done
	echo "file /bin/hlguest $(readlink -f "$WL") 0755 0 0"
} >"$LIST"
mkdir -p "$(dirname "$OUT")"
"$GIC" -t 0 -o "$OUT.tmp.$$" "$LIST"
mv "$OUT.tmp.$$" "$OUT"
echo "mkguest: $OUT ($(du -k "$OUT" | cut -f1) KiB)" >&2
