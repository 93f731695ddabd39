#!/bin/bash
# Install the Debian packages of make debs into a fresh Debian 12 (bookworm)
# root and check them there, as an administrator would use them. (TAP)
#
# usage: tests/pkg/install-test.sh [DEBDIR]      (root; default build/debs)
#   MIRROR=URL   Debian mirror (default http://deb.debian.org/debian)
#   KEEP=1       keep the root (its path is printed)
#
# The root comes from mmdebstrap (variant apt, plus man-db, pkgconf, gcc,
# libc6-dev, bash-completion); the .debs are installed with apt-get from
# their files, so their dependencies come from the mirror as on a real
# host. Downloads a minimal system (~450 MB unpacked): not in make check.
# No mounts: everything runs under chroot(8) in the root, which is removed
# at the end.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
DEBDIR=$(cd "${1:-$TOP/build/debs}" 2>/dev/null && pwd) || { echo "install-test: no ${1:-build/debs} (make debs)" >&2; exit 2; }
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PKGS=(hugelive libhugelive1 libhugelive-dev)

if [ "$(id -u)" != 0 ]; then
	echo "install-test: needs root (mmdebstrap --mode=root, chroot)" >&2
	exit 2
fi
for t in mmdebstrap dpkg-deb hardening-check; do
	command -v $t >/dev/null || { echo "install-test: $t missing (scripts/install-deps.sh --pkg)" >&2; exit 2; }
done
debs=()
for p in "${PKGS[@]}"; do
	f=$(ls "$DEBDIR"/${p}_*_amd64.deb 2>/dev/null | tail -1)
	[ -n "$f" ] || { echo "install-test: no $p .deb in $DEBDIR (make debs)" >&2; exit 2; }
	debs+=("$f")
done

