package kubeconfig

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:1001"}
- name: two
  cluster: {server: "https://127.0.0.1:1002"}
users:
- name: u
  user: {token: t}
contexts:
- name: first
  context: {cluster: one, user: u}
- name: second
  context: {cluster: two, user: u}
current-context: first
`

// TestFind: the places are tried in kubectl's order and then k3s's; a file
// that exists but cannot be used is an error, never a fall-through; nothing
// found lists every place tried.
func TestFind(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", twoContexts)
	broken := write("broken.yaml", "clusters: [unclosed\n")
	noCurrent := write("nocurrent.yaml", strings.Replace(twoContexts, "current-context: first", "", 1))
	homeWith := filepath.Join(dir, "home-with")
	homeConfig := write("home-with/.kube/config", twoContexts)
	homeBroken := filepath.Join(dir, "home-broken")
	write("home-broken/.kube/config", "not: [yaml")
	homeEmpty := filepath.Join(dir, "home-empty")

	// The k3s kubeconfig is good.yaml unless a case makes stat fail on it
	// (root can read any file, so a permission error has to be simulated).
	const k3s = "/etc/rancher/k3s/k3s.yaml"
	stat := func(k3sErr error) func(string) (fs.FileInfo, error) {
		return func(p string) (fs.FileInfo, error) {
			if p == k3s {
				return nil, &fs.PathError{Op: "stat", Path: k3s, Err: k3sErr}
			}
			return os.Stat(p)
		}
	}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name       string
		cfg        Options
		k3s        error
		wantServer string
		wantSource string
		wantErr    []string
	}{
		{name: "explicit", cfg: Options{Kubeconfig: good}, wantServer: "https://127.0.0.1:1001", wantSource: good},
		{name: "explicit context", cfg: Options{Kubeconfig: good, Context: "second"}, wantServer: "https://127.0.0.1:1002"},
		{name: "explicit missing, no fallback", cfg: Options{Kubeconfig: filepath.Join(dir, "missing"), Getenv: env("HOME", homeWith)},
			wantErr: []string{"--kubeconfig " + filepath.Join(dir, "missing") + ": ", "no such file"}},
		{name: "explicit broken", cfg: Options{Kubeconfig: broken}, wantErr: []string{"--kubeconfig " + broken + ": "}},
		{name: "unknown context", cfg: Options{Kubeconfig: good, Context: "third"},
			wantErr: []string{`context "third" not found (have: first, second)`}},
		{name: "no current context", cfg: Options{Kubeconfig: noCurrent}, wantErr: []string{"no current-context set (pass --context)"}},
		{name: "KUBECONFIG list skips missing files",
			cfg:        Options{Getenv: env("KUBECONFIG", filepath.Join(dir, "nope")+":"+good, "HOME", homeEmpty)},
			wantServer: "https://127.0.0.1:1001", wantSource: "$KUBECONFIG " + filepath.Join(dir, "nope") + ":" + good},
		{name: "KUBECONFIG all missing falls back to ~/.kube/config",
			cfg:        Options{Getenv: env("KUBECONFIG", filepath.Join(dir, "nope"), "HOME", homeWith)},
			wantServer: "https://127.0.0.1:1001", wantSource: homeConfig},
		{name: "broken ~/.kube/config is an error, not a fall-through to k3s",
			cfg: Options{Getenv: env("HOME", homeBroken)}, k3s: nil,
			wantErr: []string{filepath.Join(homeBroken, ".kube", "config") + ": "}},
		{name: "k3s default", cfg: Options{Getenv: env("HOME", homeEmpty)}, k3s: nil,
			wantServer: "https://127.0.0.1:1001", wantSource: good},
		{name: "k3s unreadable", cfg: Options{Getenv: env("HOME", homeEmpty)}, k3s: fs.ErrPermission,
			wantErr: []string{k3s + ": ", "permission denied", "readable by root only", "(after trying: " + filepath.Join(homeEmpty, ".kube", "config") + ": not found)"}},
		{name: "nothing anywhere", cfg: Options{Getenv: env("KUBECONFIG", "/nonexistent/a", "HOME", homeEmpty)}, k3s: fs.ErrNotExist,
			wantErr: []string{
				"no Kubernetes configuration found; tried:\n",
				"  $KUBECONFIG (/nonexistent/a: not found)\n",
				"  " + filepath.Join(homeEmpty, ".kube", "config") + ": not found\n",
				"  " + k3s + ": not found\n",
				"  in-cluster service account: not running in a pod ($KUBERNETES_SERVICE_HOST is unset)\n",
				"set --kubeconfig or $KUBECONFIG"}},
		{name: "in-cluster without a service account", cfg: Options{Getenv: env("HOME", homeEmpty, "KUBERNETES_SERVICE_HOST", "10.0.0.1")}, k3s: fs.ErrNotExist,
			wantErr: []string{"in-cluster service account: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k3sPath := good
			if tt.k3s != nil {
				k3sPath = k3s
			}
			loc, err := find(tt.cfg, k3sPath, stat(tt.k3s))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("found %s in %s, want an error", loc.Config.Host, loc.Source)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error does not contain %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if loc.Config.Host != tt.wantServer {
				t.Errorf("server %s, want %s", loc.Config.Host, tt.wantServer)
			}
			if tt.wantSource != "" && loc.Source != tt.wantSource {
				t.Errorf("source %q, want %q", loc.Source, tt.wantSource)
			}
		})
	}
}
