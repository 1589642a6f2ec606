package e2e

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// conflictProxy starts a TLS reverse proxy to the API server and returns a
// kubeconfig for it. The first PUT of ConfigMap kube-system/name through it
// runs between() first — a write straight to the API server — so that PUT
// carries a stale resourceVersion, the API server refuses it with a
// conflict, and mno reads again and runs its update function again.
func (e *env) conflictProxy(name string, between func()) string {
	e.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	if err != nil {
		e.t.Fatal(err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		e.t.Fatal(err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	var once sync.Once
	put := "/api/v1/namespaces/kube-system/configmaps/" + name
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization") // the proxy's own client certificate authenticates
		if r.Method == http.MethodPut && r.URL.Path == put {
			once.Do(between)
		}
		proxy.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kubeconfig := filepath.Join(e.t.TempDir(), "kubeconfig")
	writeFile(e.t, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxy
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: proxy
  user:
    token: proxy
contexts:
- name: proxy
  context: {cluster: proxy, user: proxy}
current-context: proxy
`, srv.URL, base64.StdEncoding.EncodeToString(ca)))
	return kubeconfig
}

// editRegistry rewrites registry.json straight through the API server.
func (e *env) editRegistry(edit func(doc map[string]any)) {
	cms := e.client.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(e.ctx, "sync-controller-registry", metav1.GetOptions{})
	if err != nil {
		e.t.Error(err)
		return
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cm.Data["registry.json"]), &doc); err != nil {
		e.t.Error(err)
		return
	}
	edit(doc)
	b, _ := json.Marshal(doc)
	cm.Data["registry.json"] = string(b)
	if _, err := cms.Update(e.ctx, cm, metav1.UpdateOptions{}); err != nil {
		e.t.Error(err)
	}
}

// TestUnregisterConflict (issue 18): registration.unregister's update
// function runs again after a conflict, on what the other writer left, and
// the removal it reports (the VPS addresses dropped from domain-registry) is
// what it read first — neither lost nor taken from a stale or a later read.
// The other writer, between unregister's read and its write:
//   - changes another node: that change is kept, vps-1 goes, and only vps-1's
//     address leaves domains.json and routing.json;
//   - removed vps-1 already (a concurrent remove-node's first write): vps-1's
//     address still leaves domain-registry (an update function that kept its
//     removals in an outer list, cleared on each call, reported none);
//   - registers vps-1 again at another address: that registration is kept,
//     with its address in domain-registry, and the one read is removed.
func TestUnregisterConflict(t *testing.T) {
	const ip1, ip2, ip3 = "100.64.7.1", "100.64.7.2", "100.64.7.3"
	vps := func(name, ip string) map[string]any {
		return map[string]any{"name": name, "ip": ip, "ssh_user": "mno", "ssh_port": 22, "status": "active", "domain": "a.org"}
	}
	for _, tc := range []struct {
		name      string
		between   func(doc map[string]any)
		wantVPS   []string // name@ip of vps_nodes after
		wantAddrs []string // domains.json vps_nodes and routing.json blog after
	}{
		{"other node changed", func(doc map[string]any) {
			doc["vps_nodes"].([]any)[1].(map[string]any)["status"] = "failed"
		}, []string{"vps-2@" + ip2}, []string{ip2}},
		{"already removed", func(doc map[string]any) {
			doc["vps_nodes"] = doc["vps_nodes"].([]any)[1:]
		}, []string{"vps-2@" + ip2}, []string{ip2}},
		{"registered again elsewhere", func(doc map[string]any) {
			doc["vps_nodes"] = append(doc["vps_nodes"].([]any), vps("vps-1", ip3))
		}, []string{"vps-2@" + ip2, "vps-1@" + ip3}, []string{ip2, ip3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.initCluster("10.0.0.1")
			reg, _ := json.Marshal(map[string]any{"vps_nodes": []any{vps("vps-1", ip1), vps("vps-2", ip2)}, "worker_nodes": []any{}, "management_laptops": []any{}})
			e.setConfigMap("sync-controller-registry", map[string]string{"registry.json": string(reg)})
			addrs := []string{ip1, ip2, ip3}
			if tc.name != "registered again elsewhere" {
				addrs = addrs[:2]
			}
			var vpsNodes []any
			for _, a := range addrs {
				vpsNodes = append(vpsNodes, map[string]any{"tailscale_ip": a, "public_ip": "", "status": "active"})
			}
			dom, _ := json.Marshal(map[string]any{"domains": map[string]any{"a.org": map[string]any{}}, "vps_nodes": vpsNodes})
			routing, _ := json.Marshal(map[string]any{"blog": map[string]any{"domains": []string{"a.org"}, "vps_nodes": addrs}})
			e.setConfigMap("domain-registry", map[string]string{"domains.json": string(dom), "routing.json": string(routing)})

			playbook := filepath.Join(t.TempDir(), "unregister.star")
			if err := os.WriteFile(playbook, []byte(`load("//roles/registration.star", "registration")

def main(ctx, name):
    log("unregister %s: changed=%s" % (name, registration.unregister(name)))
`), 0o644); err != nil {
				t.Fatal(err)
			}
			direct := e.kubeconfig
			e.kubeconfig = e.conflictProxy("sync-controller-registry", func() { e.editRegistry(tc.between) })
			r := e.run(playbook, "name=vps-1")
			e.kubeconfig = direct
			if r.exit != 0 || !strings.Contains(r.stderr, "unregister vps-1: changed=True") {
				t.Fatalf("exit %d:\n%s", r.exit, r.stderr)
			}
			if !strings.Contains(r.stderr, "1 conflicts retried") {
				t.Fatalf("the registry write met no conflict, so the update function ran once:\n%s", r.stderr)
			}

			var got []string
			for _, x := range e.registry()["vps_nodes"].([]any) {
				m := x.(map[string]any)
				got = append(got, fmt.Sprint(m["name"], "@", m["ip"]))
			}
			if !slices.Equal(got, tc.wantVPS) {
				t.Errorf("vps_nodes = %v, want %v", got, tc.wantVPS)
			}
			if tc.name == "other node changed" && e.entry("vps_nodes", "vps-2")["status"] != "failed" {
				t.Error("the other writer's change to vps-2 was lost")
			}
			d := e.configMap("domain-registry")
			var domains struct {
				VPS []struct {
					IP string `json:"tailscale_ip"`
				} `json:"vps_nodes"`
			}
			var routes map[string]struct {
				VPS []string `json:"vps_nodes"`
			}
			if err := json.Unmarshal([]byte(d["domains.json"]), &domains); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(d["routing.json"]), &routes); err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, v := range domains.VPS {
				left = append(left, v.IP)
			}
			if !slices.Equal(left, tc.wantAddrs) {
				t.Errorf("domains.json vps_nodes = %v, want %v", left, tc.wantAddrs)
			}
			if !slices.Equal(routes["blog"].VPS, tc.wantAddrs) {
				t.Errorf("routing.json blog vps_nodes = %v, want %v", routes["blog"].VPS, tc.wantAddrs)
			}
		})
	}
}
