# mno lab: the docker stand-in on lab nodes (run by the recording shim, as the
# caller, inside the node). There are no containers here: the compose project
# add-vps writes (/opt/mno/traefik/compose.yaml) is run as a real Traefik
# process (TRAEFIK, bound into the node) on the static configuration in
# /etc/traefik, in the node's namespaces, listening on its :80 and :443.
# Until `apt-get install docker.io` ran, docker is "not installed".
traefik=@TRAEFIK@
pidf=/run/mno-lab-traefik.pid
log=/var/log/mno-traefik.log
installed=/var/lib/mno-lab/docker

running() { [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

# listening PORT (4 hex digits): a socket listens on it in this node.
listening() { grep -qs ":$1 [0-9A-F]*:[0-9A-F]* 0A " /proc/net/tcp /proc/net/tcp6; }

start() {
	if ! grep -q 'container_name: mno-traefik' "$1" 2>/dev/null; then
		echo "mno lab: $1 is not the mno-traefik compose project; only that one runs in the lab" >&2
		return 1
	fi
	setsid "$traefik" --configFile=/etc/traefik/traefik.yml </dev/null >>"$log" 2>&1 &
	echo $! >"$pidf"
	# Like a container that is up, it returns once Traefik accepts connections
	# on :443 (a listening socket in this node's /proc/net/tcp*), so that what
	# runs next — a curl pasted from the README — does not race its start.
	i=0
	while running && ! listening 01BB && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if ! running; then
		echo "mno lab: traefik exited at once; the end of $log:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	if ! listening 01BB; then
		echo "mno lab: traefik does not listen on :443 after 10s; the end of $log:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	echo " Container mno-traefik  Started" >&2
}

stop() {
	if running; then
		pid=$(cat "$pidf")
		kill "$pid"
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$pid" 2>/dev/null
		echo " Container mno-traefik  Stopped" >&2
	fi
	rm -f "$pidf"
}

if [ ! -e "$installed" ]; then
	echo "docker: command not found (mno lab: apt-get install docker.io installs it)" >&2
	exit 127
fi

case $1 in
compose)
	shift
	file= action=
	while [ $# -gt 0 ]; do
		case $1 in
		-f | --file) file=$2; shift ;;
		version) echo "Docker Compose version v2.24.6 (mno lab stand-in)"; exit 0 ;;
		up | down | restart | ps | stop | start) [ -n "$action" ] || action=$1 ;;
		esac
		shift
	done
	case $action in
	up) running || start "$file" ;;
	restart | start) stop; start "$file" ;;
	down | stop) stop ;;
	ps) running && echo "mno-traefik   traefik   running" ;;
	esac
	;;
ps)
	shift
	want=
	while [ $# -gt 0 ]; do
		case $1 in
		--filter) case $2 in name=*) want=${2#name=} ;; esac; shift ;;
		esac
		shift
	done
	case $want in
	'' | '^mno-traefik$' | mno-traefik) running && printf '%012x\n' "$(cat "$pidf")" ;;
	esac
	;;
version | --version) echo "Docker version 24.0.7 (mno lab stand-in)" ;;
esac
exit 0
