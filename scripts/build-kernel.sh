#!/bin/bash
# Build a bzImage of build/linux for a config flavour (vm or debug).
#
#   scripts/build-kernel.sh vm|debug     prints the path of the cached bzImage
#
# Cache: $HUGELIVE_CACHE (default ~/.cache/hugelive) holds
#   obj-<flavour>/          an out-of-tree object dir, reused incrementally
#   images/<key>/bzImage    finished images, keyed by source version, the
#                           content of every change against baseline
#                           (committed or not) and the config fragments.
# A rebuild with nothing changed is a hash and a lookup.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
FLAVOUR=${1:-debug}
# HUGELIVE_LINUX selects another work tree (e.g. a git worktree used for
# kernel development); it gets its own object dir.
LINUX=${HUGELIVE_LINUX:-$TOP/build/linux}
TREE=$(basename "$LINUX")
CACHE=${HUGELIVE_CACHE:-$HOME/.cache/hugelive}
JOBS=${JOBS:-$(nproc)}

case "$FLAVOUR" in
vm)    FRAGS=("$TOP/kernel/config/vm.config") ;;
debug) FRAGS=("$TOP/kernel/config/vm.config" "$TOP/kernel/config/debug.config") ;;
*)     echo "build-kernel: unknown flavour '$FLAVOUR' (vm or debug)" >&2; exit 2 ;;
esac

[ -e "$LINUX/.git" ] || "$TOP/scripts/fetch-kernel.sh" >&2

key=$( {
	echo "flavour $FLAVOUR"
	cat "$TOP/build/linux/.hugelive-stamp" 2>/dev/null | cut -d' ' -f1
	cat "${FRAGS[@]}"
	# Full blob ids (the short ids git prints grow with the number of
	# objects, so a fresh build/linux and an older one would hash the same
	# tree differently) and the default file order (not the user's config).
	git -C "$LINUX" diff --binary --full-index -O/dev/null baseline
	# Debian's source ignores everything at the top level ("/*"), so new
	# files are untracked *and* ignored: list them without exclude rules.
	git -C "$LINUX" ls-files -z --others | { grep -zv '^\.hugelive-stamp$' || true; } | \
		(cd "$LINUX" && xargs -0 -r sh -c 'for f; do echo "== $f"; cat "$f"; done' sh)
} | sha256sum | cut -c1-20)

IMG=$CACHE/images/$FLAVOUR-$key/bzImage
if [ -f "$IMG" ]; then
	echo "$IMG"
	exit 0
fi

OBJ=$CACHE/obj-$FLAVOUR
[ "$TREE" = linux ] || OBJ=$CACHE/obj-$FLAVOUR-$TREE
mkdir -p "$OBJ" "$CACHE/images"
exec 9>"$OBJ.lock"
flock 9
if [ -f "$IMG" ]; then echo "$IMG"; exit 0; fi

echo "build-kernel: building $FLAVOUR kernel (key $key) in $OBJ" >&2
# What went into the key besides the series, to explain unexpected rebuilds.
extra=$(git -C "$LINUX" ls-files --others | { grep -v '^\.hugelive-stamp$' || true; } | head -n 5 | tr '\n' ' ')
echo "build-kernel: diff against baseline: $(git -C "$LINUX" diff --shortstat baseline)${extra:+; untracked: $extra}" >&2
start=$(date +%s)
{
	make -C "$LINUX" O="$OBJ" -s tinyconfig
	"$LINUX/scripts/kconfig/merge_config.sh" -m -O "$OBJ" "$OBJ/.config" "${FRAGS[@]}" >/dev/null
	make -C "$LINUX" O="$OBJ" -s olddefconfig
	# Every fragment line must have survived olddefconfig.
	for f in "${FRAGS[@]}"; do
		grep -E '^CONFIG_[A-Z0-9_]+=' "$f" | while read -r line; do
			grep -qx "$line" "$OBJ/.config" || { echo "build-kernel: $line from $(basename "$f") not in final config" >&2; exit 1; }
		done
	done
	make -C "$LINUX" O="$OBJ" -j"$JOBS" -s bzImage
} >&2
mkdir -p "$(dirname "$IMG")"
cp "$OBJ/arch/x86/boot/bzImage" "$IMG.tmp"
cp "$OBJ/.config" "$(dirname "$IMG")/config"
mv "$IMG.tmp" "$IMG"
echo "build-kernel: $FLAVOUR kernel built in $(( $(date +%s) - start ))s" >&2
echo "$IMG"
