#!/bin/sh
# Make libhugelive.a export only the hugelive.h API, as the Makefile does:
# link the library's objects into one relocatable object and make every
# symbol that is not in the version script local.
# usage: public-static-lib.sh LD OBJCOPY AR MAPFILE OUT.a IN.a...
set -eu
LD=$1 OBJCOPY=$2 AR=$3 MAP=$4 OUT=$5
shift 5
tmp=$OUT.tmp.d
rm -rf "$tmp" && mkdir -p "$tmp"
sed 's/;/\n/g' "$MAP" | tr -d ' \t' | grep -x 'hl_[a-z_0-9]*' > "$tmp/public.syms"
"$LD" -r -o "$tmp/all.o" --whole-archive "$@"
"$OBJCOPY" --keep-global-symbols="$tmp/public.syms" "$tmp/all.o" "$tmp/libhugelive-pub.o"
rm -f "$OUT"
"$AR" rcs "$OUT" "$tmp/libhugelive-pub.o"
rm -rf "$tmp"
