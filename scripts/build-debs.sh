#!/bin/bash
# Build the Debian packages (debian/) into build/debs/: hugelive,
# libhugelive1, libhugelive-dev, then run lintian on them.
#
# dpkg-buildpackage writes its results next to the source directory, so the
# checkout's files (tracked and new ones, not what .gitignore ignores) are
# copied to build/debs/hugelive-VERSION/ and built there: nothing lands
# beside the checkout, and the Makefile's build/ trees stay out of it.
#
# usage: scripts/build-debs.sh [dpkg-buildpackage options]   (default -us -uc -b)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/build/debs
cd "$TOP"

for t in dpkg-buildpackage dpkg-parsechangelog lintian git; do
	command -v $t >/dev/null || { echo "build-debs: $t missing (scripts/install-deps.sh --pkg)" >&2; exit 2; }
done
ver=$(dpkg-parsechangelog -S Version)
[ $# -gt 0 ] || set -- -us -uc -b
src=$OUT/hugelive-$ver

rm -rf "$OUT"
mkdir -p "$src"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$src"

echo "build-debs: dpkg-buildpackage in $src (log: $OUT/build.log)"
start=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage "$@") >"$OUT/build.log" 2>&1; then
	# a failed test first (meson's log holds every test's TAP output; the
	# tail of build.log has only meson's summary), then the tail
	for log in "$src"/obj-*/meson-logs/testlog.txt; do
		[ -f "$log" ] || continue
		echo "build-debs: failed checks in $log:"
		grep -B3 -A6 -E '^not ok|^Bail out|ERROR: |runtime error' "$log" | head -n 80
		grep -E '^# .*agent start failed|^#   ' "$log" | head -n 30
	done
	tail -40 "$OUT/build.log"
	echo "build-debs: dpkg-buildpackage failed (full log: $OUT/build.log)" >&2
	exit 1
fi
echo "build-debs: built in $(( $(date +%s) - start )) s"
rm -rf "$src"
ls -l "$OUT"/*.deb

# lintian on the result (the .changes names every .deb); the tags that
# remain are explained in debian/README.source
changes=$(ls "$OUT"/*.changes)
lintian --info --display-info --pedantic "$changes" 2>&1 | tee "$OUT/lintian.txt" || true
echo "build-debs: lintian: $(grep -c '^[EWIP]:' "$OUT/lintian.txt" || true) tags (build/debs/lintian.txt)"
