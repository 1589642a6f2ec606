package kube

import (
	_ "embed"
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

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
		"get":         starlark.NewBuiltin("kube.configmap.get", configmapGet),
		"update":      starlark.NewBuiltin("kube.configmap.update", configmapUpdate),
		"update_json": starlark.NewBuiltin("kube.configmap.update_json", configmapUpdateJSON),
		"apply":       starlark.NewBuiltin("kube.configmap.apply", configmapApply),
		"delete":      starlark.NewBuiltin("kube.configmap.delete", configmapDelete),
	}}
	node := &starlarkstruct.Module{Name: "kube.node", Members: starlark.StringDict{
		"get":        starlark.NewBuiltin("kube.node.get", nodeGet),
		"wait_ready": starlark.NewBuiltin("kube.node.wait_ready", nodeWaitReady),
		"label":      starlark.NewBuiltin("kube.node.label", nodeLabel),
		"drain":      starlark.NewBuiltin("kube.node.drain", nodeDrain),
		"delete":     starlark.NewBuiltin("kube.node.delete", nodeDelete),
	}}
	service := &starlarkstruct.Module{Name: "kube.service", Members: starlark.StringDict{
		"list": starlark.NewBuiltin("kube.service.list", serviceList),
	}}
	binding := &starlarkstruct.Module{Name: "kube.binding", Members: starlark.StringDict{
		"apply":  starlark.NewBuiltin("kube.binding.apply", bindingApply),
		"get":    starlark.NewBuiltin("kube.binding.get", bindingGet),
		"list":   starlark.NewBuiltin("kube.binding.list", bindingList),
		"delete": starlark.NewBuiltin("kube.binding.delete", bindingDelete),
	}}
	credential := &starlarkstruct.Module{Name: "kube.credential", Members: starlark.StringDict{
		"issue": starlark.NewBuiltin("kube.credential.issue", credentialIssue),
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
			"lock":       starlark.NewBuiltin("kube.lock", lock),
		}}},
	}
}

// setup returns the run and its cluster client, building the client on the
// first call of the run.
func setup(thread *starlark.Thread, b *starlark.Builtin) (*runctx.Run, *cluster, error) {
	r := runctx.From(thread)
	c, err := clusterOf(r)
	if err != nil {
		return nil, nil, fail(b, err)
	}
	return r, c, nil
}

// fail prefixes err with the builtin's name, keeping it unwrappable. An
// error raised by the script's own fn passes through as it is, like
// sorted(key=…) does, so its backtrace shows the line inside fn.
func fail(b *starlark.Builtin, err error) error {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee
	}
	return fmt.Errorf("%s: %w", b.Name(), err)
}
