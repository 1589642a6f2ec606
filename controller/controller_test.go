package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

func TestMain(m *testing.M) { kubeapitest.Main(m) }

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setup returns a client, a fresh namespace with a ConfigMap "watched", and
// a function that changes it.
func setup(t *testing.T) (*kclient.Client, string, func(v string)) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	cs := kubeapitest.Client(t, srv)
	cms := cs.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	change := func(v string) {
		cm, err := cms.Get(context.Background(), "watched", metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		cm.Data["v"] = v
		if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	}
	return kubeapitest.KClient(t, srv), ns, change
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunsOnChangeDebounced: one run at start; a burst of 10 changes within
// a second gives exactly one more run; never two runs at once.
func TestRunsOnChangeDebounced(t *testing.T) {
	cs, ns, change := setup(t)
	var runs, running, overlap atomic.Int32
	var log syncLog
	c, err := New(Options{
		Client: cs, Watch: []Target{{ns, "watched"}}, Debounce: 1500 * time.Millisecond, Log: &log,
		Run: func(ctx context.Context) RunResult {
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			time.Sleep(200 * time.Millisecond)
			running.Add(-1)
			runs.Add(1)
			return RunResult{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	waitUntil(t, "the start run", func() bool { return runs.Load() == 1 })
	for i := 1; i <= 10; i++ {
		change(fmt.Sprint(i))
		time.Sleep(90 * time.Millisecond)
	}
	waitUntil(t, "the burst's run", func() bool { return runs.Load() == 2 })
	time.Sleep(3 * time.Second) // longer than the debounce: no third run comes
	if n := runs.Load(); n != 2 {
		t.Errorf("runs = %d, want 2 (start + one for the burst)\n%s", n, log.String())
	}
	// A change that arrives during a run gives one run after it.
	change("x")
	waitUntil(t, "a run after the last change", func() bool { return runs.Load() == 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if overlap.Load() != 0 {
		t.Error("two runs overlapped")
	}
	if !strings.Contains(log.String(), "watched changed") {
		t.Errorf("log does not name the change:\n%s", log.String())
	}
}

// TestResyncAndBackoff: a failed run is retried with growing delays; the
// resync period triggers runs on its own.
func TestResyncAndBackoff(t *testing.T) {
	cs, ns, _ := setup(t)
	var mu sync.Mutex
	var times []time.Time
	c, _ := New(Options{
		Client: cs, Watch: []Target{{ns, "watched"}}, BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		Run: func(ctx context.Context) RunResult {
			mu.Lock()
			defer mu.Unlock()
			times = append(times, time.Now())
			if len(times) <= 4 {
				return RunResult{Exit: 2}
			}
			return RunResult{}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	waitUntil(t, "five runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) >= 5 })
	mu.Lock()
	gaps := []time.Duration{times[1].Sub(times[0]), times[2].Sub(times[1]), times[3].Sub(times[2]), times[4].Sub(times[3])}
	mu.Unlock()
	// ~100, ~200, ~400, ~400 (capped) with ±10% jitter.
	if gaps[1] < gaps[0] || gaps[2] < gaps[1] || gaps[3] > 600*time.Millisecond {
		t.Errorf("retry gaps %v: want growing, capped near 400ms", gaps)
	}
	if c.o.Metrics.failures != 4 {
		t.Errorf("failures metric %d, want 4", c.o.Metrics.failures)
	}

	var resyncRuns atomic.Int32
	c2, _ := New(Options{Client: cs, Watch: []Target{{ns, "watched"}}, Resync: 300 * time.Millisecond,
		Run: func(context.Context) RunResult { resyncRuns.Add(1); return RunResult{} }})
	go c2.Run(ctx)
	waitUntil(t, "resync runs", func() bool { return resyncRuns.Load() >= 3 })
}

// TestLeaderElection: of two controllers, one leads and runs; when the leader
// stops (SIGTERM: it releases the lease) the other takes over and runs. A
// leader killed with SIGKILL is e2e/watch_test.go's TestWatchFailover.
func TestLeaderElection(t *testing.T) {
	cs, ns, change := setup(t)
	var runsA, runsB atomic.Int32
	mk := func(id string, runs *atomic.Int32) *Controller {
		c, err := New(Options{
			Client: cs, Watch: []Target{{ns, "watched"}}, Debounce: 100 * time.Millisecond,
			LeaseName: "mno-watch-test", LeaseNamespace: ns, Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 300 * time.Millisecond,
			Run: func(context.Context) RunResult { runs.Add(1); return RunResult{} },
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mk("a", &runsA), mk("b", &runsB)
	ctxA, killA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	go a.Run(ctxA)
	waitUntil(t, "a to lead and run", func() bool { return runsA.Load() >= 1 })
	go b.Run(ctxB)
	change("1")
	waitUntil(t, "a to run on the change", func() bool { return runsA.Load() >= 2 })
	time.Sleep(time.Second)
	if runsB.Load() != 0 {
		t.Fatalf("b ran %d times while a led", runsB.Load())
	}
	if !a.o.Metrics.leader || b.o.Metrics.leader {
		t.Errorf("leader metrics: a %v, b %v", a.o.Metrics.leader, b.o.Metrics.leader)
	}
	killedAt := time.Now()
	killA()
	waitUntil(t, "b to take over", func() bool { return runsB.Load() >= 1 })
	t.Logf("b took over %s after a stopped", time.Since(killedAt).Round(10*time.Millisecond))
	change("2")
	waitUntil(t, "b to run on a change", func() bool { return runsB.Load() >= 2 })
}

// TestMetricsEndpoint serves /healthz and /metrics in the Prometheus format.
func TestMetricsEndpoint(t *testing.T) {
	m := NewMetrics()
	m.setLeader(true)
	m.observe(RunResult{Exit: 0, Targets: map[string]bool{"vps-1": true, "laptop-1": false},
		Problems: map[string]int{"invalid": 3, "warning": 1}}, 1500*time.Millisecond, time.Unix(1700000000, 0))
	// A run that did not read the state keeps the last count.
	m.observe(RunResult{Exit: 2}, 500*time.Millisecond, time.Unix(1700000100, 0))
	// Drift is counted per node and run, across runs.
	m.observe(RunResult{Exit: 0, Drift: []string{"vps-1"}}, time.Second, time.Unix(1700000200, 0))
	m.observe(RunResult{Exit: 0, Drift: []string{"vps-1", "laptop-1"}}, time.Second, time.Unix(1700000300, 0))
	ln, err := Serve("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	get := func(p string) string {
		resp, err := http.Get("http://" + ln.Addr().String() + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if h := get("/healthz"); h != "ok\n" {
		t.Errorf("/healthz: %q", h)
	}
	body := get("/metrics")
	for _, want := range []string{
		"mno_watch_runs_total 4\n",
		"mno_watch_run_failures_total 1\n",
		"mno_watch_run_duration_seconds_sum 4\n",
		"mno_watch_last_success_timestamp_seconds 1700000300\n",
		"# TYPE mno_drift_total counter\n",
		"mno_drift_total{node=\"vps-1\"} 2\n",
		"mno_drift_total{node=\"laptop-1\"} 1\n",
		"mno_watch_leader 1\n",
		"mno_node_sync_ok{node=\"laptop-1\"} 0\n",
		"mno_node_sync_ok{node=\"vps-1\"} 1\n",
		"# TYPE mno_watch_runs_total counter\n",
		"# TYPE mno_state_problems gauge\n",
		"mno_state_problems{level=\"invalid\"} 3\n",
		"mno_state_problems{level=\"warning\"} 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

// TestStatusWritesDoNotTrigger: a change to status fields only (what a sync
// writes about itself) triggers nothing; any other change does.
func TestStatusWritesDoNotTrigger(t *testing.T) {
	srv := kubeapitest.Server(t)
	ns := kubeapitest.Namespace(t, srv)
	cs := kubeapitest.Client(t, srv)
	cms := cs.CoreV1().ConfigMaps(ns)
	reg := func(status, ip string) map[string]string {
		return map[string]string{"registry.json": `{"vps_nodes": [{"name": "vps-1", "ip": "` + ip + `", "status": "` + status + `", "last_sync": "` + status + `"}], "metadata": {"last_updated": "` + status + `"}}`}
	}
	cms.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "reg"}, Data: reg("active", "100.1.1.1")}, metav1.CreateOptions{})
	set := func(d map[string]string) {
		cm, _ := cms.Get(context.Background(), "reg", metav1.GetOptions{})
		cm.Data = d
		if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var runs atomic.Int32
	c, _ := New(Options{Client: kubeapitest.KClient(t, srv), Watch: []Target{{ns, "reg"}}, Debounce: 100 * time.Millisecond,
		Run: func(context.Context) RunResult { runs.Add(1); return RunResult{} }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	waitUntil(t, "start run", func() bool { return runs.Load() == 1 })
	set(reg("failed", "100.1.1.1"))
	time.Sleep(time.Second)
	if runs.Load() != 1 {
		t.Fatalf("a status-only change triggered a run")
	}
	set(reg("failed", "100.1.1.2"))
	waitUntil(t, "a run for the address change", func() bool { return runs.Load() == 2 })
}

// TestGracePeriod: on stop, a run that finishes within the grace period is
// not cancelled; one that would take longer is cancelled when it ends.
func TestGracePeriod(t *testing.T) {
	cs, ns, _ := setup(t)
	for _, tc := range []struct {
		name          string
		runTakes      time.Duration
		grace         time.Duration
		wantCancelled bool
	}{
		{"finishes within grace", 300 * time.Millisecond, 3 * time.Second, false},
		{"cancelled after grace", 30 * time.Second, 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started := make(chan struct{})
			var cancelled atomic.Bool
			c, _ := New(Options{Client: cs, Watch: []Target{{ns, "watched"}}, Grace: tc.grace,
				Run: func(ctx context.Context) RunResult {
					close(started)
					select {
					case <-time.After(tc.runTakes):
					case <-ctx.Done():
						cancelled.Store(true)
					}
					return RunResult{}
				}})
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- c.Run(ctx) }()
			<-started
			stop() // SIGTERM
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("controller did not stop")
			}
			if cancelled.Load() != tc.wantCancelled {
				t.Errorf("run cancelled = %v, want %v", cancelled.Load(), tc.wantCancelled)
			}
		})
	}
}

// TestMetricsLabelEscaping (issue 13 item 6): node names from the registry
// with quotes, backslashes, newlines, tabs, control characters or invalid
// UTF-8 are escaped as the exposition format says (\\ \" \n only), so every
// line still parses and one bad name cannot break the whole scrape.
func TestMetricsLabelEscaping(t *testing.T) {
	m := NewMetrics()
	names := map[string]string{ // name → the label value as written
		`a"b`:        `a\"b`,
		`c\d`:        `c\\d`,
		"e\nf 1\ng{": `e\nf 1\ng{`,
		"h\ti\x01j":  "h\ti\x01j",
		"k\xffl":     "k\uFFFDl",
		"ünï":        "ünï",
	}
	targets := map[string]bool{}
	for n := range names {
		targets[n] = true
	}
	m.observe(RunResult{Targets: targets}, time.Second, time.Unix(1700000000, 0))
	for n := range names {
		m.observe(RunResult{Drift: []string{n}}, time.Second, time.Unix(1700000000, 0))
	}
	var buf strings.Builder
	m.Write(&buf)
	body := buf.String()
	for _, want := range names {
		for _, line := range []string{"mno_node_sync_ok{node=\"" + want + "\"} 1\n", "mno_drift_total{node=\"" + want + "\"} 1\n"} {
			if !strings.Contains(body, line) {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	}
	// Every line parses per the text format: a comment, or name{labels} value.
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if err := parseSample(line); err != nil {
			t.Errorf("line %d %q: %v", i+1, line, err)
		}
	}
}

// parseSample checks one line of the Prometheus text format strictly.
func parseSample(line string) error {
	if strings.HasPrefix(line, "# ") {
		return nil
	}
	if !utf8.ValidString(line) {
		return fmt.Errorf("not UTF-8")
	}
	name, rest, ok := strings.Cut(line, "{")
	if !ok {
		name, rest, ok = strings.Cut(line, " ")
		if !ok || name == "" {
			return fmt.Errorf("no value")
		}
		_, err := strconv.ParseFloat(rest, 64)
		return err
	}
	for {
		label, after, ok := strings.Cut(rest, "=\"")
		if !ok || label == "" || strings.ContainsAny(label, " \",{}") {
			return fmt.Errorf("bad label name in %q", rest)
		}
		i := 0
		for ; i < len(after); i++ {
			switch after[i] {
			case '\\':
				i++
				if i >= len(after) || !strings.ContainsRune(`\"n`, rune(after[i])) {
					return fmt.Errorf("invalid escape")
				}
				continue
			case '\n':
				return fmt.Errorf("raw newline")
			}
			if after[i] == '"' {
				break
			}
		}
		if i >= len(after) {
			return fmt.Errorf("unterminated label value")
		}
		rest = after[i+1:]
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
			continue
		}
		if !strings.HasPrefix(rest, "} ") {
			return fmt.Errorf("want } and a value after the labels, got %q", rest)
		}
		_, err := strconv.ParseFloat(rest[2:], 64)
		return err
	}
}
