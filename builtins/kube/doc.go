// Package kube reads and writes the cluster's state through the Kubernetes API.
//
//	kube.configmap.get(name, namespace="kube-system") -> dict of data, or None when missing
//	kube.configmap.update(name, fn, namespace="kube-system", create=True) -> bool changed
//	kube.configmap.update_json(name, key, fn, namespace="kube-system", create=True, default=None) -> bool changed
//	kube.configmap.apply(name, data, namespace="kube-system", labels={}) -> bool changed
//	kube.configmap.delete(name, namespace="kube-system") -> bool changed
//	kube.lock(name, ttl="2m", wait="1m", namespace="kube-system") -> the lease, held for the rest of the run
//	kube.node.get(name) -> struct(name, ready, labels, addresses, unschedulable) or None
//	kube.node.wait_ready(name, timeout="5m") -> struct as get
//	kube.node.label(name, labels) -> bool changed   (a value None removes the label)
//	kube.node.drain(name, timeout="2m") -> bool changed  (cordon, then evict its pods; DaemonSet pods stay)
//	kube.node.delete(name) -> bool changed
//	kube.service.list(namespace="") -> list of struct(name, namespace, type, cluster_ip, ip, ports, labels, annotations); "" lists every namespace
//	kube.credential.issue(user, server, groups=[], lifetime="2160h", tls_dir="", serial_in_user=False) -> struct(user, groups, serial, not_before, not_after, renew_after, kubeconfig)
//	kube.binding.apply(name, user, role, annotations={}, labels={}) -> bool changed   (a ClusterRoleBinding of user to ClusterRole role)
//	kube.binding.get(name) -> struct(name, role, users, groups, annotations, labels) or None
//	kube.binding.list(labels={}) -> list of struct as get, by name
//	kube.binding.delete(name) -> bool changed
//
// kube.configmap groups the ConfigMap calls, kube.node the Node calls and
// kube.service the Service calls. Every ConfigMap change is a read-modify-write guarded by the resourceVersion that
// was read, retried on conflict (up to 20 times, with jittered backoff), so two
// concurrent runs never drop each other's changes. update calls fn(data) with
// a mutable copy of the data (a dict of strings; {} when the ConfigMap is
// missing) and writes what fn returns (or, when fn returns None, the dict it
// was given); fn may run more than once, so keep it free of other effects.
// Nothing is written when the result equals what was read. Keys fn leaves
// alone keep their bytes, and labels, annotations and binaryData are never
// touched. create=False makes a missing ConfigMap an error.
//
// update_json does the same for one key holding a JSON document (the
// MyNodeOne registries: registry.json, services.json, domains.json,
// routing.json): fn receives the whole decoded document (default, or {},
// when the key or ConfigMap is missing) so fields the script does not know
// survive, and a semantically different result is written back as JSON
// indented by two spaces with sorted keys and a trailing newline. Values
// MyNodeOne stored with its newlines turned into spaces parse as they are;
// raw control characters and stray backslashes its escaping left inside
// strings are read as the text they stood for. Invalid JSON is an error
// naming the ConfigMap and key.
//
// apply makes the data exactly data and sets labels, leaving every other field
// alone. Writes over the 1 MiB ConfigMap limit fail before anything is sent.
// With --dry-run the writes read live state and report a unified diff of every
// key they would change (JSON pretty-printed first), and write nothing.
//
// kube.lock takes a coordination.k8s.io Lease held as "<hostname>/<run id>",
// renews it every ttl/3 and releases it when the run ends. A lease held by
// someone else is waited for up to wait, then the call fails naming the
// holder; a lease not renewed within its ttl is taken over. It returns
// struct(name, namespace, holder, ttl, held, simulated); --dry-run takes no
// lease (held=False).
//
// A node struct's labels is a dict and addresses a list of struct(type,
// address). wait_ready also waits for a node that has not registered yet.
// drain evicts through the Eviction API (PodDisruptionBudgets are honoured,
// a refused eviction retried until timeout), unmanaged pods included, and
// waits for the pods to be gone — unless the node is not Ready, when no
// kubelet would confirm it. drain and delete of a missing node return False.
//
// service.list is a read (it runs in dry-run too), sorted by namespace and
// name; a Service's ip is its first load-balancer ingress IP ("" until one
// is assigned) and ports a list of struct(name, port, protocol).
//
// kube.credential issues credentials: issue signs a client certificate for user (its groups as
// organisations) with the cluster's client CA — client-ca.crt and client-ca.key in
// tls_dir, default $MNO_K3S_TLS_DIR, else /var/lib/rancher/k3s/server/tls — valid
// for lifetime (1h to 3 years; the CA's own expiry cuts it), with serial_in_user
// the first 12 hex digits of its serial appended to the user ("USER:SERIAL12", so
// each certificate is its own user). Its key is made in memory and exists only in
// kubeconfig, a secret: a standalone kubeconfig for server that trusts
// server-ca.crt from tls_dir; it is never written on the control plane. Times are
// RFC 3339 UTC strings; renew_after is when two thirds of the lifetime have
// passed. Issuing changes nothing, so it runs in dry-run too.
//
// kube.binding manages ClusterRoleBindings of one user to one ClusterRole:
// apply creates or updates one (a different role replaces it, deleting first)
// with exactly the labels and annotations given; the diff shows the role, the
// subjects, labels and annotations. A user the binding no longer names loses
// that access at the API server's next request.
//
// The client is built on first use: --kubeconfig, then $KUBECONFIG,
// ~/.kube/config, /etc/rancher/k3s/k3s.yaml, then the in-cluster service
// account; --context picks the context. A cluster that cannot be reached is a
// script error naming the server.
package kube

// For Go code (builtins that read the cluster's state, `mno watch`, the lab):
// the API client is kclient (builtins/kube/kclient), client-go's REST client
// with one small typed helper per resource, not client-go's generated
// clientset, whose package init cost every start of mno tens of
// milliseconds. Client(run) returns a run's client, connected on first use
// like the builtins; GetConfigMaps reads several ConfigMaps at once,
// journaled as configmap.get. To use a resource kclient lacks (a Secret, a
// CertificateSigningRequest, an Event), add its Kind and accessor to
// kclient/kinds.go — three lines — and call its Get/List/Create/Update/
// Patch/Delete/Watch, which have client-go's typed signatures.
