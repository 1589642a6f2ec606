package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	mnoBin    string
	buildErr  error
)

// mnoBinary builds cmd/mno once per test binary.
func mnoBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mno-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		mnoBin = filepath.Join(dir, "mno")
		out, err := exec.Command("go", "build", "-o", mnoBin, "../cmd/mno").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mnoBin
}

// watcher is a `mno watch` subprocess.
type watcher struct {
	cmd     *exec.Cmd
	metrics string // base URL
	mu      sync.Mutex
	log     strings.Builder
}

func (e *env) startWatcher(t *testing.T, args ...string) *watcher {
	t.Helper()
	cmd := exec.Command(mnoBinary(t), append([]string{"watch", "--listen", "127.0.0.1:0", "--debounce", "500ms",
		"--lease-duration", "4s"}, args...)...)
	cmd.Env = append(os.Environ(), "MNO_HOME="+e.home, "KUBECONFIG="+e.kubeconfig, "MNO_IDENTITY=")
	cmd.Env = append(cmd.Env, e.watchEnv...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watcher{cmd: cmd}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	re := regexp.MustCompile(`serving /healthz and /metrics on (\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			w.mu.Lock()
			w.log.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		w.metrics = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("mno watch did not start:\n%s", w.logText())
	}
	return w
}

func (w *watcher) logText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// metric reads one sample from /metrics (-1 when unavailable).
func (w *watcher) metric(name string) float64 {
	resp, err := http.Get(w.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func waitCond(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func routesHave(e *env, vps, host string) bool {
	return strings.Contains(string(mustRead(e, vps, "/etc/traefik/dynamic/mno-routes.yml")), host)
}

// TestWatch: `mno watch sync` syncs at start, then on a change of
// service-registry the new routes reach the VPS within debounce + run time;
// 10 changes within one second give one run.
func TestWatch(t *testing.T) {
	e := newEnv(t, "vps-1")
	v := e.host("vps-1")
	e.initCluster("10.0.0.1")
	v.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	e.mustRun("add-vps", "name=vps-1", "address="+v.Addr, "domain=example.test", "email=ops@example.test", "host_key="+v.HostKey)

	w := e.startWatcher(t, "sync")
	waitCond(t, "the start run", time.Minute, func() bool { return w.metric("mno_watch_runs_total") >= 1 })
	if w.metric("mno_watch_leader") != 1 {
		t.Fatalf("not leader:\n%s", w.logText())
	}

	var lat []time.Duration
	for i := 0; i < 3; i++ {
		host := fmt.Sprintf("svc%d", i)
		e.setServices(map[string]any{host: map[string]any{"subdomain": host, "ip": "100.1.1.5", "port": 80, "public": true}})
		lat = append(lat, waitCond(t, host+" on vps-1", time.Minute, func() bool { return routesHave(e, "vps-1", host+".example.test") }))
	}
	t.Logf("ConfigMap change → new routes on the VPS: %v (debounce 500ms)", lat)

	waitCond(t, "runs to settle", time.Minute, func() bool { return w.metric("mno_watch_runs_total") == 4 })
	for i := 0; i < 10; i++ {
		e.setServices(map[string]any{"burst": map[string]any{"subdomain": fmt.Sprintf("burst%d", i), "ip": "100.1.1.5", "port": 80, "public": true}})
		time.Sleep(90 * time.Millisecond)
	}
	waitCond(t, "the burst's run", time.Minute, func() bool { return routesHave(e, "vps-1", "burst9.example.test") })
	time.Sleep(2 * time.Second)
	if n := w.metric("mno_watch_runs_total"); n != 5 {
		t.Errorf("10 changes in a second gave %v runs in all, want 5 (4 before + 1)\n%s", n, w.logText())
	}
	if w.metric(`mno_node_sync_ok{node="vps-1"}`) != 1 {
		t.Errorf("node metric missing")
	}
}

// TestWatchFailover: of two watchers one leads; SIGKILL the leader (no
// release) and the other takes over within the lease duration and syncs.
func TestWatchFailover(t *testing.T) {
	e := newEnv(t, "vps-1")
	v := e.host("vps-1")
	e.initCluster("10.0.0.1")
	v.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	e.mustRun("add-vps", "name=vps-1", "address="+v.Addr, "domain=example.test", "email=ops@example.test", "host_key="+v.HostKey)

	a := e.startWatcher(t, "sync")
	waitCond(t, "a leads", time.Minute, func() bool { return a.metric("mno_watch_leader") == 1 })
	b := e.startWatcher(t, "sync")
	time.Sleep(2 * time.Second)
	if b.metric("mno_watch_leader") != 0 || b.metric("mno_watch_runs_total") != 0 {
		t.Fatalf("b runs while a leads:\n%s", b.logText())
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	e.setServices(map[string]any{"after": map[string]any{"subdomain": "after", "ip": "100.1.1.5", "port": 80, "public": true}})
	waitCond(t, "b to take over and sync", time.Minute, func() bool { return routesHave(e, "vps-1", "after.example.test") })
	t.Logf("after SIGKILL of the leader, the other watcher synced the change in %s (lease 4s)", time.Since(killed).Round(10*time.Millisecond))
	if b.metric("mno_watch_leader") != 1 {
		t.Errorf("b is not leader:\n%s", b.logText())
	}
}

// TestWatchDrift: under `mno watch`, a hand edit of a VPS's routes file is
// put back by the next (periodic) sync, recorded as drift, and counted in
// mno_drift_total{node}.
func TestWatchDrift(t *testing.T) {
	e := newEnv(t, "vps-1")
	e.clearRecords()
	v := e.host("vps-1")
	e.initCluster("10.0.0.1")
	v.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	e.mustRun("add-vps", "name=vps-1", "address="+v.Addr, "domain=example.test", "email=ops@example.test", "host_key="+v.HostKey)
	good := readFile(t, v, routesPath)

	w := e.startWatcher(t, "sync", "--resync", "2s")
	waitCond(t, "the start run", time.Minute, func() bool { return w.metric("mno_watch_runs_total") >= 1 })
	if n := w.metric(`mno_drift_total{node="vps-1"}`); n > 0 {
		t.Fatalf("drift counted before any edit: %v", n)
	}
	v.WriteFile(routesPath, []byte(good+"# by hand\n"), 0o644)
	waitCond(t, "drift counted", time.Minute, func() bool { return w.metric(`mno_drift_total{node="vps-1"}`) == 1 })
	if got := readFile(t, v, routesPath); got != good {
		t.Errorf("the watch's sync did not put the routes file back:\n%s", got)
	}
	var drifted int
	for _, cm := range e.records() {
		if cm.Labels["mno.sh/drift"] == "true" && cm.Labels["node.mno.sh/vps-1"] == "drift" {
			drifted++
		}
	}
	if drifted != 1 {
		t.Errorf("%d drift records, want 1", drifted)
	}
	if !strings.Contains(w.logText(), "drift: "+routesPath+" on vps-1") {
		t.Errorf("the watch's log lacks the drift warning:\n%s", w.logText())
	}
}
