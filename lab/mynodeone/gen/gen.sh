#!/usr/bin/env bash
# Regenerates ../configmaps.json, the ConfigMaps of `mno lab up --from mynodeone`,
# by running MyNodeOne's own registry scripts (as its installers call them)
# against the stand-in kubectl next to this file. Needs bash, jq and a checkout
# of github.com/vinsac/MyNodeOne (4d8bf16):  ./gen.sh /path/to/MyNodeOne
# Addresses are placeholders the lab replaces by its own (lab/mynodeone.go):
# 100.101.1.11 vps-1, 100.101.2.22 laptop-1, 100.101.3.33 the demo service's
# LoadBalancer IP, 100.101.0.1 the control plane.
set -euo pipefail
repo=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=$work/home PATH=$here:$PATH KUBE_STORE=$work/store.json KUBE_SVCS=$work/svcs.json
mkdir -p "$HOME"
echo '{"demo":{"status":{"loadBalancer":{"ingress":[{"ip":"100.101.3.33"}]}},"spec":{"ports":[{"port":8080}]}}}' >"$KUBE_SVCS"
lib=$repo/scripts/lib
# bootstrap-control-plane.sh: cluster-info, then the registries.
kubectl create configmap cluster-info -n kube-system --from-literal=cluster-name=home --from-literal=cluster-domain=home \
	--from-literal=control-plane-ip=100.101.0.1 --from-literal=repo-path=/root/MyNodeOne --dry-run=client -o yaml | kubectl apply -f - >/dev/null
bash "$lib/node-registry-manager.sh" init >/dev/null
bash "$lib/service-registry.sh" init >/dev/null
bash "$lib/multi-domain-registry.sh" init >/dev/null
# post-install routing: the demo app, public.
bash "$lib/service-registry.sh" register demo demo demo-apps demo 8080 true >/dev/null
# install-vps-edge-node.sh --name vps-1 --ip 100.101.1.11 --user sammy --public-ip 100.101.1.11 --domain example.test
SKIP_SSH_VALIDATION=true bash "$lib/node-registry-manager.sh" register vps_nodes 100.101.1.11 vps-1 sammy >/dev/null
bash "$lib/multi-domain-registry.sh" register-vps 100.101.1.11 100.101.1.11 lab unknown >/dev/null
bash "$lib/multi-domain-registry.sh" register-domain example.test "VPS edge node domain" >/dev/null
# setup-management-node.sh, run by the laptop over SSH on the control plane.
SKIP_SSH_VALIDATION=true bash "$lib/node-registry-manager.sh" register management_laptops 100.101.2.22 laptop-1 alice 8080 /home/alice/MyNodeOne >/dev/null
jq -S 'with_entries(.value = .value.data)' "$KUBE_STORE" >"$here/../configmaps.json"
echo "wrote $here/../configmaps.json"
