package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// TestInstallKubernetesDryRun (issue 17): the manifests of `mno install kubernetes` — the
// namespace, ServiceAccount, the run records' namespace mno-history, mno's roles bound to it
// (a Role in kube-system, mno-history and default), the SSH identity Secret, the workspace
// ConfigMap and a two-replica Deployment of `mno watch sync` — pass the real API server's
// server-side dry run (schema, defaults, admission), and the file is private.
func TestInstallKubernetesDryRun(t *testing.T) {
	ctx := context.Background()
	srv := startKubeAPI(t)

	home, ws := t.TempDir(), t.TempDir()
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(sk, "mno")
	os.WriteFile(filepath.Join(home, "id_ed25519"), pem.EncodeToMemory(block), 0o600)
	os.WriteFile(filepath.Join(home, "known_hosts"), []byte("10.0.0.5 ssh-ed25519 AAAA\n"), 0o600)
	os.MkdirAll(filepath.Join(ws, "roles", "team"), 0o755)
	os.WriteFile(filepath.Join(ws, "roles", "team", "custom.star"), []byte("x = 1\n"), 0o644)
	out := filepath.Join(t.TempDir(), "mno.yaml")
	if err := writeManifests(out, home, ws, "mno", "localhost/mno:latest"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("manifest mode %o, want 0600 (it holds a private key)", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(out)
	dyn, err := dynamic.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]schema.GroupVersionResource{
		"Namespace":          {Version: "v1", Resource: "namespaces"},
		"ServiceAccount":     {Version: "v1", Resource: "serviceaccounts"},
		"Secret":             {Version: "v1", Resource: "secrets"},
		"ConfigMap":          {Version: "v1", Resource: "configmaps"},
		"ClusterRole":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
		"Role":               {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
		"ClusterRoleBinding": {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
		"RoleBinding":        {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
		"Deployment":         {Group: "apps", Version: "v1", Resource: "deployments"},
	}
	kinds := map[string]*unstructured.Unstructured{}
	roleNamespaces := map[string][]string{} // Role, RoleBinding, Namespace → their namespaces
	for _, doc := range strings.Split(string(data), "\n---\n")[1:] {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		u := &unstructured.Unstructured{Object: m}
		kinds[u.GetKind()] = u
		if k := u.GetKind(); k == "Role" || k == "RoleBinding" {
			roleNamespaces[k] = append(roleNamespaces[k], u.GetNamespace())
		}
		if u.GetKind() == "Namespace" {
			roleNamespaces["Namespace"] = append(roleNamespaces["Namespace"], u.GetName())
		}
		gvr, ok := resources[u.GetKind()]
		if !ok {
			t.Fatalf("unexpected kind %s", u.GetKind())
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if u.GetNamespace() != "" {
			ri = dyn.Resource(gvr).Namespace(u.GetNamespace())
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
			t.Errorf("server-side dry run of %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "Namespace" {
			// The namespaced objects' dry run needs it to exist.
			if _, err := dyn.Resource(gvr).Create(ctx, u, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(kinds) != len(resources) {
		t.Errorf("kinds %v", kinds)
	}
	// mno's Roles (kube-system, mno-history for the run records, default for the Events on
	// Nodes), each bound; mno-history is created before its Role.
	for _, k := range []string{"Role", "RoleBinding"} {
		if got := strings.Join(roleNamespaces[k], " "); got != "kube-system mno-history default" {
			t.Errorf("%s namespaces %q, want \"kube-system mno-history default\"", k, got)
		}
	}
	if got := strings.Join(roleNamespaces["Namespace"], " "); got != "mno mno-history" {
		t.Errorf("Namespaces %q, want \"mno mno-history\"", got)
	}
	dep := kinds["Deployment"].Object
	if r, _, _ := unstructured.NestedFieldNoCopy(dep, "spec", "replicas"); fmt.Sprint(r) != "2" {
		t.Errorf("replicas %d", r)
	}
	c, _, _ := unstructured.NestedSlice(dep, "spec", "template", "spec", "containers")
	if args := c[0].(map[string]any)["args"]; strings.Join(toStrings(args), " ") != "watch --listen :9090 sync" {
		t.Errorf("args %v", args)
	}
	if d, _, _ := unstructured.NestedString(kinds["ConfigMap"].Object, "data", "roles__team__custom.star"); d != "x = 1\n" {
		t.Errorf("workspace ConfigMap: %v", kinds["ConfigMap"].Object["data"])
	}
	if s, _, _ := unstructured.NestedSlice(kinds["ClusterRoleBinding"].Object, "subjects"); len(s) != 1 || s[0].(map[string]any)["kind"] != "ServiceAccount" {
		t.Errorf("binding subjects %v", s)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestInstallImageLayout (issue 17): `mno install image` writes a valid OCI image layout
// archive: index → manifest → config and layer, every blob at its sha256 with its size, the
// config's diff_id the uncompressed layer's digest, the image name where containerd's import
// reads it, and the layer holding this very binary as the entrypoint (plus its dynamic loader
// and libraries when it has any).
func TestInstallImageLayout(t *testing.T) {
	bin, _ := os.Executable()
	var buf bytes.Buffer
	if err := writeImage(&buf, bin, "localhost/mno:test"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %q", files["oci-layout"])
	}
	type desc struct {
		MediaType   string
		Digest      string
		Size        int64
		Annotations map[string]string
	}
	blob := func(d desc) []byte {
		t.Helper()
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok || digest(b) != d.Digest || int64(len(b)) != d.Size {
			t.Fatalf("blob %s: present %v, size %d want %d", d.Digest, ok, len(b), d.Size)
		}
		return b
	}
	var index struct{ Manifests []desc }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if a := index.Manifests[0].Annotations; a["io.containerd.image.name"] != "localhost/mno:test" || a["org.opencontainers.image.ref.name"] != "localhost/mno:test" {
		t.Errorf("image name annotations %v", a)
	}
	var manifest struct {
		Config desc
		Layers []desc
	}
	if err := json.Unmarshal(blob(index.Manifests[0]), &manifest); err != nil || len(manifest.Layers) != 1 || manifest.Layers[0].MediaType != ociLayerType {
		t.Fatalf("manifest: %v %+v", err, manifest)
	}
	var cfg struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(manifest.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(manifest.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != digest(raw) {
		t.Errorf("diff_ids %v, want %s", cfg.RootFS.DiffIDs, digest(raw))
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/usr/local/bin/mno" {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	layer := map[string][]byte{}
	lr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		layer[h.Name], _ = io.ReadAll(lr)
		if h.Name == "usr/local/bin/mno" && h.Mode&0o111 == 0 {
			t.Error("the binary is not executable")
		}
	}
	want, _ := os.ReadFile(bin)
	if !bytes.Equal(layer["usr/local/bin/mno"], want) {
		t.Error("the layer's /usr/local/bin/mno is not this binary")
	}
	libs, err := sharedObjects(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if _, ok := layer[strings.TrimPrefix(l, "/")]; !ok {
			t.Errorf("the layer lacks %s, which the binary needs", l)
		}
	}
}
