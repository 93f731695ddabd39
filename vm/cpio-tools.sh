# Sourced by vm/mkinitramfs.sh and vm/mkguest.sh: the tools both archives
# are made with. cpio_tools NAME sets BUSYBOX (busybox-static, checked) and
# GIC (the kernel tree's usr/gen_init_cpio, built once and again when its
# source is newer); NAME prefixes the error messages. Needs $TOP.
cpio_tools() {
	BUSYBOX=/bin/busybox
	if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
		echo "$1: $BUSYBOX is not busybox-static (apt-get install busybox-static)" >&2
		exit 1
	fi
	GIC=$TOP/build/vm/gen_init_cpio
	local src=$TOP/build/linux/usr/gen_init_cpio.c
	if [ ! -x "$GIC" ] || [ "$src" -nt "$GIC" ]; then
		[ -f "$src" ] || "$TOP/scripts/fetch-kernel.sh" >&2
		mkdir -p "$(dirname "$GIC")"
		cc -O2 -o "$GIC" "$src"
	fi
}
