#!/bin/sh
# mno lab: stands in for the k3s installer (https://get.k3s.io). It installs
# /usr/local/bin/k3s, which runs `mno lab agent`: like the kubelet of a k3s
# agent, it reads /etc/rancher/k3s/config.yaml (server, token, node-name,
# node-ip), registers the Node with that server over the node's own network,
# using the join token, and keeps it Ready. Nothing else of k3s runs.
set -eu
cfg=/etc/rancher/k3s/config.yaml
if [ "${1:-}" != agent ]; then
	echo "[ERROR] mno lab installs k3s agents only (sh -s - agent)" >&2
	exit 1
fi
if [ ! -f "$cfg" ]; then
	echo "[ERROR] $cfg is missing: the agent needs server, token and node-name" >&2
	exit 1
fi
echo "[INFO]  Using ${INSTALL_K3S_VERSION:-stable} as release (mno lab stand-in)"
cat >/usr/local/bin/k3s <<'K3S'
#!/bin/sh
exec @MNO@ lab agent "$@"
K3S
chmod 755 /usr/local/bin/k3s
cat >/usr/local/bin/k3s-agent-uninstall.sh <<'UNINSTALL'
#!/bin/sh
[ -s /run/k3s-agent.pid ] && kill "$(cat /run/k3s-agent.pid)" 2>/dev/null
rm -f /usr/local/bin/k3s /usr/local/bin/k3s-agent-uninstall.sh /run/k3s-agent.pid
echo "[INFO]  k3s agent uninstalled (mno lab stand-in)"
UNINSTALL
chmod 755 /usr/local/bin/k3s-agent-uninstall.sh
setsid /usr/local/bin/k3s agent --config "$cfg" </dev/null >>/var/log/k3s-agent.log 2>&1 &
echo $! >/run/k3s-agent.pid
echo "[INFO]  systemd: Starting k3s-agent (mno lab stand-in, pid $!, log /var/log/k3s-agent.log)"
