# mno lab: the apt-get stand-in on lab nodes. Nothing is installed, except that
# installing docker.io makes the docker stand-in answer (see docker.sh).
for a in "$@"; do
	if [ "$a" = docker.io ]; then
		mkdir -p /var/lib/mno-lab && : >/var/lib/mno-lab/docker
	fi
done
exit 0
