#!/bin/sh
# The libraries export exactly the hugelive.h API listed in libhugelive.map.
# usage: tests/exports.sh LIBDIR MAPFILE   (TAP)
set -u
LIB=$1 MAP=$2
n=0 fail=0
want=$(sed 's/;/\n/g' "$MAP" | tr -d ' \t' | grep -x 'hl_[a-z_0-9]*' | sort -u)
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else fail=$((fail + 1)); echo "not ok $n - $2"; fi; }
for f in libhugelive.a libhugelive.so.1; do
	if [ $f = libhugelive.a ]; then
		got=$(nm -g --defined-only "$LIB/$f" | awk 'NF == 3 { print $3 }' | sort -u)
	else
		got=$(nm -D --defined-only "$LIB/$f" | awk 'NF == 3 && $3 ~ /^hl_/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
	fi
	extra=$(printf '%s\n' "$got" | grep -vxF "$want" | tr '\n' ' ')
	missing=$(printf '%s\n' "$want" | grep -vxF "$got" | tr '\n' ' ')
	[ -z "$extra" ]; t $? "$f exports nothing beyond hugelive.h${extra:+ (extra: $extra)}"
	[ -z "$missing" ]; t $? "$f exports all of hugelive.h${missing:+ (missing: $missing)}"
done
echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
