package kubeapi

import (
	"slices"
	"testing"
)

const kubeGoModSample = `// This is a generated file. Do not edit directly.
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	github.com/blang/semver/v4 v4.0.0
	go.etcd.io/etcd/client/v3 v3.7.0
	k8s.io/api v0.0.0
	k8s.io/apiserver v0.0.0 // staged
	k8s.io/klog/v2 v2.140.0
)

require go.etcd.io/etcd/server/v3 v3.7.0 // indirect

require (
	k8s.io/cri-api v0.0.0
	k8s.io/orphan v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apiserver => ./staging/src/k8s.io/apiserver
	k8s.io/cri-api v0.0.0 => ./staging/src/k8s.io/cri-api
	k8s.io/sample-controller => ./staging/src/k8s.io/sample-controller
	k8s.io/orphan => example.com/fork v1.0.0
)

replace k8s.io/klog/v2 => ../klog
`

func TestParseGoMod(t *testing.T) {
	m, err := parseGoMod([]byte(kubeGoModSample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"block require", m.require["k8s.io/api"], "v0.0.0"},
		{"require with comment", m.require["k8s.io/apiserver"], "v0.0.0"},
		{"single-line require", m.require["go.etcd.io/etcd/server/v3"], "v3.7.0"},
		{"replace with version on the left", m.replace["k8s.io/cri-api"], "./staging/src/k8s.io/cri-api"},
		{"replace with version on the right", m.replace["k8s.io/orphan"], "example.com/fork"},
		{"single-line replace", m.replace["k8s.io/klog/v2"], "../klog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}

	// sample-controller is replaced but not required; orphan is required at v0.0.0 but not
	// replaced with a staging directory; klog is not at v0.0.0.
	want := []string{"k8s.io/api", "k8s.io/apiserver", "k8s.io/cri-api"}
	if got := m.stagingModules(); !slices.Equal(got, want) {
		t.Errorf("stagingModules() = %q, want %q", got, want)
	}
}

func TestParseGoModErrors(t *testing.T) {
	for _, src := range []string{
		"require (\n\tk8s.io/api\n)\n",
		"replace k8s.io/api ./staging\n",
		"replace k8s.io/api =>\n",
	} {
		if _, err := parseGoMod([]byte(src)); err == nil {
			t.Errorf("parseGoMod(%q) succeeded, want an error", src)
		}
	}
}
