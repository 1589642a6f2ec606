package lab_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mno-sh/mno/lab"
	"github.com/mno-sh/mno/lab/hosts/hoststest"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
	"github.com/mno-sh/mno/lab/traefik/traefiktest"
)

// TestMain doubles as the mno binary the lab runs in its nodes (the demo
// service, `mno lab backend`), so the test needs no build of cmd/mno.
func TestMain(m *testing.M) {
	// The nodes' docker shim runs `mno lab docker --traefik BIN -- ARGS`
	// with the lab's copy of this binary.
	if filepath.Base(os.Args[0]) == "mno" && len(os.Args) > 4 && os.Args[1] == "lab" && os.Args[2] == "docker" {
		args, traefik := os.Args[3:], ""
		if len(args) >= 2 && args[0] == "--traefik" {
			traefik, args = args[1], args[2:]
		}
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		os.Exit(lab.Docker(args, traefik, os.Stdout, os.Stderr))
	}
	if filepath.Base(os.Args[0]) == "mno" && len(os.Args) > 2 && os.Args[1] == "lab" && os.Args[2] == "backend" {
		fs := flag.NewFlagSet("backend", flag.ExitOnError)
		listen := fs.String("listen", "", "")
		node := fs.String("node", "", "")
		fs.Parse(os.Args[3:])
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := lab.ServeDemo(ctx, *listen, *node, os.Stderr); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 2 && os.Args[1] == "lab" && os.Args[2] == "build-traefik" {
		os.Exit(fakeBuildTraefik(os.Args[3:])) // see TestBackgroundTraefik
	}
	os.Exit(m.Run())
}

func exec(t *testing.T, cl *lab.Cluster, node, script string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code, err := cl.Exec(context.Background(), node, nil, &out, &out, nil, "sh", "-c", script)
	if err != nil {
		t.Fatalf("%s: %s: %v", node, script, err)
	}
	return out.String(), code
}

// TestShims: in a lab node, docker is missing until apt-get installs it;
// then `docker compose up -d` of the mno-traefik project runs a real Traefik
// that `docker ps` reports, restart replaces it, down stops it. tailscale
// knows the node's address, and the demo service answers.
func TestShims(t *testing.T) {
	hoststest.Require(t)
	kubeapitest.Binaries(t)
	traefiktest.Binary(t)
	if err := lab.CheckPrivileges(); err != nil {
		hoststest.Unavailable(t, "lab privileges: %v", err)
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := lab.Up(ctx, lab.Options{Dir: t.TempDir(), VPS: 1, Exe: exe, NoBuild: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if out, code := exec(t, cl, "vps-1", "docker compose version"); code != 127 || !strings.Contains(out, "docker: command not found") {
		t.Errorf("docker before apt-get install: exit %d: %s", code, out)
	}
	if out, code := exec(t, cl, "vps-1", "tailscale ip -4"); code != 0 || out != cl.Nodes[0].Addr+"\n" {
		t.Errorf("tailscale ip -4: exit %d: %q", code, out)
	}
	setup := `apt-get install -y docker.io && docker compose version &&
mkdir -p /etc/traefik/dynamic /opt/mno/traefik &&
printf 'entryPoints:\n  web:\n    address: ":80"\nproviders:\n  file:\n    directory: /etc/traefik/dynamic\n' >/etc/traefik/traefik.yml &&
printf 'services:\n  traefik:\n    container_name: mno-traefik\n' >/opt/mno/traefik/compose.yaml &&
docker ps -q --filter name=^mno-traefik$ --filter status=running | wc -l &&
docker compose -f /opt/mno/traefik/compose.yaml up -d`
	if out, code := exec(t, cl, "vps-1", setup); code != 0 || !strings.Contains(out, "Docker Compose version") || !strings.Contains(out, "\n0\n") {
		t.Fatalf("install and up: exit %d:\n%s", code, out)
	}
	running := func() string {
		out, _ := exec(t, cl, "vps-1", "docker ps -q --filter name=^mno-traefik$ --filter status=running")
		return strings.TrimSpace(out)
	}
	first := running()
	if len(first) != 12 {
		t.Fatalf("docker ps after up: %q", first)
	}
	if out, _ := exec(t, cl, "vps-1", "docker ps -q --filter name=^traefik$"); out != "" {
		t.Errorf("MyNodeOne's container name matches: %q", out)
	}
	// Traefik really listens on the node's :80 (and knows no route: 404).
	var code string
	for i := 0; i < 200 && code != "404"; i++ {
		code, _ = exec(t, cl, "vps-1", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:80/; true")
		time.Sleep(50 * time.Millisecond)
	}
	if code != "404" {
		t.Errorf("Traefik in vps-1 answers %q on :80, want 404", code)
	}
	pid := func() string { out, _ := exec(t, cl, "vps-1", "cat /run/mno-lab-docker/mno-traefik/pid"); return out }
	// Like docker, restart keeps the container (its id) and replaces its process.
	pidBefore := pid()
	if out, code := exec(t, cl, "vps-1", "docker compose -f /opt/mno/traefik/compose.yaml restart traefik"); code != 0 {
		t.Fatalf("restart: exit %d: %s", code, out)
	}
	if p := pid(); p == "" || p == pidBefore {
		t.Errorf("restart did not replace Traefik's process: %q then %q", pidBefore, p)
	}
	if again := running(); again != first {
		t.Errorf("restart changed the container id: %q then %q", first, again)
	}
	if out, code := exec(t, cl, "vps-1", "docker compose -f /opt/mno/traefik/compose.yaml down"); code != 0 || running() != "" {
		t.Errorf("down: exit %d, still running %q: %s", code, running(), out)
	}
	if out, code := exec(t, cl, "vps-1", "curl -s http://"+cl.Demo.Addr+":8080/x -H 'Host: demo.example.test'"); code != 0 ||
		!strings.Contains(out, "demo service on vps-1") || !strings.Contains(out, "demo.example.test/x") {
		t.Errorf("demo service from the node: exit %d: %s", code, out)
	}
}
