package traefik_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab/traefik"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

const staticConfig = `global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:%d"
    transport:
      lifeCycle:
        graceTimeOut: 1s # default 10s of draining on SIGTERM
  ping:
    address: "127.0.0.1:%d"
ping:
  entryPoint: ping
providers:
  providersThrottleDuration: 100ms # default 2s between applied changes
  file:
    directory: %q
    watch: true
log:
  level: INFO
`

const routeConfig = `http:
  routers:
    app:
      rule: "Host(` + "`app.test`" + `)"
      entryPoints: [web]
      service: app
  services:
    app:
      loadBalancer:
        servers:
          - url: %q
`

func TestFileProviderRoutesHostToBackend(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw host %s", r.Host)
	}))
	defer backend.Close()

	dir := t.TempDir()
	routes := filepath.Join(dir, "routes")
	if err := os.Mkdir(routes, 0o755); err != nil {
		t.Fatal(err)
	}
	web, ping := freePort(t), freePort(t)
	static := filepath.Join(dir, "traefik.yml")
	writeFile(t, static, fmt.Sprintf(staticConfig, web, ping, routes))
	traefiktest.Start(t, traefik.Options{
		ConfigFile: static,
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/ping", ping),
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/", web)

	// No route yet.
	waitFor(t, ctx, url, http.StatusNotFound, "")

	// Write next to the watched directory and rename in, so Traefik never reads half a file.
	route := filepath.Join(routes, "app.yml")
	writeFile(t, filepath.Join(dir, "app.yml"), fmt.Sprintf(routeConfig, backend.URL))
	if err := os.Rename(filepath.Join(dir, "app.yml"), route); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, url, http.StatusOK, "backend saw host app.test")

	if err := os.Remove(route); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, url, http.StatusNotFound, "")
}

// waitFor polls url with Host app.test until it answers status (and body, if not empty); the
// file provider applies changes asynchronously.
func waitFor(t *testing.T, ctx context.Context, url string, status int, body string) {
	t.Helper()
	var got string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.test"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got = fmt.Sprintf("%d %q", resp.StatusCode, b)
			if resp.StatusCode == status && (body == "" || string(b) == body) {
				return
			}
		} else {
			got = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s (Host app.test): last %s, want %d %q", url, got, status, body)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
