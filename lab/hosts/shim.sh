#!/bin/sh
# Recording shim installed by mno lab (lab/hosts): the real command does not run
# on this test host. Each call appends one JSON line to /var/log/mno-shims.log
# (user, argv, stdin as sha256 and length, the exit code returned) and answers
# with the response set for the longest matching argv prefix under
# /var/lib/mno-shims/responses (default: no output, exit 0). A response may carry a
# script, run with the call's arguments and stdin; its exit code is the answer.
export LC_ALL=C
name=${0##*/}
dir=/var/lib/mno-shims
log=/var/log/mno-shims.log
in=$(mktemp "${TMPDIR:-/tmp}/mno-shim.XXXXXX") || exit 125
trap 'rm -f "$in" "$in.r" "$in.b" "$in.s"' EXIT

# Like the commands it stands for, the shim reads its stdin to EOF (unless it is
# a terminal).
if [ -t 0 ]; then : >"$in"; else cat >"$in"; fi

# tok names one argv element as a path component; lab/hosts computes the same.
tok() {
	case $1 in
	'' | . | .. | *[!A-Za-z0-9._+,=@:-]*) printf 'x_%s' "$(printf %s "$1" | od -An -v -tx1 | tr -d ' \n')" ;;
	*) printf 'a_%s' "$1" ;;
	esac
}
node=$dir/responses/$(tok "$name")
resp=
[ -f "$node/.r" ] && resp=$node/.r
for a in "$@"; do
	[ -d "$node" ] || break
	t=$(tok "$a")
	[ ${#t} -le 200 ] || break
	node=$node/$t
	[ -f "$node/.r" ] && resp=$node/.r
done

# A response is "code stdout-length stderr-length [script-length]\n" then stdout,
# stderr and the script. It is copied first: a concurrent SetShim replaces the
# file, never edits it.
code=0 olen=0 elen=0 slen=0
if [ -n "$resp" ] && cat "$resp" >"$in.r" 2>/dev/null; then
	read -r code olen elen slen <"$in.r"
	slen=${slen:-0}
fi
hl=$(head -n 1 "$in.r" 2>/dev/null | wc -c)
if [ "$slen" -gt 0 ]; then
	tail -c +$((hl + olen + elen + 1)) "$in.r" | head -c "$slen" >"$in.s"
	sh "$in.s" "$@" <"$in"
	code=$?
fi

sum=$(sha256sum <"$in")
len=$(wc -c <"$in")
full=
if [ -e "$dir/full-stdin" ]; then
	base64 -w0 <"$in" >"$in.b"
	full=$in.b
fi
{
	flock 9 2>/dev/null
	awk '
	function esc(s,   i, c, o) {
		o = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			o = o ((c in m) ? m[c] : c)
		}
		return "\"" o "\""
	}
	BEGIN {
		for (i = 1; i < 32; i++) m[sprintf("%c", i)] = sprintf("\\u%04x", i)
		m["\""] = "\\\""; m["\\"] = "\\\\"; m[sprintf("%c", 127)] = "\\u007f"
		printf "{\"time\":%s,\"user\":%s", esc(ARGV[1]), esc(ARGV[2])
		if (ARGV[3] != "") printf ",\"sudo_user\":%s", esc(ARGV[3])
		printf ",\"code\":%d,\"stdin_sha256\":%s,\"stdin_len\":%d", ARGV[4], esc(ARGV[5]), ARGV[6]
		if (ARGV[7] != "") { b = ""; getline b < ARGV[7]; printf ",\"stdin\":\"%s\"", b }
		printf ",\"argv\":["
		for (i = 8; i < ARGC; i++) printf "%s%s", (i > 8 ? "," : ""), esc(ARGV[i])
		printf "]}\n"
		exit
	}' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$(id -un 2>/dev/null || id -u)" "${SUDO_USER:-}" \
		"$code" "${sum%% *}" "$((len))" "$full" "$name" "$@" >&9
} 9>>"$log"

if [ "$olen" -gt 0 ]; then tail -c +$((hl + 1)) "$in.r" | head -c "$olen"; fi
if [ "$elen" -gt 0 ]; then tail -c +$((hl + olen + 1)) "$in.r" | head -c "$elen" >&2; fi
exit "$code"
