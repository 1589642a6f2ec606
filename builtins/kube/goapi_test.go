package kube_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/enginetest"
)

// TestGetConfigMaps: the Go entry point reads several ConfigMaps in one
// call, missing ones absent, each read journaled as a configmap.get at the
// calling line; a forbidden or failing read is the call's error.
func TestGetConfigMaps(t *testing.T) {
	e := newEnv(t)
	e.createCM(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"k": "1"}})
	e.createCM(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Data: map[string]string{"k": "2"}})
	var got map[string]map[string]string
	getMany := starlark.NewBuiltin("test.get_many", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var names *starlark.List
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "names", &names); err != nil {
			return nil, err
		}
		var ns []string
		for i := range names.Len() {
			ns = append(ns, string(names.Index(i).(starlark.String)))
		}
		var err error
		got, err = kube.GetConfigMaps(thread, b, e.ns, ns...)
		return starlark.None, err
	})
	o := e.options()
	o.Globals["get_many"] = getMany
	path := filepath.Join(t.TempDir(), "t.star")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := enginetest.Run(t, path, "get_many(['a', 'missing', 'b'])\n", false, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"]["k"] != "1" || got["b"]["k"] != "2" {
		t.Errorf("got %v", got)
	}
	if _, ok := got["missing"]; ok {
		t.Error("a missing ConfigMap is in the result")
	}
	var stderr bytes.Buffer
	s, _, err := engine.NewSession(context.Background(), engine.Options{Playbook: path, Verbose: true, Stderr: &stderr,
		Embedded: mno.Files, Root: filepath.Dir(path), Config: o.Config, Globals: o.Globals})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Exec(s.Loader.Virtual(path, []byte("get_many(['a', 'missing', 'b'])\n")))
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{e.ns + "/a", e.ns + "/missing", e.ns + "/b"} {
		if !strings.Contains(stderr.String(), "configmap.get "+want) {
			t.Errorf("journal lacks configmap.get %s:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "t.star:1:") {
		t.Errorf("journal does not name the calling line:\n%s", stderr.String())
	}
	o.Config.Kubeconfig = filepath.Join(t.TempDir(), "missing.kubeconfig")
	_, err = enginetest.Run(t, path, "get_many(['a'])\n", false, o)
	if err == nil || !strings.Contains(err.Error(), "test.get_many: --kubeconfig "+o.Config.Kubeconfig) {
		t.Errorf("no cluster: %v, want an error prefixed with the builtin's name, naming the kubeconfig", err)
	}
}
