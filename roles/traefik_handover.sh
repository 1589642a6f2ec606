# Hands ports 80 and 443 over from MyNodeOne's Traefik (container "traefik")
# to mno's (compose project /opt/mno/traefik) without refusing a connection.
# Run as root by roles/mynodeone.star; the arguments are the hosts routed
# (checked names), rendered values are constants of that role.
#
#  1. a stand-in of mno's Traefik (same image, same /etc/traefik, a copy of
#     the ACME storage) starts on ports {{.http}}/{{.https}} and must answer
#     every host as MyNodeOne's does;
#  2. new connections to 80/443 are redirected to it (iptables: marked in
#     mangle PREROUTING, redirected by mark in nat PREROUTING; connections
#     already open stay where they are);
#  3. MyNodeOne's container is stopped (gracefully: requests in flight end),
#     a second after the redirect, once it has accepted what its backlog holds;
#  4. mno's Traefik starts on 80/443 and must answer every host as before;
#  5. the redirect is switched off, and a second later the stand-in is
#     stopped (gracefully).
# Any failure before 3 leaves MyNodeOne's Traefik serving; a failure at 4
# starts it again. Either way the script exits 1 and removes what it added.
set -u
old={{.old}}
steady={{.steady}}
handover={{.handover}}
http={{.http}}
https={{.https}}
tag=mno-handover

status() { # HOST PORT: the HTTP status a GET https://HOST/ gets on 127.0.0.1:PORT (000: none)
	curl -sk -o /dev/null -m 5 -w '%{http_code}' --resolve "$1:$2:127.0.0.1" "https://$1:$2/" 2>/dev/null || true
}

# cert HOST PORT: the SHA-256 fingerprint of the certificate served for HOST
# on 127.0.0.1:PORT; "default" for Traefik's self-signed default certificate,
# "none" when none was read, "-" without openssl. A Traefik that has just
# started answers with its default certificate until it has loaded the ACME
# storage, so a status alone does not show that it serves as the old one did.
cert() {
	command -v openssl >/dev/null 2>&1 || { echo -; return; }
	c=$(timeout 5 openssl s_client -connect "127.0.0.1:$2" -servername "$1" </dev/null 2>/dev/null |
		openssl x509 -noout -subject -fingerprint -sha256 2>/dev/null) || true
	case "$c" in
	*"TRAEFIK DEFAULT CERT"*) echo default ;;
	*Fingerprint=*) echo "${c##*Fingerprint=}" ;;
	*) echo none ;;
	esac
}

before=$(mktemp)
trap 'rm -f "$before"' EXIT
probe=mno-handover.invalid
[ $# -gt 0 ] || set -- "$probe"
for h in "$@"; do printf '%s %s %s\n' "$h" "$(status "$h" 443)" "$(cert "$h" 443)" >>"$before"; done

# serves PORT: every host answers on PORT as it did on 443 before (status,
# and the certificate unless that was none or Traefik's default), within 30 s.
serves() {
	i=0
	while :; do
		ok=1
		while read -r h want wantcert; do
			got=$(status "$h" "$1")
			if [ "$got" != "$want" ] && ! { [ "$h" = "$probe" ] && [ "$got" != 000 ]; }; then
				ok=0 why="$h answers $got on :$1, MyNodeOne's Traefik answered $want"
				break
			fi
			case "$wantcert" in -|none|default) continue ;; esac
			gotcert=$(cert "$h" "$1")
			if [ "$gotcert" != "$wantcert" ]; then
				ok=0 why="$h is served with certificate $gotcert on :$1, MyNodeOne's Traefik served $wantcert"
				break
			fi
		done <"$before"
		[ $ok = 1 ] && return 0
		i=$((i + 1))
		[ $i -lt 150 ] || { echo "mno: $why" >&2; return 1; }
		sleep 0.2
	done
}

# The redirect is switched by a mark rather than by adding and deleting
# REDIRECT rules: rewriting the nat table while connections are set up
# resets a few of them (measured in the lab: about 1 in 500 under load),
# rewriting mangle does not. The nat rules match marked packets only, so they
# are added before and deleted after the switch without touching traffic.
mark=0x4d4e
redirect() { # -I or -D: the nat rules for marked connections, the firewall opening
	for t in iptables ip6tables; do
		command -v $t >/dev/null 2>&1 || continue
		[ $t = iptables ] || $t -t nat -S PREROUTING >/dev/null 2>&1 || continue
		$t -w -t nat "$1" PREROUTING -p tcp --dport 80 -m mark --mark $mark -m comment --comment $tag -j REDIRECT --to-ports "$http" || return 1
		$t -w -t nat "$1" PREROUTING -p tcp --dport 443 -m mark --mark $mark -m comment --comment $tag -j REDIRECT --to-ports "$https" || return 1
		# A firewall (ufw) that allows 80/443 sees the redirected port.
		$t -w "$1" INPUT -p tcp -m multiport --dports "$http,$https" -m comment --comment $tag -j ACCEPT || return 1
	done
}
switch() { # -I or -D: mark the first packet of each new connection to 80/443
	for t in iptables ip6tables; do
		command -v $t >/dev/null 2>&1 || continue
		[ $t = iptables ] || $t -t mangle -S PREROUTING >/dev/null 2>&1 || continue
		$t -w -t mangle "$1" PREROUTING -p tcp --syn -m multiport --dports 80,443 -m comment --comment $tag -j MARK --set-mark $mark || return 1
	done
}
rules() { # -I: redirect, then switch; -D: the other way round
	if [ "$1" = -I ]; then redirect -I && switch -I; else switch -D; redirect -D; fi
}

stop_handover() { docker compose -f "$handover" down >/dev/null 2>&1 || true; }

if ! docker compose -f "$handover" up -d; then
	stop_handover
	echo "mno: the hand-over Traefik did not start; MyNodeOne's Traefik still serves" >&2
	exit 1
fi
if ! serves "$https"; then
	stop_handover
	echo "mno: mno's Traefik does not answer as MyNodeOne's does; MyNodeOne's Traefik still serves" >&2
	exit 1
fi
if ! command -v iptables >/dev/null 2>&1 || ! rules -I; then
	rules -D >/dev/null 2>&1
	stop_handover
	echo "mno: cannot redirect ports 80/443 with iptables; MyNodeOne's Traefik still serves" >&2
	exit 1
fi
# Connections the old Traefik's kernel backlog already holds would be reset
# when it closes its listeners: give it a moment to accept them first.
sleep 1
docker stop "$old" >/dev/null
if ! docker compose -f "$steady" up -d || ! serves 443; then
	docker compose -f "$steady" stop >/dev/null 2>&1
	docker start "$old" >/dev/null
	serves 443 || true
	rules -D
	stop_handover
	echo "mno: mno's Traefik did not take ports 80/443 over; MyNodeOne's Traefik was started again" >&2
	exit 1
fi
switch -D
sleep 1 # as above, for the hand-over Traefik's backlog
stop_handover
redirect -D
echo "mno: ports 80 and 443 handed over from container $old to mno's Traefik"
