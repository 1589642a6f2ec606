// Package lab runs a local cluster for trying and testing playbooks: the real
// parts of lab/hosts, lab/kubeapi and lab/traefik put together as `mno lab`
// and `mno test` use them.
//
// A lab is nodes named vps-N, worker-N and laptop-N (real OpenSSH sshd in
// network and mount namespaces, see lab/hosts), a real kube-apiserver with
// etcd listening on the lab network's gateway, port 6443 (the address nodes
// see the control plane connect from, CP_ADDR), the four mno ConfigMaps
// created by the embedded init playbook, and a demo HTTP service published
// in service-registry. Nodes start like fresh machines: root is the only
// account and no key is authorised, so the bootstrap line applies to them as
// to real ones.
//
// What cannot run in a node is a shim (see hosts.SetShim): apt-get, ufw,
// systemctl and tailscale record their calls and succeed. Two shims do more:
//
//   - docker runs the compose project add-vps writes as a real Traefik
//     process in the node, on the static configuration in /etc/traefik, so
//     the routes sync pushes are served on the node's :80 and :443
//     (scripts/docker.sh, docker.go); while the Traefik build that Up
//     started in the background still runs, it waits for it (WaitForTool,
//     tools.go);
//   - on workers, `curl https://get.k3s.io` answers with an installer whose
//     k3s is `mno lab agent`: the kubelet stand-in, which reads the
//     /etc/rancher/k3s/config.yaml add-worker wrote, registers the Node with
//     the server and join token written there, from the node's network, and
//     reports it Ready (scripts/install-k3s.sh, agent.go).
//
// The helper binaries are built into a cache on first use (tools.go):
// kube-apiserver and etcd before anything starts, Traefik only for a lab
// with a VPS — now for an anonymous lab, in the background for a named one,
// which comes up meanwhile.
//
// A named lab (`mno lab up`) is detached: its processes outlive the command,
// and its state (PIDs, namespaces, links, mounts, paths) lives in
// Root/NAME, where Open finds it and Stop ends it from another process. An
// anonymous lab (`mno test`) lives in a directory its caller chooses and dies
// with its process.
//
// Playbooks read files of the control plane (the k3s join token, k3s.yaml,
// the client CA in k3s's server/tls); the lab writes stand-ins in its
// directory and Env points MNO_K3S_TOKEN_FILE, MNO_K3S_KUBECONFIG and
// MNO_K3S_TLS_DIR at them, which the stock roles read with local.env.
package lab
