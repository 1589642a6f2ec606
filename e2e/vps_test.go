package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mno-sh/mno/lab/hosts"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

var vpsFiles = []string{
	"/etc/traefik/traefik.yml",
	"/etc/traefik/dynamic/mno-routes.yml",
	"/opt/mno/traefik/compose.yaml",
	"/var/lib/mno/state/firewall",
	"/var/lib/mno/state/tailscale-accept-routes",
	"/etc/hosts",
}

// TestAddVPS: add-vps as a non-root sudo user sets up Traefik with the exact
// commands expected, registers the VPS with its pinned host key, and a second
// run changes nothing at all.
func TestAddVPS(t *testing.T) {
	e := newEnv(t, "vps-1")
	vps := e.host("vps-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{
		"blog":    map[string]any{"subdomain": "blog", "ip": "100.122.68.9", "port": 80, "public": true},
		"private": map[string]any{"subdomain": "grafana", "ip": "100.122.68.3", "port": 80, "public": false},
	})
	// Docker is not installed yet: `docker compose version` fails until apt-get ran.
	vps.SetShim("docker compose version", hosts.ShimResponse{Code: 1})

	params := []string{"name=vps-1", "address=" + vps.Addr, "user=mno", "domain=example.test",
		"email=ops@example.test", "public_ip=203.0.113.10", "location=lab", "host_key=" + vps.HostKey}
	r := e.mustRun("add-vps", params...)
	if r.changed() == 0 {
		t.Fatal("first run reported no change")
	}

	calls := argvs(t, vps)
	for _, want := range []string{
		"apt-get update -qq",
		"apt-get install -y -qq docker.io docker-compose-v2",
		"ufw allow 22/tcp", "ufw allow 80/tcp", "ufw allow 443/tcp", "ufw allow in on tailscale0", "ufw --force enable",
		"tailscale set --accept-routes=true",
		"docker ps -q --filter name=^traefik$",
		"docker compose -f /opt/mno/traefik/compose.yaml up -d",
	} {
		if !contains(calls, want) {
			t.Errorf("no command %q; commands were:\n%s", want, strings.Join(calls, "\n"))
		}
	}
	// ufw opens SSH before it is enabled.
	if idx(calls, "ufw allow 22/tcp") > idx(calls, "ufw --force enable") {
		t.Error("ufw enabled before SSH was allowed")
	}

	var static map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, vps, "/etc/traefik/traefik.yml")), &static); err != nil {
		t.Fatal(err)
	}
	acme := static["certificatesResolvers"].(map[string]any)["letsencrypt"].(map[string]any)["acme"].(map[string]any)
	if acme["email"] != "ops@example.test" {
		t.Errorf("acme email %v", acme["email"])
	}
	if d := static["api"].(map[string]any)["dashboard"]; d != false {
		t.Errorf("dashboard %v, want false", d)
	}
	routes := readFile(t, vps, "/etc/traefik/dynamic/mno-routes.yml")
	if !strings.Contains(routes, "Host(`blog.example.test`)") || strings.Contains(routes, "grafana") {
		t.Errorf("routes:\n%s", routes)
	}

	ent := e.entry("vps_nodes", "vps-1")
	for k, want := range map[string]any{"ip": vps.Addr, "ssh_user": "mno", "host_key": vps.HostKey, "status": "active",
		"domain": "example.test", "public_ip": "203.0.113.10", "webhook_port": 8080.0, "repo_path": ""} {
		if ent[k] != want {
			t.Errorf("registry %s = %v, want %v", k, ent[k], want)
		}
	}
	if ent["last_sync"] == nil || ent["applied"] == "" || ent["registered"] == nil {
		t.Errorf("registry entry lacks last_sync/applied/registered: %v", ent)
	}
	if dom := e.configMap("domain-registry")["domains.json"]; !strings.Contains(dom, "203.0.113.10") || !strings.Contains(dom, "example.test") {
		t.Errorf("domains.json: %s", dom)
	}

	// The second run: 0 changed, no file touched, no mutating command.
	vps.SetShim("docker compose version", hosts.ShimResponse{})
	vps.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hosts.ShimResponse{Stdout: "f00dcafe\n"})
	before := mtimes(t, vps, vpsFiles...)
	vps.ClearShimCalls()
	r = e.mustRun("add-vps", params...)
	if r.changed() != 0 {
		t.Fatalf("second run changed %d things:\n%s", r.changed(), r.stderr)
	}
	if after := mtimes(t, vps, vpsFiles...); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("second run touched files:\nbefore %v\nafter  %v", before, after)
	}
	for _, c := range argvs(t, vps) {
		if !strings.HasPrefix(c, "docker ps") && c != "docker compose version" {
			t.Errorf("second run issued %q", c)
		}
	}
}

func idx(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// TestAddVPSBadInput: each bad parameter is a clear error naming it, exit 1,
// and nothing is written to the cluster.
func TestAddVPSBadInput(t *testing.T) {
	e := newEnv(t)
	e.initCluster("10.0.0.1")
	before := e.configMap("sync-controller-registry")["registry.json"]
	base := map[string]string{"name": "vps-1", "address": "100.64.0.9", "domain": "example.test", "email": "ops@example.test", "host_key": "SHA256:x"}
	cases := []struct{ key, value, want string }{
		{"name", "VPS_1", "parameter name: \"VPS_1\" is not a valid node name"},
		{"address", "not an address", "parameter address"},
		{"domain", "localhost", "parameter domain: \"localhost\" is not a domain name"},
		{"email", "${SSL_EMAIL}", "parameter email: \"${SSL_EMAIL}\" is not an address"},
		{"port", "70000", "parameter port: 70000 is not a TCP port"},
		{"user", "bad user", "parameter user"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			var params []string
			for k, v := range base {
				if k != c.key {
					params = append(params, k+"="+v)
				}
			}
			params = append(params, c.key+"="+c.value)
			r := e.run("add-vps", params...)
			if r.exit != 1 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", r.exit, r.stderr, c.want)
			}
		})
	}
	if after := e.configMap("sync-controller-registry")["registry.json"]; after != before {
		t.Errorf("bad input changed the registry:\n%s", after)
	}
}

