#!/usr/bin/env bash
# Makes configmaps.json (the four ConfigMaps) and blank-domains.json (the
# domain registry after one more write) exactly as MyNodeOne's own scripts
# write them, by running those scripts against a throwaway API server.
#
#   KUBECONFIG=<throwaway API server> ./make-fixtures.sh <MyNodeOne checkout> [OUT_DIR]
#
# Nothing of MyNodeOne is copied here: the scripts run from the checkout
# (github:vinsac/MyNodeOne, HEAD 4d8bf16 for the committed fixture). kubectl
# is a stand-in that records every call in kubectl.log and then runs the real
# kubectl; ssh, ping and sleep are stand-ins too (the laptop answers, the VPS
# accepts the connection but its sync fails), so sync-controller.sh writes
# its real status fields. The story, in order: bootstrap's cluster-info and
# registries, LoadBalancer services discovered by `service-registry.sh sync`,
# platform and app registrations, a domain whose description holds a
# backslash, routing entries (one with "vps_nodes": [] as
# configure-domain-routing.sh writes them, one with its trailing comma), a VPS,
# a laptop named from $HOSTNAME, the control plane registered as a laptop, the
# laptop re-registered after an address change, one `sync-controller.sh push`,
# and last a domain whose description holds a backslash ("Backup\share"),
# which MyNodeOne stores as an invalid JSON escape — and which makes its own
# next write of domains.json store a blank document (blank-domains.json).
set -euo pipefail
mn=$(cd "$1" && pwd)/scripts
out=$(cd "${2:-$(dirname "$0")}" && pwd)
: "${KUBECONFIG:?point KUBECONFIG at a throwaway API server}"
real_kubectl=$(command -v kubectl)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home
mkdir -p "$HOME" "$work/bin"
: >"$out/kubectl.log"

CP=100.76.150.207 VPS=100.86.188.1 LAPTOP_OLD=100.86.112.112 LAPTOP=100.86.112.113

cat >"$work/bin/kubectl" <<KUBECTL
#!/usr/bin/env bash
{ printf 'kubectl'; printf ' %q' "\$@"; printf '\n'; } >>"$out/kubectl.log"
exec "$real_kubectl" "\$@"
KUBECTL
# ssh: the CP and the laptop's new address answer (with a MyNodeOne hosts
# block); the VPS accepts connections but its route sync fails; the laptop's
# old address is gone.
cat >"$work/bin/ssh" <<SSH
#!/usr/bin/env bash
target= cmd=
while [ \$# -gt 0 ]; do
  case "\$1" in -o) shift 2 ;; *@*) target=\${1#*@}; shift; cmd="\$*"; break ;; *) shift ;; esac
done
cat >/dev/null 2>&1 <&0 || true
case "\$target" in
  $CP|$LAPTOP) case "\$cmd" in *"grep -c"*) echo 1 ;; esac; exit 0 ;;
  $VPS) case "\$cmd" in *ping*) exit 0 ;; *) echo "cd: ~/mynodeone: No such file or directory" >&2; exit 1 ;; esac ;;
  *) echo "ssh: connect to host \$target port 22: No route to host" >&2; exit 255 ;;
esac
SSH
printf '#!/bin/sh\nexit 1\n' >"$work/bin/ping"
printf '#!/bin/sh\nexit 0\n' >"$work/bin/sleep"
chmod +x "$work/bin/"*
export PATH="$work/bin:$PATH"
k() { kubectl "$@" >/dev/null; }

# bootstrap-control-plane.sh create_cluster_info, as it runs kubectl.
kubectl create configmap cluster-info \
  --from-literal=cluster-name=mynodeone --from-literal=cluster-domain=minicloud \
  --from-literal=control-plane-ip=$CP --from-literal=repo-path=/home/vinaysachdeva/MyNodeOne \
  --namespace=kube-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
bash "$mn/lib/node-registry-manager.sh" init
bash "$mn/lib/service-registry.sh" init
bash "$mn/lib/multi-domain-registry.sh" init

# LoadBalancer services with MetalLB addresses.
lb() { # namespace name port ip
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  k -n "$1" create service loadbalancer "$2" --tcp="$3:$3"
  k -n "$1" patch service "$2" --subresource=status --type=merge -p "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"$4\"}]}}}"
}
lb immich immich-server 80 100.122.68.206
lb monitoring kube-prometheus-stack-grafana 80 100.122.68.203
lb mynodeone-dashboard dashboard 80 100.122.68.205
lb llm-chat open-webui 8080 100.122.68.207
lb minio minio-console 9001 100.122.68.208

bash "$mn/lib/service-registry.sh" sync
bash "$mn/lib/service-registry.sh" register dashboard minicloud mynodeone-dashboard dashboard 80 false
bash "$mn/lib/service-registry.sh" register minio-console minio minio minio-console 9001 false
bash "$mn/lib/service-registry.sh" register immich photos immich immich-server 80 true
bash "$mn/lib/service-registry.sh" register open-webui chat llm-chat open-webui 8080 false

bash "$mn/lib/multi-domain-registry.sh" register-domain curiios.com "VPS edge node domain"
bash "$mn/lib/multi-domain-registry.sh" register-vps $VPS 45.8.133.192 contabo-germany unknown
bash "$mn/lib/multi-domain-registry.sh" configure-routing immich "curiios.com,vinaysachdeva.com" "$VPS" round-robin
bash "$mn/lib/multi-domain-registry.sh" configure-routing open-webui "curiios.com" "" round-robin
bash "$mn/lib/multi-domain-registry.sh" configure-routing kube-prometheus-stack-grafana "" "$VPS," round-robin

bash "$mn/lib/sync-controller.sh" register vps_nodes $VPS vps-edge-01 mno
SKIP_SSH_VALIDATION=true bash "$mn/lib/node-registry-manager.sh" register management_laptops $LAPTOP_OLD Vinay-ThinkPad mno 8080 /home/mno/Projects/mynodeone/code/MyNodeOne
SKIP_SSH_VALIDATION=true bash "$mn/lib/node-registry-manager.sh" register management_laptops $CP canada-pc mno 8080 /home/vinaysachdeva/MyNodeOne
SKIP_SSH_VALIDATION=true bash "$mn/lib/node-registry-manager.sh" register management_laptops $LAPTOP Vinay-ThinkPad mno 8080 /home/mno/Projects/mynodeone/code/MyNodeOne
bash "$mn/lib/sync-controller.sh" push || true
bash "$mn/lib/multi-domain-registry.sh" register-domain vinaysachdeva.com 'Backup\share'

dump() { # file configmap...
  local f=$1
  shift
  for cm in "$@"; do
    kubectl get configmap -n kube-system "$cm" -o json | jq --arg cm "$cm" '{($cm): .data}'
  done | jq -s 'add' >"$out/$f"
}
dump configmaps.json sync-controller-registry service-registry domain-registry cluster-info
# The next domain-registry write cannot parse "Backup\share", and stores " ".
bash "$mn/lib/multi-domain-registry.sh" register-vps 100.86.188.2 45.8.133.193 hetzner unknown || true
dump blank-domains.json domain-registry
echo "wrote $out/configmaps.json, $out/blank-domains.json and $out/kubectl.log" >&2
