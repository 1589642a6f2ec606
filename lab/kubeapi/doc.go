// Package kubeapi starts a real Kubernetes API server (kube-apiserver backed by etcd) on
// loopback, for tests and for `mno lab`.
//
// There is no controller-manager, scheduler or kubelet: objects are stored and served, RBAC is
// enforced and watches work, but nothing reconciles them (a deleted namespace stays
// Terminating, a Deployment never gets Pods). The one exception is done once at start: the
// stock aggregated ClusterRoles (admin, edit, view) get their rules, as kube-controller-manager
// would give them, so that binding a user to "view" means what it means on k3s. The CA's files
// are also kept under k3s's names in [Server.TLSDir], where mno issues client certificates.
//
// The two binaries are built from the Go module proxy by [Build] into a cache outside the
// repository ([CacheDir]); `go run ./lab/cmd/buildtools` (`make tools`) does that once, so
// [Start] never compiles; with cached binaries it is ready in about 4–7 seconds on two cores.
package kubeapi