// TestTraefikServesRoutes: a real Traefik loads the static configuration
// add-vps wrote and the routes sync wrote; a request with the right Host
// header reaches a backend on loopback; after unpublishing it gets 404, and
// Traefik was never restarted for a routes change.
func TestTraefikServesRoutes(t *testing.T) {
	e := newEnv(t, "vps-1")
	vps := e.host("vps-1")
	e.initCluster("10.0.0.1")
	// The backend listens on the VPS's own address (a loopback backend is
	// refused: it would publish the VPS's local-only ports).
	backend := vps.Addr + ":18080"
	e.setServices(map[string]any{
		"app":  map[string]any{"subdomain": "app", "ip": vps.Addr, "port": 18080, "public": true},
		"home": map[string]any{"subdomain": "@", "ip": vps.Addr, "port": 18080, "public": true},
		// Two services share a subdomain: one route, a warning, valid YAML.
		"app-server": map[string]any{"subdomain": "app", "ip": vps.Addr, "port": 18081, "public": true},
	})
	r := e.mustRun("add-vps", "name=vps-1", "address="+vps.Addr, "domain=example.test", "email=ops@example.test",
		"host_key="+vps.HostKey)
	if !strings.Contains(r.stderr, `"app-server": subdomain: app.example.test on vps-1 is also published by "app": routed to "app"`) {
		t.Errorf("no duplicate-subdomain warning:\n%s", r.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	bin, _ := os.Executable()
	be := vps.Command(ctx, true, bin)
	be.Env = append(os.Environ(), backendEnv+"="+backend)
	if err := be.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Process.Kill(); be.Wait() })

	// The test's copy of the static config: same file, throttle low.
	static := readFile(t, vps, "/etc/traefik/traefik.yml")
	var cfg map[string]any
	yaml.Unmarshal([]byte(static), &cfg)
	cfg["providers"].(map[string]any)["providersThrottleDuration"] = "100ms"
	cfg["api"] = map[string]any{"dashboard": false}
	testCfg, _ := yaml.Marshal(cfg)
	if err := vps.WriteFile("/etc/traefik-test.yml", testCfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tr := vps.Command(ctx, true, traefiktest.Binary(t), "--configFile=/etc/traefik-test.yml")
	var trLog strings.Builder
	tr.Stdout, tr.Stderr = &trLog, &trLog
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Process.Kill(); tr.Wait() })
	pid := tr.Process.Pid

	get := func(host string) (int, string) {
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(vps.Addr, "443"))
			},
		}}
		resp, err := c.Get("https://" + host + "/")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "app.example.test served by the backend", func() bool {
		code, body := get("app.example.test")
		return code == 200 && strings.Contains(body, "backend "+backend+" saw host app.example.test")
	}, &trLog)
	if code, body := get("example.test"); code != 200 {
		t.Errorf("apex (@) route: %d %s", code, body)
	}
	if code, _ := get("nope.example.test"); code != 404 {
		t.Errorf("unknown host: %d, want 404", code)
	}

	// Unpublish everything: sync empties the routes, Traefik answers 404.
	e.setServices(map[string]any{
		"app":  map[string]any{"subdomain": "app", "ip": vps.Addr, "port": 18080, "public": false},
		"home": map[string]any{"subdomain": "@", "ip": vps.Addr, "port": 18080, "public": false},
	})
	vps.ClearShimCalls()
	e.mustRun("sync")
	waitFor(t, "app.example.test gone", func() bool { code, _ := get("app.example.test"); return code == 404 }, &trLog)
	if code, _ := get("example.test"); code != 404 {
		t.Errorf("apex after unpublishing: %d, want 404", code)
	}
	if strings.Contains(trLog.String(), "mno-routes.yml:") {
		t.Errorf("Traefik rejected a routes file:\n%s", trLog.String())
	}
	if tr.ProcessState != nil || tr.Process.Pid != pid {
		t.Error("Traefik was restarted")
	}
	for _, c := range argvs(t, vps) {
		if strings.Contains(c, "restart") || strings.Contains(c, " up ") {
			t.Errorf("sync restarted Traefik: %q", c)
		}
	}
	// No temp or backup files in the watched directory or in /etc/traefik.
	out, _ := vps.Command(ctx, false, "ls", "-A", "/etc/traefik/dynamic", "/etc/traefik").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "backup") || strings.Contains(line, "tmp") || strings.HasSuffix(line, "~") {
			t.Errorf("leftover file: %q\n%s", line, out)
		}
	}
	if dyn, _ := vps.Command(ctx, false, "ls", "-A", "/etc/traefik/dynamic").Output(); strings.TrimSpace(string(dyn)) != "mno-routes.yml" {
		t.Errorf("watched directory holds more than the routes file: %q", dyn)
	}
}

func waitFor(t *testing.T, what string, cond func() bool, log *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; traefik log:\n%s", what, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
