package kube

import (
	"context"
	"fmt"

	"go.starlark.net/starlark"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
	"github.com/mno-sh/mno/state"
)

// DefaultNamespace is where MyNodeOne keeps the cluster's state.
const DefaultNamespace = "kube-system"

func configmapGet(k *call) (starlark.Value, error) {
	var name string
	ns := DefaultNamespace
	if err := k.unpack("name", &name, "namespace?", &ns); err != nil {
		return nil, err
	}
	cm, err := k.readConfigMap(ns, name)
	if err != nil {
		return nil, err
	}
	if cm == nil {
		return starlark.None, nil
	}
	return dataDict(cm.Data), nil
}

// GetConfigMap reads the data of one ConfigMap through the run's client,
// as a journaled read (it runs in dry-run too) at pos; found is false when
// it does not exist. It is how other Go code (the state module, `mno state`)
// reads the cluster.
func GetConfigMap(r *runctx.Run, pos, ns, name string) (data map[string]string, found bool, err error) {
	cm, err := (&call{r: r, pos: pos}).readConfigMap(ns, name)
	if err != nil || cm == nil {
		return nil, false, err
	}
	if cm.Data == nil {
		return map[string]string{}, true, nil
	}
	return cm.Data, true, nil
}

// readConfigMap reads one ConfigMap as a journaled configmap.get; nil when
// it does not exist.
func (k *call) readConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	var cm *corev1.ConfigMap
	_, err := k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "configmap.get", Desc: ns + "/" + name,
			Apply: func(ctx context.Context) (journal.Change, error) {
				var err error
				cm, err = getConfigMap(ctx, c, c.configMaps(ns), ns, name)
				if err == nil && cm == nil {
					return journal.Change{Note: "missing"}, nil
				}
				return journal.Change{}, err
			},
		}
	})
	return cm, err
}

func configmapUpdate(k *call) (starlark.Value, error) {
	var (
		name   string
		fn     starlark.Callable
		ns     = DefaultNamespace
		create = true
	)
	if err := k.unpack("name", &name, "fn", &fn, "namespace?", &ns, "create?", &create); err != nil {
		return nil, err
	}
	mutate := func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		if cur == nil && !create {
			return nil, fmt.Errorf("ConfigMap %s/%s does not exist (create=False)", ns, name)
		}
		var old map[string]string
		if cur != nil {
			old = cur.Data
		}
		arg := dataDict(old)
		res, err := starlark.Call(k.thread, fn, starlark.Tuple{arg}, nil)
		if err != nil {
			return nil, err
		}
		if res == starlark.None {
			res = arg
		}
		data, err := starkit.StringDict("the value fn returned", res)
		if err != nil {
			return nil, err
		}
		if mapsEqual(old, data) {
			return nil, nil
		}
		return withData(cur, ns, name, data), nil
	}
	return k.writeConfigMap("configmap.update", ns+"/"+name, ns, name, mutate)
}

func configmapUpdateJSON(k *call) (starlark.Value, error) {
	var (
		name, key string
		fn        starlark.Callable
		ns                       = DefaultNamespace
		create                   = true
		def       starlark.Value = starlark.None
	)
	if err := k.unpack("name", &name, "key", &key, "fn", &fn, "namespace?", &ns, "create?", &create, "default?", &def); err != nil {
		return nil, err
	}
	if def == starlark.None {
		def = starlark.NewDict(0)
	}
	if _, err := encodeJSON(def); err != nil {
		return nil, k.errorf("default: %v", err)
	}
	ref := fmt.Sprintf("%s/%s[%s]", ns, name, key)
	warned := map[string]bool{}
	warnOnce := func(msg string) { // fn may run more than once (conflicts)
		if !warned[msg] {
			warned[msg] = true
			k.r.Journal.Warn(k.pos, Target, msg)
		}
	}
	mutate := func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		if cur == nil && !create {
			return nil, fmt.Errorf("ConfigMap %s/%s does not exist (create=False)", ns, name)
		}
		var doc starlark.Value
		var err error
		text, present := "", false
		if cur != nil {
			text, present = cur.Data[key]
		}
		var rep state.Repair
		switch {
		case present && state.Blank(text):
			// MyNodeOne leaves " " when jq had no input: no entries.
			warnOnce(fmt.Sprintf("%s: blank document read as empty (MyNodeOne leaves one when jq had no input)", ref))
			if doc, err = copyValue(def); err != nil {
				return nil, err
			}
		case present:
			if doc, rep, err = decodeJSON(text); err != nil {
				return nil, fmt.Errorf("ConfigMap %s/%s key %q does not hold valid JSON: %v", ns, name, key, err)
			}
			if rep.Changed() {
				warnOnce(fmt.Sprintf("%s: read leniently: %s; a change is written back as valid JSON", ref, rep))
			}
		default:
			if doc, err = copyValue(def); err != nil {
				return nil, err
			}
		}
		before, err := encodeJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s key %q: %v", ns, name, key, err)
		}
		res, err := starlark.Call(k.thread, fn, starlark.Tuple{doc}, nil)
		if err != nil {
			return nil, err
		}
		if res == starlark.None {
			res = doc
		}
		after, err := encodeJSON(res)
		if err != nil {
			return nil, fmt.Errorf("the value fn returned for %s: %v", ref, err)
		}
		if after == before {
			return nil, nil
		}
		data := make(map[string]string, len(dataOf(cur))+1)
		for k, v := range dataOf(cur) {
			data[k] = v
		}
		data[key] = after
		return withData(cur, ns, name, data), nil
	}
	return k.writeConfigMap("configmap.update_json", ref, ns, name, mutate)
}

