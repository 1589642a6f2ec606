package kube

import (
	_ "embed"
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Target is the journal target of every effect on the cluster.
const Target = "cluster"

// Module returns the kube module.
func Module() starkit.Module {
	configmap := &starlarkstruct.Module{Name: "kube.configmap", Members: starlark.StringDict{
		"get":         builtin("kube.configmap.get", configmapGet),
		"update":      builtin("kube.configmap.update", configmapUpdate),
		"update_json": builtin("kube.configmap.update_json", configmapUpdateJSON),
		"apply":       builtin("kube.configmap.apply", configmapApply),
		"delete":      builtin("kube.configmap.delete", configmapDelete),
	}}
	node := &starlarkstruct.Module{Name: "kube.node", Members: starlark.StringDict{
		"get":        builtin("kube.node.get", nodeGet),
		"wait_ready": builtin("kube.node.wait_ready", nodeWaitReady),
		"label":      builtin("kube.node.label", nodeLabel),
		"drain":      builtin("kube.node.drain", nodeDrain),
		"delete":     builtin("kube.node.delete", nodeDelete),
	}}
	service := &starlarkstruct.Module{Name: "kube.service", Members: starlark.StringDict{
		"list": builtin("kube.service.list", serviceList),
	}}
	binding := &starlarkstruct.Module{Name: "kube.binding", Members: starlark.StringDict{
		"apply":  builtin("kube.binding.apply", bindingApply),
		"get":    builtin("kube.binding.get", bindingGet),
		"list":   builtin("kube.binding.list", bindingList),
		"delete": builtin("kube.binding.delete", bindingDelete),
	}}
	credential := &starlarkstruct.Module{Name: "kube.credential", Members: starlark.StringDict{
		"issue": builtin("kube.credential.issue", credentialIssue),
	}}
	return starkit.Module{
		Name: "kube",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"kube": &starlarkstruct.Module{Name: "kube", Members: starlark.StringDict{
			"configmap":  configmap,
			"node":       node,
			"binding":    binding,
			"service":    service,
			"credential": credential,
			"lock":       builtin("kube.lock", lock),
		}}},
	}
}

// call is one call of a kube builtin (or of a Go entry point on a run's
// behalf): what it was called with, its run, and the Starlark line the
// journal names. Every builtin starts the same way, and the steps live
// here: unpack the arguments, connect to the cluster, pass the effect
// through the journal, name the builtin in the error.
type call struct {
	thread *starlark.Thread  // nil for a Go caller without one
	b      *starlark.Builtin // nil: errors are not prefixed
	args   starlark.Tuple
	kwargs []starlark.Tuple
	r      *runctx.Run
	pos    string // the calling Starlark line
}

// builtin makes the Starlark builtin name of fn.
func builtin(name string, fn func(k *call) (starlark.Value, error)) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return fn(newCall(thread, b, args, kwargs))
	})
}

func newCall(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) *call {
	return &call{thread: thread, b: b, args: args, kwargs: kwargs, r: runctx.From(thread), pos: starkit.CallerPos(thread)}
}

// unpack unpacks the call's arguments into pairs, as starlark.UnpackArgs.
func (k *call) unpack(pairs ...any) error {
	return starlark.UnpackArgs(k.b.Name(), k.args, k.kwargs, pairs...)
}

// errorf is an error of the caller's, named after the builtin.
func (k *call) errorf(format string, args ...any) error {
	return starkit.Errorf(k.b.Name(), format, args...)
}

// do connects to the cluster (once per run, so a playbook that never calls
// kube needs none; a connection that fails is the error, with nothing
// journaled) and passes the op that build makes for it through the journal.
func (k *call) do(build func(c *cluster) journal.Op) (journal.Outcome, error) {
	c, err := k.cluster()
	if err != nil {
		return journal.Outcome{}, err
	}
	return k.journal(build(c))
}

// cluster is the run's client, connecting on first use.
func (k *call) cluster() (*cluster, error) {
	c, err := clusterOf(k.r)
	return c, k.fail(err)
}

// changed is do for a write: the builtin returns whether it changed the
// cluster (or would have, in dry-run).
func (k *call) changed(build func(c *cluster) journal.Op) (starlark.Value, error) {
	out, err := k.do(build)
	if err != nil {
		return nil, err
	}
	return starlark.Bool(out.Changed), nil
}

// journal passes op through the run's journal at the calling line, on
// Target unless op names another, its error named after the builtin.
func (k *call) journal(op journal.Op) (journal.Outcome, error) {
	if op.Target == "" {
		op.Target = Target
	}
	op.Pos = k.pos
	out, err := k.r.Journal.Do(k.r.Ctx, op)
	return out, k.fail(err)
}

// fail prefixes err with the builtin's name, keeping it unwrappable; nil
// stays nil, and a Go caller's error (no builtin) is its own. An error
// raised by the script's own fn passes through as it is, like sorted(key=…)
// does, so its backtrace shows the line inside fn.
func (k *call) fail(err error) error {
	var ee *starlark.EvalError
	switch {
	case err == nil || k.b == nil:
		return err
	case errors.As(err, &ee):
		return ee
	}
	return fmt.Errorf("%s: %w", k.b.Name(), err)
}
