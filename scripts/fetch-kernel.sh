#!/bin/bash
# Prepare build/linux: Debian's linux-source-7.3 as a git repo whose first
# commit is the pristine source (tag "baseline"), with kernel/patches/series
# applied on top by git am.
#
# Idempotent: if build/linux already sits on baseline + exactly the series,
# nothing happens. If the tree has commits that are not in kernel/patches
# it refuses to touch it (export them first with "make export-patches").
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
WANT_PKG=linux-source-7.3
WANT_VER_PREFIX=7.3
LINUX=$TOP/build/linux
PATCHDIR=$TOP/kernel/patches
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

series_files() {
	[ -f "$PATCHDIR/series" ] || return 0
	grep -v '^\s*#' "$PATCHDIR/series" | grep -v '^\s*$' || true
}

series_hash() {
	( cat "$PATCHDIR/series" 2>/dev/null || true
	  for p in $(series_files); do cat "$PATCHDIR/$p"; done ) | sha256sum | cut -c1-16
}

TARBALL=/usr/src/$WANT_PKG.tar.xz
if [ ! -f "$TARBALL" ]; then
	"$TOP/scripts/install-deps.sh"
	pol=$(apt-cache policy "$WANT_PKG" 2>/dev/null || true)
	if ! grep -q Candidate <<<"$pol"; then
		echo "fetch-kernel: wanted package $WANT_PKG, apt knows no such package" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$WANT_PKG/trixie-backports" \
		|| DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$WANT_PKG"
fi
ver=$(dpkg-query -W -f='${Version}' "$WANT_PKG" 2>/dev/null || echo none)
case "$ver" in
$WANT_VER_PREFIX*) ;;
*)	echo "fetch-kernel: wanted $WANT_PKG version $WANT_VER_PREFIX.*, found '$ver'" >&2
	exit 1 ;;
esac
if [ ! -f "$TARBALL" ]; then
	echo "fetch-kernel: $WANT_PKG $ver installed but $TARBALL is missing" >&2
	exit 1
fi

# The stamp is "VERSION SERIES-HASH [HEAD]": HEAD is the commit the series
# left (or "make export-patches" recorded), so a tree still at that commit
# holds nothing unexported and may be reset to another series.
stamp_want="$ver $(series_hash)"
stamp_have=$(cat "$LINUX/.hugelive-stamp" 2>/dev/null || true)
stamp_head=$(cut -s -d' ' -f3 <<<"$stamp_have")
if [ -d "$LINUX/.git" ] && [ "$(cut -d' ' -f1,2 <<<"$stamp_have")" = "$stamp_want" ]; then
	# Stamp matches; make sure nobody committed on top without exporting.
	n_tree=$(git -C "$LINUX" rev-list --count baseline..HEAD)
	n_series=$(series_files | wc -l)
	if [ "$n_tree" = "$n_series" ]; then
		exit 0
	fi
fi

if [ -d "$LINUX/.git" ]; then
	n_tree=$(git -C "$LINUX" rev-list --count baseline..HEAD 2>/dev/null || echo 0)
	# Refuse to throw away commits that were never exported.
	if [ "$n_tree" -gt 0 ] && [ "$(git -C "$LINUX" rev-parse HEAD)" != "$stamp_head" ]; then
		tmp=$(mktemp -d)
		git -C "$LINUX" format-patch -q -o "$tmp" baseline..HEAD
		if ! diff -q <(cat "$tmp"/*.patch | grep -v '^From ' | sha256sum) \
			     <(for p in $(series_files); do grep -v '^From ' "$PATCHDIR/$p"; done | sha256sum) >/dev/null; then
			echo "fetch-kernel: build/linux has commits not in kernel/patches; run 'make export-patches' first" >&2
			rm -rf "$tmp"
			exit 1
		fi
		rm -rf "$tmp"
	fi
	echo "fetch-kernel: resetting build/linux to baseline and re-applying the series"
	git -C "$LINUX" am --abort >/dev/null 2>&1 || true
	git -C "$LINUX" reset -q --hard baseline
	git -C "$LINUX" clean -qfdx -e .hugelive-stamp
else
	echo "fetch-kernel: extracting $TARBALL ($ver)"
	rm -rf "$LINUX"
	mkdir -p "$TOP/build"
	tmp=$TOP/build/linux.tmp
	rm -rf "$tmp"; mkdir -p "$tmp"
	tar -xf "$TARBALL" -C "$tmp"
	mv "$tmp"/linux-source-* "$LINUX"
	rmdir "$tmp"
	(cd "$LINUX" && git init -q && git config user.name hugelive && git config user.email hugelive@localhost \
	 && git add -A -f . >/dev/null && git commit -q -m "Debian $WANT_PKG $ver pristine" && git tag baseline)
fi

# Trees made by an older version of this script ordered their diffs.
git -C "$LINUX" config --unset diff.orderFile || true

for p in $(series_files); do
	if ! git -C "$LINUX" am -q --keep-cr "$PATCHDIR/$p"; then
		echo "fetch-kernel: patch $p does not apply" >&2
		git -C "$LINUX" am --abort || true
		exit 1
	fi
done
echo "$stamp_want $(git -C "$LINUX" rev-parse HEAD)" > "$LINUX/.hugelive-stamp"
echo "fetch-kernel: build/linux at baseline + $(series_files | wc -l) patches"
