#!/bin/bash
# The bash completion of hugelivectl completes what the tool takes. (TAP)
# usage: tests/completion.sh [COMPLETION_FILE]
#   without a file: load it the way bash does at a <TAB>, through
#   bash-completion's loader from its completions directory (an installed
#   system); with one: source that file (the source tree).
set -u
FILE=${1:-}
BC=/usr/share/bash-completion/bash_completion
n=0 fail=0
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else fail=$((fail + 1)); echo "not ok $n - $2"; fi; }

if [ ! -r $BC ]; then
	echo "1..0 # SKIP bash-completion is not installed ($BC)"
	echo "0 passed, 0 failed"
	exit 0
fi
# bash_completion returns early in non-interactive shells unless this is set
BASH_COMPLETION_VERSINFO=${BASH_COMPLETION_VERSINFO-}
# shellcheck disable=SC1090
. $BC
if [ -n "$FILE" ]; then
	# shellcheck disable=SC1090
	. "$FILE"
else
	__load_completion hugelivectl
fi
complete -p hugelivectl >/dev/null 2>&1
t $? "a completion is registered for hugelivectl${FILE:+ ($FILE)}"

# complete WORDS...: what <TAB> offers after them (the last one is the
# word being completed, "" for a new one)
complete_line() {
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_hugelivectl hugelivectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort
}
has_all() { # LIST WANT...: every WANT is in LIST
	local l=$1 w; shift
	for w; do grep -qx -- "$w" <<<"$l" || { echo "# missing: $w"; return 1; }; done
}

got=$(complete_line hugelivectl "")
has_all "$got" check status sessions update finish create preserve retrieve destroy subscribe
t $? "'hugelivectl ' offers every command ($(echo $got))"
[ "$(grep -c . <<<"$got")" = 10 ]
t $? "'hugelivectl ' offers the 10 commands and nothing else"

got=$(complete_line hugelivectl update --)
has_all "$got" --kernel --initrd --append --reuse-cmdline --timeout --dry-run --force --running-kernel --json --socket
t $? "'hugelivectl update --' offers update's and the global options ($(echo $got))"
! grep -qx -- --session <<<"$got"
t $? "'hugelivectl update --' does not offer another command's option (--session)"

got=$(complete_line hugelivectl --json sessions --)
has_all "$got" --all --uid
t $? "after a global option the command is still found ('hugelivectl --json sessions --')"

got=$(complete_line hugelivectl st)
has_all "$got" status && ! grep -qx check <<<"$got"
t $? "'hugelivectl st' completes to status"

echo "1..$n"
echo "$((n - fail)) passed, $fail failed"
[ $fail = 0 ]