func configmapApply(k *call) (starlark.Value, error) {
	var (
		name    string
		dataV   starlark.Value
		ns                     = DefaultNamespace
		labelsV starlark.Value = starlark.None
	)
	if err := k.unpack("name", &name, "data", &dataV, "namespace?", &ns, "labels?", &labelsV); err != nil {
		return nil, err
	}
	data, err := starkit.StringDict("data", dataV)
	if err != nil {
		return nil, k.errorf("%v", err)
	}
	if data == nil {
		data = map[string]string{}
	}
	labels, err := starkit.StringDict("labels", labelsV)
	if err != nil {
		return nil, k.errorf("%v", err)
	}
	mutate := func(cur *corev1.ConfigMap) (*corev1.ConfigMap, error) {
		if cur != nil && mapsEqual(cur.Data, data) && hasLabels(cur.Labels, labels) {
			return nil, nil
		}
		next := withData(cur, ns, name, copyMap(data))
		if len(labels) > 0 {
			if next.Labels == nil {
				next.Labels = map[string]string{}
			}
			for k, v := range labels {
				next.Labels[k] = v
			}
		}
		return next, nil
	}
	return k.writeConfigMap("configmap.apply", ns+"/"+name, ns, name, mutate)
}

func configmapDelete(k *call) (starlark.Value, error) {
	var name string
	ns := DefaultNamespace
	if err := k.unpack("name", &name, "namespace?", &ns); err != nil {
		return nil, err
	}
	ref := ns + "/" + name
	var cur *corev1.ConfigMap
	return k.changed(func(c *cluster) journal.Op {
		cms := c.configMaps(ns)
		return journal.Op{Kind: "configmap.delete", Desc: ref, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				var err error
				if cur, err = getConfigMap(ctx, c, cms, ns, name); err != nil || cur == nil {
					return journal.Change{Note: "absent"}, err
				}
				return journal.Change{Changed: true, Diff: diffConfigMaps(ref, cur, nil)}, nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				err := cms.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					// Gone already, or deleted and re-created by someone else
					// since we looked: not ours to delete.
					return journal.Change{Note: "already gone"}, nil
				}
				if err != nil {
					return journal.Change{}, c.apiError("delete", "configmap", ns, name, err)
				}
				return journal.Change{Changed: true, Diff: diffConfigMaps(ref, cur, nil)}, nil
			},
		}
	})
}

// writeConfigMap runs a read-modify-write of ConfigMap ns/name through the
// journal as kind desc: Check plans (reads and calls mutate), Apply commits
// the plan and re-plans on conflict.
func (k *call) writeConfigMap(kind, desc, ns, name string, mutate mutation) (starlark.Value, error) {
	return k.changed(func(c *cluster) journal.Op {
		w := newRMW(c, ns, name, mutate)
		return journal.Op{Kind: kind, Desc: desc, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				if err := w.plan(ctx); err != nil {
					return journal.Change{}, err
				}
				return w.change(), nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				err := w.commit(ctx)
				return w.change(), err
			},
		}
	})
}

func dataOf(cm *corev1.ConfigMap) map[string]string {
	if cm == nil {
		return nil
	}
	return cm.Data
}

// dataDict returns a fresh, mutable dict of data, keys sorted.
func dataDict(data map[string]string) *starlark.Dict {
	d := starlark.NewDict(len(data))
	for _, k := range unionKeys(data, nil) {
		d.SetKey(starlark.String(k), starlark.String(data[k]))
	}
	return d
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if w, ok := have[k]; !ok || w != v {
			return false
		}
	}
	return true
}
