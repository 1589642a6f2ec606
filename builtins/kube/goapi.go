package kube

import (
	"context"
	"sync"

	"go.starlark.net/starlark"
	corev1 "k8s.io/api/core/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
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
	r, c, err := setup(thread, b)
	if err != nil {
		return nil, err
	}
	pos := starkit.CallerPos(thread)
	cms := make([]*corev1.ConfigMap, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			_, errs[i] = r.Journal.Do(r.Ctx, journal.Op{
				Target: Target, Kind: "configmap.get", Desc: ns + "/" + name, Pos: pos,
				Apply: func(ctx context.Context) (journal.Change, error) {
					var err error
					cms[i], err = getConfigMap(ctx, c, c.configMaps(ns), ns, name)
					if err == nil && cms[i] == nil {
						return journal.Change{Note: "missing"}, nil
					}
					return journal.Change{}, err
				},
			})
		})
	}
	wg.Wait()
	out := make(map[string]map[string]string, len(names))
	for i, name := range names {
		if errs[i] != nil {
			return nil, fail(b, errs[i])
		}
		if cms[i] != nil {
			out[name] = cms[i].Data
		}
	}
	return out, nil
}