WORK=$(mktemp -d /tmp/hugelive-pkgtest.XXXXXX)
R=$WORK/root
cleanup() {
	if [ "${KEEP:-0}" = 1 ]; then echo "# kept: $R"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

n=0 fail=0
t() { # STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else fail=$((fail + 1)); echo "not ok $n - $2"; fi
}
diag() { sed 's/^/#   /'; }
# run a shell command in the root, clean environment
in_root() {
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb \
		DEBIAN_FRONTEND=noninteractive chroot "$R" /bin/bash -c "$1"
}

# ---- on the host: what the packages carry -----------------------------
echo "# packages: ${debs[*]##*/}"
mkdir -p "$WORK/x"
for f in "${debs[@]}"; do dpkg-deb -x "$f" "$WORK/x"; done
lib=$(ls "$WORK"/x/usr/lib/*/libhugelive.so.1)
for b in "$WORK/x/usr/sbin/hugelived" "$WORK/x/usr/bin/hugelivectl" "$lib"; do
	out=$(hardening-check "$b" 2>&1)
	# PIE is not asked of a shared library (hardening-check ignores it)
	bad=$(printf '%s\n' "$out" | grep -E '^ (Position Independent Executable|Stack protected|Fortify Source functions|Read-only relocations|Immediate binding):' | grep -v ': yes' | grep -v 'regular shared library')
	[ -z "$bad" ]
	t $? "hardening: ${b#"$WORK"/x} has PIE, stack protector, fortify, RELRO, BIND_NOW"
	[ -n "$bad" ] && printf '%s\n' "$out" | diag
done
readelf -d "$lib" | grep -q 'SONAME.*\[libhugelive.so.1\]'
t $? "libhugelive1 carries libhugelive.so.1 with soname libhugelive.so.1"

# ---- a clean Debian 12 root ---------------------------------------------
echo "# mmdebstrap $SUITE $MIRROR -> $R"
start=$(date +%s)
mmdebstrap --mode=root --variant=apt --skip=cleanup/apt/lists \
	--include=man-db,pkgconf,gcc,libc6-dev,bash-completion \
	"$SUITE" "$R" "$MIRROR" >"$WORK/mmdebstrap.log" 2>&1
st=$?
t $st "a fresh Debian 12 root from mmdebstrap ($(( $(date +%s) - start )) s)"
if [ $st != 0 ]; then
	tail -20 "$WORK/mmdebstrap.log" | diag
	echo "1..$n"; echo "$((n - fail)) passed, $fail failed"; exit 1
fi
grep -q '^VERSION_ID="12"' "$R/etc/os-release"
t $? "the root is Debian 12 ($(. "$R/etc/os-release"; echo "$PRETTY_NAME"))"
! in_root 'command -v hugelivectl hugelived >/dev/null; ls /usr/lib/*/libhugelive* 2>/dev/null | grep -q .'
t $? "nothing of hugelive in the root before the install"

# ---- install ------------------------------------------------------------
mkdir -p "$R/tmp/debs"
cp "${debs[@]}" "$R/tmp/debs/"
in_root "apt-get install -y -q --no-install-recommends $(printf '/tmp/debs/%s ' "${debs[@]##*/}")" >"$WORK/install.log" 2>&1
st=$?
t $st "apt-get installs ${PKGS[*]} from the .debs (dependencies from the mirror)"
[ $st != 0 ] && tail -20 "$WORK/install.log" | diag
for p in "${PKGS[@]}"; do
	in_root "dpkg-query -W -f='\${Status}' $p" 2>/dev/null | grep -q 'install ok installed'
	t $? "$p is installed"
done

# ---- the tools ------------------------------------------------------------
out=$(in_root 'hugelivectl --version' 2>&1)
[[ $out == "hugelivectl 0.1.0 "* ]]
t $? "hugelivectl --version: $out"
out=$(in_root 'hugelived --version' 2>&1)
t $? "hugelived --version runs (/usr/sbin): $out"
in_root 'hugelivectl --socket /nonexistent.sock status >/dev/null 2>&1'
[ $? = 3 ]
t $? "hugelivectl status without an agent exits 3 (agent not reachable)"
in_root 'hugelive-vm --help' 2>&1 | grep -q '^usage: hugelive-vm start'
t $? "hugelive-vm --help prints its usage (/usr/bin)"
in_root 'hugelive-vm start --name x --kernel /nonexistent >/dev/null 2>&1'
[ $? = 2 ]
t $? "hugelive-vm start with a missing kernel exits 2"

# ---- man pages ------------------------------------------------------------
for pg in 8:hugelivectl 8:hugelived 8:hugelive-vm 3:libhugelive; do
	s=${pg%%:*} name=${pg#*:}
	out=$(in_root "man -w $name" 2>&1)
	[ "$out" = "/usr/share/man/man$s/$name.$s.gz" ]
	t $? "man -w $name: $out"
done
out=$(in_root 'MANWIDTH=80 man --warnings -E UTF-8 hugelivectl 2>&1 >/dev/null | grep -v "cannot adjust line\|can.t break line"')
[ -z "$out" ]
t $? "man hugelivectl renders without troff warnings"
[ -n "$out" ] && printf '%s\n' "$out" | head -5 | diag
in_root 'MANWIDTH=80 man hugelivectl 2>/dev/null' | grep -q 'orchestrated live update\|Orchestrated live update'
t $? "man hugelivectl shows the update command's description"

# ---- systemd units ----------------------------------------------------
units=$(in_root 'dpkg -L hugelive' | grep -E '/systemd/system/hugelived\.(service|socket)$')
for u in hugelived.service hugelived.socket; do
	f=$(grep "/$u\$" <<<"$units")
	[ -n "$f" ] && [ -f "$R$f" ] && [[ $f == /lib/systemd/system/* || $f == /usr/lib/systemd/system/* ]]
	t $? "unit $u in place (${f:-missing})"
done
exec_bin=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$R/lib/systemd/system/hugelived.service" 2>/dev/null)
[ "$exec_bin" = /usr/sbin/hugelived ] && [ -x "$R$exec_bin" ]
t $? "hugelived.service starts the installed agent (ExecStart=$exec_bin)"
[ -L "$R/etc/systemd/system/multi-user.target.wants/hugelived.service" ] &&
	[ -L "$R/etc/systemd/system/sockets.target.wants/hugelived.socket" ]
t $? "the postinst enabled hugelived.service and hugelived.socket for the next boot"

# ---- the library for developers -----------------------------------------
out=$(in_root 'pkg-config --cflags --libs hugelive' 2>&1)
st=$?
[ $st = 0 ] && [[ " $out " == *" -lhugelive "* ]]
t $? "pkg-config --cflags --libs hugelive: '$out'"
cat >"$R/tmp/client.c" <<'EOF'
/* a small libhugelive client: no agent runs in the test root */
#include <errno.h>
#include <hugelive.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	hl_client *c = NULL;
	int rc = hl_connect("/nonexistent/agent.sock", &c);

	printf("protocol %d, hl_connect: %d (%s)\n", HUGELIVE_PROTOCOL_VERSION, rc, strerror(-rc));
	return rc == -ENOENT ? 0 : 1;
}
EOF
out=$(in_root 'cd /tmp && cc -Wall -Werror -o client client.c $(pkg-config --cflags --libs hugelive)' 2>&1)
t $? "a client compiles and links against the installed libhugelive (shared)"
[ -n "$out" ] && printf '%s\n' "$out" | diag
out=$(in_root 'ldd /tmp/client' 2>&1 | sed -n 's/.*libhugelive.so.1 => \([^ ]*\).*/\1/p')
# bookworm's /lib is a symlink to usr/lib: ldd may name either
real=$(in_root "readlink -f '$out'" 2>/dev/null)
[ "$real" = "$(in_root 'readlink -f /usr/lib/x86_64-linux-gnu/libhugelive.so.1')" ] && in_root "dpkg -S /usr/lib/x86_64-linux-gnu/libhugelive.so.1" 2>/dev/null | grep -q '^libhugelive1:'
t $? "the client loads the packaged library (${out:-not found}, libhugelive1's file)"
out=$(in_root '/tmp/client' 2>&1)
t $? "the client runs: $out"
out=$(in_root 'cd /tmp && cc -Wall -Werror -o client-static client.c $(pkg-config --cflags hugelive) "$(pkg-config --variable=libdir hugelive)/libhugelive.a" $(pkg-config --static --libs hugelive | sed "s/-lhugelive//") && ./client-static' 2>&1)
t $? "the same client linked with libhugelive.a runs: $out"
out=$(in_root 'cd /tmp && cc -Wall -Werror -o example /usr/share/doc/libhugelive-dev/examples/hugelive-example.c $(pkg-config --cflags --libs hugelive)' 2>&1)
t $? "the shipped example client builds against the package"
[ -n "$out" ] && printf '%s\n' "$out" | diag

# ---- bash completion (loaded the way bash does at a <TAB>) ---------------
cp "$TOP/userspace/tests/completion.sh" "$R/tmp/completion.sh"
out=$(in_root 'bash /tmp/completion.sh' 2>&1)
st=$?
printf '%s\n' "$out" | grep -E '^(ok|not ok) ' | sed 's/^/# completion: /'
[ $st = 0 ] && grep -q ' passed, 0 failed$' <<<"$out"
t $? "bash completion from $(in_root 'pkg-config --variable=completionsdir bash-completion'): $(tail -1 <<<"$out")"

# ---- removal ------------------------------------------------------------
in_root "apt-get purge -y -q ${PKGS[*]}" >"$WORK/purge.log" 2>&1
t $? "apt-get purge ${PKGS[*]}"
left=$(cd "$R" && ls -d usr/sbin/hugelived usr/bin/hugelivectl usr/lib/*/libhugelive* usr/include/hugelive.h \
	lib/systemd/system/hugelived.* etc/systemd/system/*/hugelived.* usr/share/man/man8/hugelive* 2>/dev/null)
[ -z "$left" ]
t $? "nothing is left after the purge${left:+ (left: $(echo $left))}"

echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
