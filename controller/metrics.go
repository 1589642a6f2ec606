package controller

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics are the controller's Prometheus metrics, in the text format.
type Metrics struct {
	mu          sync.Mutex
	runs        int
	failures    int
	lastSeconds float64
	sumSeconds  float64
	lastSuccess time.Time
	leader      bool
	nodes       map[string]bool
	// problems of the cluster state in the last run that read it, by level.
	problems map[string]int
	// drift counts, per node, the runs that found it drifted.
	drift map[string]int
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics { return &Metrics{nodes: map[string]bool{}, drift: map[string]int{}} }

func (m *Metrics) setLeader(b bool) {
	m.mu.Lock()
	m.leader = b
	m.mu.Unlock()
}

func (m *Metrics) observe(res RunResult, d time.Duration, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs++
	m.lastSeconds = d.Seconds()
	m.sumSeconds += d.Seconds()
	if res.Exit != 0 {
		m.failures++
	} else {
		m.lastSuccess = now
	}
	for n, ok := range res.Targets {
		m.nodes[n] = ok
	}
	if res.Problems != nil {
		m.problems = res.Problems
	}
	for _, n := range res.Drift {
		m.drift[n]++
	}
}

// Runs returns how many runs finished.
func (m *Metrics) Runs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs
}

// Write writes the metrics in the Prometheus text exposition format.
func (m *Metrics) Write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	fmt.Fprintf(w, "# HELP mno_watch_runs_total Playbook runs finished.\n# TYPE mno_watch_runs_total counter\nmno_watch_runs_total %d\n", m.runs)
	fmt.Fprintf(w, "# HELP mno_watch_run_failures_total Runs that exited non-zero.\n# TYPE mno_watch_run_failures_total counter\nmno_watch_run_failures_total %d\n", m.failures)
	fmt.Fprintf(w, "# HELP mno_watch_run_duration_seconds Duration of runs.\n# TYPE mno_watch_run_duration_seconds summary\nmno_watch_run_duration_seconds_sum %s\nmno_watch_run_duration_seconds_count %d\n", num(m.sumSeconds), m.runs)
	fmt.Fprintf(w, "# HELP mno_watch_last_run_duration_seconds Duration of the last run.\n# TYPE mno_watch_last_run_duration_seconds gauge\nmno_watch_last_run_duration_seconds %s\n", num(m.lastSeconds))
	last := 0.0
	if !m.lastSuccess.IsZero() {
		last = float64(m.lastSuccess.UnixNano()) / 1e9
	}
	fmt.Fprintf(w, "# HELP mno_watch_last_success_timestamp_seconds When the last run succeeded.\n# TYPE mno_watch_last_success_timestamp_seconds gauge\nmno_watch_last_success_timestamp_seconds %s\n", num(last))
	fmt.Fprintf(w, "# HELP mno_watch_leader Whether this process holds the leader lease.\n# TYPE mno_watch_leader gauge\nmno_watch_leader %d\n", b2i(m.leader))
	fmt.Fprintf(w, "# HELP mno_state_problems Problems of the cluster's ConfigMaps in the last run that read them: invalid entries (skipped, never written) and warnings.\n# TYPE mno_state_problems gauge\n")
	for _, level := range []string{"invalid", "warning"} {
		fmt.Fprintf(w, "mno_state_problems{level=%q} %d\n", level, m.problems[level])
	}
	fmt.Fprintf(w, "# HELP mno_node_sync_ok Whether the node synced in the last run that touched it.\n# TYPE mno_node_sync_ok gauge\n")
	// Two names that differ only in invalid bytes escape alike: one series,
	// ok only if both are (a duplicate series would fail the scrape).
	series := map[string]bool{}
	for n, ok := range m.nodes {
		v := labelValue(n)
		if prev, seen := series[v]; seen {
			ok = ok && prev
		}
		series[v] = ok
	}
	names := make([]string, 0, len(series))
	for v := range series {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		fmt.Fprintf(w, "mno_node_sync_ok{node=\"%s\"} %d\n", v, b2i(series[v]))
	}
	fmt.Fprintf(w, "# HELP mno_drift_total Runs that found the node changed since its last sync while the cluster's state was not.\n# TYPE mno_drift_total counter\n")
	drift := map[string]int{}
	for n, c := range m.drift {
		drift[labelValue(n)] += c
	}
	names = names[:0]
	for v := range drift {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		fmt.Fprintf(w, "mno_drift_total{node=\"%s\"} %d\n", v, drift[v])
	}
}

// labelValue escapes a label value as the text exposition format wants it:
// backslash, double quote and line feed escaped (\\, \", \n), every other
// character as it is (Go's %q would write \t or \x01, escapes a Prometheus
// parser rejects, failing the whole scrape). Node names come from the
// registry, so they may hold anything; bytes that are not UTF-8, which the
// parser refuses too, become U+FFFD.
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// num formats a sample value without exponent, so timestamps keep their precision.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Serve serves /healthz and /metrics on addr until the listener fails; it
// returns the listener so callers can close it.
func Serve(addr string, m *Metrics) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.Write(w)
	})
	go http.Serve(ln, mux)
	return ln, nil
}
