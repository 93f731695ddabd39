#!/bin/bash
# Compile check of the series under Debian's own kernel configuration
# (issue 12 item 4): a production config must not break unseen.
#
#   scripts/debian-config-check.sh
#
# Takes Debian's amd64 config of 7.3 (package linux-config-7.3), turns on
# what live update needs (KEXEC_HANDOVER, LIVEUPDATE, LIVEUPDATE_MEMFD,
# LIVEUPDATE_HUGETLB; debug info off, to save time) and builds, with W=1,
# the objects the series touches: mm/hugetlb*.o, mm/memfd_luo.o,
# fs/hugetlbfs/, kernel/liveupdate/. Then the same objects of the pristine
# source (baseline) with the same config, once, for the warnings that are
# upstream's. Fails if the series' build fails or brings a W=1 warning
# the baseline does not have (compared by file and message, not line).
#
# Cached in $HUGELIVE_CACHE (default ~/.cache/hugelive): obj-debcfg/ (the
# object dir, reused), debcfg-<key>.ok for a passing key (config + the
# series' diff): a hit prints the verdict again without building. Prints
# TAP and "N passed, N failed".
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
LINUX=$TOP/build/linux
CACHE=${HUGELIVE_CACHE:-$HOME/.cache/hugelive}
CFG=/usr/src/linux-config-7.3/config.amd64_none_amd64.xz
FRAG=$TOP/kernel/config/debian-liveupdate.config
JOBS=${JOBS:-$(nproc)}
OBJS=(mm/hugetlb.o mm/hugetlb_luo.o mm/hugetlb_vmemmap.o mm/hugetlb_cma.o mm/memfd_luo.o
      fs/hugetlbfs/ kernel/liveupdate/)

[ -r "$CFG" ] || { echo "debian-config-check: $CFG missing (apt-get install linux-config-7.3)" >&2; exit 2; }
git -C "$LINUX" rev-parse -q --verify baseline >/dev/null ||
	{ echo "debian-config-check: $LINUX has no baseline (run scripts/fetch-kernel.sh)" >&2; exit 2; }
mkdir -p "$CACHE"
key=$( { sha256sum "$CFG" "$0" "$FRAG"; git -C "$LINUX" diff --full-index -O/dev/null baseline; } | sha256sum | cut -c1-20)
stamp=$CACHE/debcfg-$key.ok
echo "1..2"
if [ -e "$stamp" ]; then
	sed 's/$/ (cached: key '"$key"')/' "$stamp"
	echo "2 passed, 0 failed"
	exit 0
fi

# config: Debian's, plus what live update needs, minus debug info and
# signing (kernel/config/debian-liveupdate.config, shared with the packages)
config() { # objdir srcdir
	mkdir -p "$1"
	xzcat "$CFG" >"$1/.config"
	"$2/scripts/kconfig/merge_config.sh" -m -O "$1" "$1/.config" "$FRAG" >/dev/null
	make -C "$2" O="$1" -s olddefconfig
}

# W=1 build of OBJS in srcdir/objdir; warnings (file: message) to $3
build() { # objdir srcdir warnings-file log
	config "$1" "$2" >"$4" 2>&1 || return 1
	make -C "$2" O="$1" -j"$JOBS" -s W=1 "${OBJS[@]}" >>"$4" 2>&1 || return 1
	{ grep -E '^[^ ]+:[0-9]+:[0-9]+: warning:' "$4" || true; } |
		sed -E -e "s#^$2/##" -e 's/^([^:]+):[0-9]+:[0-9]+: warning: /\1: /' | sort -u >"$3"
}

start=$(date +%s)
log=$CACHE/debcfg-series.log
if ! build "$CACHE/obj-debcfg" "$LINUX" "$CACHE/debcfg-series.warn" "$log"; then
	echo "not ok 1 - the series builds under Debian's config with W=1 (log: $log)"
	grep -E 'error' "$log" | head -n 20 | sed 's/^/# /'
	echo "0 passed, 2 failed"
	exit 1
fi
t1=$(( $(date +%s) - start ))
cfgval=$(grep -E '^CONFIG_LIVEUPDATE_HUGETLB=' "$CACHE/obj-debcfg/.config" || echo "LIVEUPDATE_HUGETLB unset")
line1="ok 1 - the series builds under Debian's config with W=1: ${OBJS[*]} ($cfgval, ${t1}s)"
echo "$line1"

# the pristine source, for upstream's own warnings (its own tree and objdir)
BASE=$CACHE/debcfg-baseline-src
if [ ! -e "$BASE/.git" ]; then
	rm -rf "$BASE"
	git -C "$LINUX" worktree prune
	git -C "$LINUX" worktree add -q --detach "$BASE" baseline
fi
start=$(date +%s)
# baseline has no hugetlb_luo.o: build what exists there
OBJS_ALL=("${OBJS[@]}")
OBJS=()
for o in "${OBJS_ALL[@]}"; do
	case $o in */) [ -d "$BASE/$o" ] && OBJS+=("$o") ;; *) [ -e "$BASE/${o%.o}.c" ] && OBJS+=("$o") ;; esac
done
if ! build "$CACHE/obj-debcfg-base" "$BASE" "$CACHE/debcfg-base.warn" "$CACHE/debcfg-base.log"; then
	echo "not ok 2 - baseline builds for comparison (log: $CACHE/debcfg-base.log)"
	echo "1 passed, 1 failed"
	exit 1
fi
new=$(comm -23 "$CACHE/debcfg-series.warn" "$CACHE/debcfg-base.warn")
if [ -n "$new" ]; then
	echo "not ok 2 - W=1 warnings the series brings ($(wc -l <<<"$new")):"
	sed 's/^/# /' <<<"$new"
	echo "1 passed, 1 failed"
	exit 1
fi
line2="ok 2 - no W=1 warning beyond baseline's ($(wc -l <"$CACHE/debcfg-base.warn") upstream, $(( $(date +%s) - start ))s)"
echo "$line2"
printf '%s\n%s\n' "$line1" "$line2" >"$stamp"
echo "2 passed, 0 failed"
