package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/starkit"
)

// pollInterval is how often wait_ready and drain look again.
const pollInterval = 500 * time.Millisecond

func nodeGet(k *call) (starlark.Value, error) {
	var name string
	if err := k.unpack("name", &name); err != nil {
		return nil, err
	}
	var n *corev1.Node
	_, err := k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "node.get", Desc: "node/" + name,
			Apply: func(ctx context.Context) (journal.Change, error) {
				var err error
				if n, err = c.getNode(ctx, name); err == nil && n == nil {
					return journal.Change{Note: "missing"}, nil
				}
				return journal.Change{}, err
			},
		}
	})
	if err != nil {
		return nil, err
	}
	if n == nil {
		return starlark.None, nil
	}
	return nodeValue(n), nil
}

func nodeWaitReady(k *call) (starlark.Value, error) {
	var name string
	timeout := starkit.Duration{D: 5 * time.Minute}
	if err := k.unpack("name", &name, "timeout?", &timeout); err != nil {
		return nil, err
	}
	var n *corev1.Node
	_, err := k.do(func(c *cluster) journal.Op {
		return journal.Op{Kind: "node.wait_ready", Desc: "node/" + name,
			Apply: func(ctx context.Context) (journal.Change, error) {
				start := time.Now()
				deadline := start.Add(timeout.D)
				state := "not registered yet"
				for {
					got, err := c.getNode(ctx, name)
					switch {
					case err == nil && got != nil:
						n = got
						if ready, why := readiness(got); ready {
							return journal.Change{Note: "ready after " + time.Since(start).Round(100*time.Millisecond).String()}, nil
						} else {
							state = why
						}
					case err == nil:
						state = "not registered yet"
					case journal.IsUnreachable(err):
						state = err.Error() // the API server may come back before the deadline
					default:
						return journal.Change{}, err
					}
					if !time.Now().Before(deadline) {
						return journal.Change{}, fmt.Errorf("node %q is not Ready after %s: %s", name, timeout.D, state)
					}
					if err := sleepCtx(ctx, min(pollInterval, time.Until(deadline))); err != nil {
						return journal.Change{}, err
					}
				}
			},
		}
	})
	if err != nil {
		return nil, err
	}
	return nodeValue(n), nil
}

func nodeLabel(k *call) (starlark.Value, error) {
	var name string
	var labelsV *starlark.Dict
	if err := k.unpack("name", &name, "labels", &labelsV); err != nil {
		return nil, err
	}
	want := map[string]*string{}
	for _, kv := range labelsV.Items() {
		key, ok := starlark.AsString(kv[0])
		if !ok {
			return nil, k.errorf("label keys must be strings, got %s", kv[0].Type())
		}
		switch v := kv[1].(type) {
		case starlark.NoneType:
			want[key] = nil
		case starlark.String:
			s := string(v)
			want[key] = &s
		default:
			return nil, k.errorf("label %q: got %s, want string (or None to remove it)", key, kv[1].Type())
		}
	}
	desc := "node/" + name
	var patch map[string]*string
	var diff string
	return k.changed(func(c *cluster) journal.Op {
		return journal.Op{Kind: "node.label", Desc: desc, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				n, err := c.getNode(ctx, name)
				if err != nil {
					return journal.Change{}, err
				}
				if n == nil {
					return journal.Change{}, fmt.Errorf("node %q does not exist", name)
				}
				patch = map[string]*string{}
				next := copyMap(n.Labels)
				for key, v := range want {
					cur, has := n.Labels[key]
					switch {
					case v == nil && has:
						patch[key] = nil
						delete(next, key)
					case v != nil && (!has || cur != *v):
						patch[key] = v
						next[key] = *v
					}
				}
				diff = journal.Diff(desc+" labels", labelLines(n.Labels, next, n.Labels), labelLines(n.Labels, next, next))
				return journal.Change{Changed: len(patch) > 0, Diff: diff}, nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				// A merge patch of only the changed keys: labels others set
				// concurrently are kept.
				body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": patch}})
				_, err := c.api.Nodes().Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: fieldManager})
				if err != nil {
					return journal.Change{}, c.apiError("patch", "node", "", name, err)
				}
				return journal.Change{Changed: true, Diff: diff}, nil
			},
		}
	})
}

func nodeDelete(k *call) (starlark.Value, error) {
	var name string
	if err := k.unpack("name", &name); err != nil {
		return nil, err
	}
	var cur *corev1.Node
	return k.changed(func(c *cluster) journal.Op {
		return journal.Op{Kind: "node.delete", Desc: "node/" + name, Write: true,
			Check: func(ctx context.Context) (journal.Change, error) {
				var err error
				if cur, err = c.getNode(ctx, name); err != nil || cur == nil {
					return journal.Change{Note: "absent"}, err
				}
				return journal.Change{Changed: true}, nil
			},
			Apply: func(ctx context.Context) (journal.Change, error) {
				err := c.api.Nodes().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID}})
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					return journal.Change{Note: "already gone"}, nil
				}
				if err != nil {
					return journal.Change{}, c.apiError("delete", "node", "", name, err)
				}
				return journal.Change{Changed: true}, nil
			},
		}
	})
}

func (c *cluster) getNode(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.api.Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.apiError("get", "node", "", name, err)
	}
	return n, nil
}

// readiness reports the node's Ready condition and, when not ready, why.
func readiness(n *corev1.Node) (bool, string) {
	for _, cond := range n.Status.Conditions {
		if cond.Type != corev1.NodeReady {
			continue
		}
		if cond.Status == corev1.ConditionTrue {
			return true, ""
		}
		why := "Ready=" + string(cond.Status)
		if cond.Reason != "" || cond.Message != "" {
			why += " (" + strings.TrimSpace(cond.Reason+": "+cond.Message) + ")"
		}
		return false, why
	}
	return false, "no Ready condition yet (kubelet has not reported)"
}

func nodeValue(n *corev1.Node) starlark.Value {
	ready, _ := readiness(n)
	addrs := make([]starlark.Value, 0, len(n.Status.Addresses))
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, starlarkstruct.FromStringDict(starlark.String("address"), starlark.StringDict{
			"type":    starlark.String(a.Type),
			"address": starlark.String(a.Address),
		}))
	}
	return starlarkstruct.FromStringDict(starlark.String("node"), starlark.StringDict{
		"name":          starlark.String(n.Name),
		"ready":         starlark.Bool(ready),
		"labels":        dataDict(n.Labels),
		"addresses":     starlark.NewList(addrs),
		"unschedulable": starlark.Bool(n.Spec.Unschedulable),
	})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
