#!/bin/bash
# Build a bzImage for a config flavour and print the path of the cached image.
#
#   scripts/build-kernel.sh vm|debug|vmb|v0.1|stock|kvm
#
# Flavours (all on "make tinyconfig" plus fragments):
#   vm     build/linux (baseline + kernel/patches), kernel/config/vm.config
#   debug  build/linux, vm.config + debug.config (the test kernel)
#   vmb    build/linux, vm.config + vmb.config: kernel "B" of the A->B
#          scenarios (another LOCALVERSION, NUMA, HVO and deferred struct
#          page init the other way round from debug, zstd compressed)
#   v0.1   the previous release: build/linux-v0.1 = baseline + the series
#          vendored in kernel/releases/v0.1/patches (git am), that release's
#          vm.config (kernel/releases/v0.1/vm.config) + release.config
#   kvm    build/linux, vm.config + kvm.config: a hypervisor host (KVM on
#          AMD SVM, what QEMU needs as a process) for the nested-VM
#          scenarios and demo; the same image boots the nested guest
#   stock  the pristine source: build/linux-stock = baseline, no series,
#          vm.config + stock.config (no hugetlb handler exists there)
# build/linux-v0.1 and build/linux-stock are git worktrees of build/linux,
# made (and remade when build/linux or the vendored series changes) here.
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

CFG=$TOP/kernel/config
REL=$TOP/kernel/releases
SIDE=   # a side tree: its series (a directory of patches) or "none"
case "$FLAVOUR" in
vm)    FRAGS=("$CFG/vm.config") ;;
debug) FRAGS=("$CFG/vm.config" "$CFG/debug.config") ;;
vmb)   FRAGS=("$CFG/vm.config" "$CFG/vmb.config") ;;
kvm)   FRAGS=("$CFG/vm.config" "$CFG/kvm.config") ;;
v0.1)  FRAGS=("$REL/v0.1/vm.config" "$REL/v0.1/release.config"); SIDE=$REL/v0.1/patches ;;
stock) FRAGS=("$CFG/vm.config" "$CFG/stock.config"); SIDE=none ;;
*)     echo "build-kernel: unknown flavour '$FLAVOUR' (vm, debug, vmb, v0.1, stock or kvm)" >&2; exit 2 ;;
esac

[ -e "$TOP/build/linux/.git" ] || "$TOP/scripts/fetch-kernel.sh" >&2
[ -e "$LINUX/.git" ] || "$TOP/scripts/fetch-kernel.sh" >&2

# side_tree DIR SERIES: DIR is a worktree of build/linux at baseline with
# SERIES (a patch directory with a series file, or "none") applied by git
# am. Its stamp records the baseline commit and the series content, so a
# re-extracted build/linux or a changed series remakes it.
side_tree() {
	local dir=$1 series=$2 base want have p
	base=$(git -C "$TOP/build/linux" rev-parse 'baseline^{commit}')
	want="$base $(if [ "$series" = none ]; then echo none; else
		(cat "$series/series"; for p in $(grep -v '^\s*#' "$series/series"); do cat "$series/$p"; done) |
		sha256sum | cut -c1-16; fi)"
	have=$(cat "$dir/.hugelive-stamp" 2>/dev/null || true)
	if [ "$have" = "$want" ] && [ -z "$(git -C "$dir" status --porcelain -uall 2>/dev/null | grep -v '^?? \.hugelive-stamp$')" ]; then
		return 0
	fi
	echo "build-kernel: preparing $dir (baseline${series:+ + $series})" >&2
	git -C "$TOP/build/linux" worktree remove --force "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
	git -C "$TOP/build/linux" worktree prune
	git -C "$TOP/build/linux" worktree add -q --detach "$dir" baseline
	if [ "$series" != none ]; then
		for p in $(grep -v '^\s*#' "$series/series" | grep -v '^\s*$'); do
			git -C "$dir" -c user.name=hugelive -c user.email=hugelive@localhost am -q --keep-cr "$series/$p" ||
				{ echo "build-kernel: $p does not apply on baseline" >&2; git -C "$dir" am --abort || true; exit 1; }
		done
	fi
	echo "$want" >"$dir/.hugelive-stamp"
}
if [ -n "$SIDE" ]; then
	LINUX=$TOP/build/linux-$FLAVOUR
	TREE=linux-$FLAVOUR
	exec 8>"$TOP/build/.linux-$FLAVOUR.lock"
	flock 8
	side_tree "$LINUX" "$SIDE"
fi

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
[ "$TREE" = linux ] || [ -n "$SIDE" ] || OBJ=$CACHE/obj-$FLAVOUR-$TREE
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
	# Every fragment line must have survived olddefconfig (the later
	# fragment wins where two set the same option; "is not set" lines too).
	for ((i = 0; i < ${#FRAGS[@]}; i++)); do
		f=${FRAGS[$i]}
		grep -E '^(CONFIG_[A-Z0-9_]+=|# CONFIG_[A-Z0-9_]+ is not set)' "$f" | while read -r line; do
			opt=$(grep -oE 'CONFIG_[A-Z0-9_]+' <<<"$line")
			later=0
			for g in "${FRAGS[@]:$((i + 1))}"; do
				grep -qE "^($opt=|# $opt is not set)" "$g" && later=1
			done
			[ $later = 1 ] && continue
			if [[ $line = "#"* ]]; then
				! grep -q "^$opt=[ym]" "$OBJ/.config" ||
					{ echo "build-kernel: '$line' from $(basename "$f"), but $opt is set in the final config" >&2; exit 1; }
			else
				grep -qx "$line" "$OBJ/.config" ||
					{ echo "build-kernel: $line from $(basename "$f") not in final config" >&2; exit 1; }
			fi
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
