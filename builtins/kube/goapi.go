package kube

import (
	"sync"

	"go.starlark.net/starlark"
	corev1 "k8s.io/api/core/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine/runctx"
)

// Go entry points for other builtins (a state model reading the registries,
// say) and for Go commands: the run's client, and ConfigMap reads journaled
// like kube.configmap.get.

// Client returns the run's API client, connecting on first use exactly as
// the kube builtins do (same discovery, timeouts and error messages).
func Client(r *runctx.Run) (*kclient.Client, error) {
	c, err := clusterOf(r)
	if err != nil {
		return nil, err
	}
	return c.api, nil
}

// GetConfigMaps reads the named ConfigMaps of namespace ns all at once (the
// requests in flight together), each recorded in the journal as a
// configmap.get at the Starlark position calling the builtin. It returns
// each ConfigMap's data; a missing ConfigMap is absent from the map. The
// first error (in names' order) is returned, prefixed with the builtin's name.
func GetConfigMaps(thread *starlark.Thread, b *starlark.Builtin, ns string, names ...string) (map[string]map[string]string, error) {
	k := newCall(thread, b, nil, nil)
	if _, err := k.cluster(); err != nil {
		return nil, err // connected first: a missing cluster is one error, names or none
	}
	cms := make([]*corev1.ConfigMap, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { cms[i], errs[i] = k.readConfigMap(ns, name) })
	}
	wg.Wait()
	out := make(map[string]map[string]string, len(names))
	for i, name := range names {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if cms[i] != nil {
			out[name] = cms[i].Data
		}
	}
	return out, nil
}
