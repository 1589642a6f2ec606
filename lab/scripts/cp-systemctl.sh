# mno lab: the control plane's systemctl for a lab --from mynodeone (exported as
# MNO_CP_SYSTEMCTL by `mno lab env`), so playbooks never touch this machine's
# systemd. It knows the units whose files are in DIR (UNIT.service), whether
# each is enabled (UNIT.service.enabled) and active (UNIT.service.active), and
# logs every call to DIR/calls.log.
d=@DIR@
printf '%s systemctl %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$*" >>"$d/calls.log"
cmd=$1
shift
quiet=0 now=0
units=
for a in "$@"; do
	case $a in
	-q | --quiet) quiet=1 ;;
	--now) now=1 ;;
	-*) ;;
	*.service) units="$units $a" ;;
	*) units="$units $a.service" ;;
	esac
done
say() { [ $quiet = 1 ] || echo "$1"; }
code=0
for u in $units; do
	f=$d/$u
	case $cmd in
	is-active)
		if [ -e "$f.active" ]; then say active; else say inactive; code=3; fi ;;
	is-enabled)
		if [ ! -e "$f" ]; then say not-found; code=4
		elif [ -e "$f.enabled" ]; then say enabled
		else say disabled; code=1; fi ;;
	cat)
		if [ -e "$f" ]; then echo "# $f"; cat "$f"; else echo "No files found for $u." >&2; code=1; fi ;;
	status)
		if [ ! -e "$f" ]; then echo "Unit $u could not be found." >&2; code=4
		elif [ -e "$f.active" ]; then echo "● $u - active (running) (mno lab stand-in)"
		else echo "○ $u - inactive (dead) (mno lab stand-in)"; code=3; fi ;;
	start | stop | restart | enable | disable)
		if [ ! -e "$f" ]; then echo "Failed to $cmd $u: Unit $u not found." >&2; code=5; continue; fi
		case $cmd in
		start | restart) : >"$f.active" ;;
		stop) rm -f "$f.active" ;;
		enable) : >"$f.enabled"; [ $now = 0 ] || : >"$f.active"; echo "Created symlink /etc/systemd/system/multi-user.target.wants/$u." ;;
		disable) rm -f "$f.enabled"; [ $now = 0 ] || rm -f "$f.active"; echo "Removed /etc/systemd/system/multi-user.target.wants/$u." ;;
		esac ;;
	*) echo "systemctl $cmd: not known to the mno lab stand-in" >&2; code=1 ;;
	esac
done
exit $code
