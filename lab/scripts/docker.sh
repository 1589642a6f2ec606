# mno lab: the docker stand-in on lab nodes (run by the recording shim, as the
# caller, inside the node). There are no containers here: a compose project
# whose service mounts a Traefik static configuration (mno's /opt/mno/traefik,
# MyNodeOne's ~/traefik) runs as a real Traefik process (TRAEFIK, bound into
# the node), in the node's namespaces, on its published ports; `mno lab
# docker` (lab/docker.go) does it. Until `apt-get install docker.io` ran,
# docker is "not installed".
if [ ! -e /var/lib/mno-lab/docker ]; then
	echo "docker: command not found (mno lab: apt-get install docker.io installs it)" >&2
	exit 127
fi
exec @MNO@ lab docker --traefik @TRAEFIK@ -- "$@"
