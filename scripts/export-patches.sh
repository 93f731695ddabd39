#!/bin/bash
# Export the kernel tree's commits on top of "baseline" into kernel/patches/
# (git format-patch) and rewrite kernel/patches/series; stale patch files are
# removed. The tree is build/linux, or $HUGELIVE_LINUX (e.g. a dev worktree).
#
# When the tree is build/linux its stamp is updated, so fetch-kernel.sh
# sees it as already carrying the new series and leaves it alone.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
LINUX=${HUGELIVE_LINUX:-$TOP/build/linux}
PATCHDIR=$TOP/kernel/patches
[ -e "$LINUX/.git" ] || { echo "export-patches: no git tree at $LINUX" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Plain git format-patch, exactly what `git format-patch baseline..HEAD`
# writes (commit ids and all), so the files can be compared with the tree
# they came from; fetch-kernel.sh ignores the "From <id>" lines, which a
# re-applied series changes.
git -C "$LINUX" format-patch -q -o "$tmp" baseline..HEAD
mkdir -p "$PATCHDIR"
rm -f "$PATCHDIR"/*.patch
: >"$PATCHDIR/series"
for p in "$tmp"/*.patch; do
	[ -f "$p" ] || continue
	mv "$p" "$PATCHDIR/"
	basename "$p" >>"$PATCHDIR/series"
done
n=$(grep -c . "$PATCHDIR/series" || true)
echo "export-patches: $n patch(es) from $LINUX (baseline..HEAD) in kernel/patches"

if [ "$(cd "$LINUX" && pwd -P)" = "$(cd "$TOP/build/linux" 2>/dev/null && pwd -P)" ] &&
   [ -f "$LINUX/.hugelive-stamp" ]; then
	ver=$(cut -d' ' -f1 "$LINUX/.hugelive-stamp")
	hash=$( ( cat "$PATCHDIR/series"
		  for p in $(grep -v '^\s*#' "$PATCHDIR/series" | grep -v '^\s*$' || true); do
			cat "$PATCHDIR/$p"; done ) | sha256sum | cut -c1-16)
	echo "$ver $hash $(git -C "$LINUX" rev-parse HEAD)" >"$LINUX/.hugelive-stamp"
fi
