package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/builtins/kube/kclient"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/history"
	"github.com/mno-sh/mno/lab/kubeapi/kubeapitest"
)

// recorded is a run through history.Run, as `mno run` does it.
type recorded struct {
	result
	rec  *history.Record
	name string // the record's ConfigMap, "" when none was written
}

func (e *env) runRecorded(ho history.Options, getenv func(string) string, playbook string, params ...string) recorded {
	e.t.Helper()
	return e.runRecordedIn("", e.kubeconfig, ho, getenv, playbook, params...)
}

func (e *env) runRecordedIn(root, kubeconfig string, ho history.Options, getenv func(string) string, playbook string, params ...string) recorded {
	e.t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var stdout, stderr bytes.Buffer
	res, rec, name := history.Run(e.ctx, engine.Options{
		Playbook: playbook, Params: params, ShowDiff: true, Timeout: 5 * time.Minute, Root: root,
		Config:   runctx.Config{Home: e.home, Identity: e.identity, Kubeconfig: kubeconfig, Getenv: getenv},
		Embedded: mno.Files, Stdout: &stdout, Stderr: &stderr,
	}, ho)
	e.t.Logf("mno run %s %s → exit %d, record %q\n%s", playbook, strings.Join(params, " "), res.Exit, name, stderr.String())
	return recorded{result: result{exit: res.Exit, stdout: stdout.String(), stderr: stderr.String(), targets: res.Targets, err: res.Err}, rec: rec, name: name}
}

// clearRecords deletes the run records an earlier test left (and those an earlier mno kept in
// kube-system).
func (e *env) clearRecords() {
	e.t.Helper()
	for _, ns := range []string{history.Namespace, history.LegacyNamespace} {
		err := e.client.CoreV1().ConfigMaps(ns).DeleteCollection(e.ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: history.LabelRecord + "=run"})
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Fatal(err)
		}
	}
}

// legacyRecords are the records in kube-system, where mno kept them before mno-history.
func (e *env) legacyRecords() []corev1.ConfigMap {
	e.t.Helper()
	l, err := e.client.CoreV1().ConfigMaps(history.LegacyNamespace).List(e.ctx, metav1.ListOptions{LabelSelector: history.LabelRecord + "=run"})
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Items
}

func (e *env) records() []corev1.ConfigMap {
	e.t.Helper()
	l, err := e.client.CoreV1().ConfigMaps(history.Namespace).List(e.ctx, metav1.ListOptions{LabelSelector: history.LabelRecord + "=run"})
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Items
}

func (e *env) store() *history.Store {
	return &history.Store{Client: kubeapitest.KClient(e.t, kubeapitest.Server(e.t))}
}

// mnoCLI runs the mno binary against the env's cluster and hosts.
func mnoCLI(t *testing.T, e *env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mnoBinary(t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.kubeconfig, "MNO_HOME="+e.home, "MNO_IDENTITY="+e.identity)
	var o, x bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &x
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("mno %s → exit %d\n%s%s", strings.Join(args, " "), code, o.String(), x.String())
	return o.String(), x.String(), code
}

func (e *env) addVPSRecorded(name string) recorded {
	e.t.Helper()
	h := e.host(name)
	h.SetShim("docker ps -q --filter name=^mno-traefik$ --filter status=running", hostsRunning)
	r := e.runRecorded(history.Options{}, nil, "add-vps", "name="+name, "address="+h.Addr, "domain=example.test", "email=ops@example.test", "host_key="+h.HostKey)
	if r.exit != 0 {
		e.t.Fatalf("add-vps %s: exit %d", name, r.exit)
	}
	return r
}

// TestRunRecordsAndDrift: runs that change something leave a record with
// their labels and data; a run that changes nothing leaves none. A hand
// edit of the routes file on a VPS is drift: `mno run --check sync` exits
// 2 naming the file and writes nothing (not the file, not a record); the
// next sync puts the file back and records the run as drift.
func TestRunRecordsAndDrift(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2")
	e.clearRecords()
	if r := e.runRecorded(history.Options{}, nil, "init", "cluster_name=home", "cluster_domain=home", "control_plane_ip=10.0.0.1"); r.exit != 0 || r.name == "" {
		t.Fatalf("init: exit %d, record %q", r.exit, r.name)
	}
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	add := e.addVPSRecorded("vps-1")
	e.addVPSRecorded("vps-2")

	// The add-vps record: labels, annotations and data.
	cm, err := e.client.CoreV1().ConfigMaps(history.Namespace).Get(e.ctx, add.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Name != "mno-run-"+strings.ToLower(add.rec.RunID) {
		t.Errorf("record name %s for run %s", cm.Name, add.rec.RunID)
	}
	for k, v := range map[string]string{"mno.sh/record": "run", "mno.sh/result": "ok", "mno.sh/drift": "false", "node.mno.sh/vps-1": "changed"} {
		if cm.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, cm.Labels[k], v, cm.Labels)
		}
	}
	if _, ok := cm.Labels["node.mno.sh/vps-2"]; ok {
		t.Errorf("the add-vps of vps-1 is labelled with vps-2: %v", cm.Labels)
	}
	rec, err := e.store().Get(e.ctx, add.rec.RunID)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := mno.Files.Open("playbooks/add-vps.star")
	var srcData bytes.Buffer
	srcData.ReadFrom(src)
	if rec.Playbook == "" || len(rec.SourceSHA256) != 64 || rec.Params["name"] != "vps-1" || !strings.Contains(rec.By, "@") ||
		rec.Start.IsZero() || rec.End.Before(rec.Start) || rec.Targets["vps-1"] != "changed" || rec.Targets["cluster"] != "changed" {
		t.Errorf("record: playbook %q sha %q params %v by %q start %v end %v targets %v", rec.Playbook, rec.SourceSHA256, rec.Params, rec.By, rec.Start, rec.End, rec.Targets)
	}
	if !strings.Contains(renderRecord(rec, false, ""), "+        - blog.example.test") && !strings.Contains(renderRecord(rec, false, ""), "blog.example.test") {
		t.Errorf("the record lacks the routes diff:\n%s", renderRecord(rec, false, ""))
	}

	// A sync with nothing to do leaves no record.
	before := len(e.records())
	if r := e.runRecorded(history.Options{}, nil, "sync"); r.exit != 0 || r.name != "" || r.changed() != 0 {
		t.Fatalf("no-op sync: exit %d, record %q, changed %d", r.exit, r.name, r.changed())
	}
	if n := len(e.records()); n != before {
		t.Errorf("a sync that changed nothing left a record (%d → %d)", before, n)
	}

	// Someone edits the routes file on vps-1 by hand.
	h := e.host("vps-1")
	good := readFile(t, h, routesPath)
	edited := good + "# hand edit\n"
	if err := h.WriteFile(routesPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	regBefore := e.configMap("sync-controller-registry")["registry.json"]
	_, stderr, code := mnoCLI(t, e, "run", "--check", "sync")
	if code != 2 || !strings.Contains(stderr, "drift: "+routesPath+" on vps-1 was changed since its last sync") ||
		!strings.Contains(stderr, "check: drift on vps-1 ("+routesPath+")") {
		t.Errorf("--check with a hand edit: exit %d, want 2 and the file named:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "vps-2 ("+routesPath) {
		t.Errorf("--check reports vps-2, which nobody touched:\n%s", stderr)
	}
	if got := readFile(t, h, routesPath); got != edited {
		t.Errorf("--check changed the routes file:\n%s", got)
	}
	if n := len(e.records()); n != before {
		t.Errorf("--check wrote a record (%d → %d)", before, n)
	}
	if e.configMap("sync-controller-registry")["registry.json"] != regBefore {
		t.Error("--check rewrote the registry")
	}
	// Without drift, --check exits 0.
	if _, stderr, code := mnoCLI(t, e, "run", "--check", "sync", "only=vps-2"); code != 0 {
		t.Errorf("--check of a node without drift: exit %d\n%s", code, stderr)
	}

	// The plain sync corrects it and records drift.
	fix := e.runRecorded(history.Options{}, nil, "sync")
	if fix.exit != 0 || fix.name == "" {
		t.Fatalf("sync after the hand edit: exit %d, record %q", fix.exit, fix.name)
	}
	if got := readFile(t, h, routesPath); got != good {
		t.Errorf("the sync did not put the routes file back:\n%s", got)
	}
	if !strings.Contains(fix.stderr, "warning [vps-1]: drift: "+routesPath+" on vps-1 was changed since its last sync") {
		t.Errorf("the sync's report lacks the drift warning naming the file:\n%s", fix.stderr)
	}
	cm, err = e.client.CoreV1().ConfigMaps(history.Namespace).Get(e.ctx, fix.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels["mno.sh/result"] != "drift" || cm.Labels["mno.sh/drift"] != "true" || cm.Labels["node.mno.sh/vps-1"] != "drift" {
		t.Errorf("drift record labels: %v", cm.Labels)
	}
	if _, ok := cm.Labels["node.mno.sh/vps-2"]; ok {
		t.Errorf("vps-2 (unchanged) is labelled on the drift record: %v", cm.Labels)
	}
	if fix.rec.Drift["vps-1"] == nil || fix.rec.Drift["vps-1"][0] != routesPath {
		t.Errorf("record drift: %v", fix.rec.Drift)
	}
	evs, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,involvedObject.name=vps-1,reason=MnoDrift"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.Items {
		if strings.Contains(ev.Message, fix.rec.RunID) && strings.Contains(ev.Message, routesPath) && ev.Type == corev1.EventTypeWarning {
			found = true
		}
	}
	if !found {
		t.Errorf("no MnoDrift Warning Event on Node vps-1 naming run %s and the file: %+v", fix.rec.RunID, evs.Items)
	}
	// A change of the cluster's state is not drift.
	e.setServices(map[string]any{"wiki": map[string]any{"subdomain": "wiki", "ip": "100.1.1.6", "port": 80, "public": true}})
	if r := e.runRecorded(history.Options{}, nil, "sync"); r.exit != 0 || r.rec == nil || len(r.rec.Drift) != 0 || strings.Contains(r.stderr, "drift") {
		t.Errorf("a sync after a services change: exit %d, drift %v\n%s", r.exit, r.rec, r.stderr)
	}
}

func renderRecord(rec *history.Record, diff bool, node string) string {
	var b bytes.Buffer
	history.Render(&b, rec, diff, node)
	return b.String()
}

// TestHistoryAndShowCLI: `mno history` lists the recorded runs, filtered
// by --node and --since; `mno show RUN` prints a run exactly as it printed
// its report, `--node` only that node's lines; bad input exits 1 naming it.
func TestHistoryAndShowCLI(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2")
	e.clearRecords()
	if r := e.runRecorded(history.Options{}, nil, "init", "cluster_name=home", "cluster_domain=home", "control_plane_ip=10.0.0.1"); r.name == "" {
		t.Fatal("init left no record")
	}
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	a1 := e.addVPSRecorded("vps-1")
	// Records are listed by their start, to the nanosecond; --since takes seconds.
	time.Sleep(1100 * time.Millisecond)
	cut := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(cut) + 10*time.Millisecond)
	a2 := e.addVPSRecorded("vps-2")

	out, _, code := mnoCLI(t, e, "history")
	if code != 0 || !strings.HasPrefix(out, "RUN ") {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Errorf("history lists %d runs, want 3 (init, 2× add-vps):\n%s", len(lines)-1, out)
	}
	if !strings.Contains(lines[2], a1.rec.RunID) || !strings.Contains(lines[3], a2.rec.RunID) || !strings.Contains(lines[3], "vps-2=changed") {
		t.Errorf("history, oldest first, with the nodes:\n%s", out)
	}
	out, _, _ = mnoCLI(t, e, "history", "--node", "vps-1")
	if !strings.Contains(out, a1.rec.RunID) || strings.Contains(out, a2.rec.RunID) || strings.Count(strings.TrimSpace(out), "\n") != 1 {
		t.Errorf("history --node vps-1: want only %s:\n%s", a1.rec.RunID, out)
	}
	out, _, _ = mnoCLI(t, e, "history", "--since", cut.Format(time.RFC3339))
	if strings.Contains(out, a1.rec.RunID) || !strings.Contains(out, a2.rec.RunID) {
		t.Errorf("history --since %s: want only %s:\n%s", cut.Format(time.RFC3339), a2.rec.RunID, out)
	}
	out, _, _ = mnoCLI(t, e, "history", "--since", "1h", "--node", "vps-2")
	if !strings.Contains(out, a2.rec.RunID) || strings.Contains(out, a1.rec.RunID) {
		t.Errorf("history --since 1h --node vps-2:\n%s", out)
	}
	if _, stderr, code := mnoCLI(t, e, "history", "--node", "nobody"); code != 0 || !strings.Contains(stderr, "no recorded runs") {
		t.Errorf("history --node nobody: exit %d %s", code, stderr)
	}
	for _, bad := range []string{"yesterday", "-5h", "2026-13-01T00:00:00Z", "1h; rm -rf /"} {
		if _, stderr, code := mnoCLI(t, e, "history", "--since", bad); code != 1 || !strings.Contains(stderr, "--since") {
			t.Errorf("history --since %q: exit %d, want 1 naming --since:\n%s", bad, code, stderr)
		}
	}

	// show prints the report as the run printed it.
	out, stderr, code := mnoCLI(t, e, "show", a2.rec.RunID)
	header, body, _ := strings.Cut(out, "\n")
	if code != 0 || !strings.HasPrefix(header, "# run "+a2.rec.RunID+": ") || !strings.Contains(header, "add-vps.star (sha256 ") || body != a2.stderr {
		t.Errorf("show %s: exit %d %s\n--- header\n%s\n--- shown\n%s\n--- the run printed\n%s", a2.rec.RunID, code, stderr, header, body, a2.stderr)
	}
	// The ConfigMap's name and lower case work too.
	if out2, _, _ := mnoCLI(t, e, "show", strings.ToLower(a2.name)); out2 != out {
		t.Errorf("show by ConfigMap name differs:\n%s", out2)
	}
	out, _, code = mnoCLI(t, e, "show", a2.rec.RunID, "--node", "vps-2")
	if code != 0 || !strings.Contains(out, "[vps-2] put "+routesPath) || strings.Contains(out, "[cluster]") {
		t.Errorf("show --node vps-2: exit %d\n%s", code, out)
	}
	if _, stderr, code := mnoCLI(t, e, "show", a2.rec.RunID, "--node", "vps-1"); code != 1 || !strings.Contains(stderr, "did not touch node vps-1") {
		t.Errorf("show --node of an untouched node: exit %d %s", code, stderr)
	}
	for _, bad := range []string{"20990101T000000-abcdef", "../../etc", "", strings.Repeat("x", 300)} {
		if _, stderr, code := mnoCLI(t, e, "show", bad); code != 1 || !strings.Contains(stderr, "show:") {
			t.Errorf("show %q: exit %d, want 1:\n%s", bad, code, stderr)
		}
	}
}

// TestRecordEventOnNode: a run that changes a node creates an Event
// (reason MnoRun) on its Node object naming the run, and one on each
// ConfigMap it changed; a node the run did not change gets none.
func TestRecordEventOnNode(t *testing.T) {
	e := newEnv(t, "vps-1")
	e.clearRecords()
	e.initCluster("10.0.0.1")
	for _, n := range []string{"vps-1", "vps-9"} {
		if _, err := e.client.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := e.addVPSRecorded("vps-1")
	evs, err := e.client.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,reason=MnoRun"})
	if err != nil {
		t.Fatal(err)
	}
	var onNode []string
	for _, ev := range evs.Items {
		if strings.Contains(ev.Message, r.rec.RunID) {
			onNode = append(onNode, ev.InvolvedObject.Name)
			if !strings.Contains(ev.Message, "add-vps") || ev.Source.Component != "mno" || ev.Type != corev1.EventTypeNormal {
				t.Errorf("Event on %s: %+v", ev.InvolvedObject.Name, ev)
			}
		}
	}
	if strings.Join(onNode, ",") != "vps-1" {
		t.Errorf("MnoRun Events of run %s are on %v, want vps-1 only", r.rec.RunID, onNode)
	}
	evs, err = e.client.CoreV1().Events("kube-system").List(e.ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=ConfigMap,involvedObject.name=sync-controller-registry,reason=MnoRun"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.Items {
		found = found || strings.Contains(ev.Message, r.rec.RunID)
	}
	if !found {
		t.Errorf("no MnoRun Event on ConfigMap kube-system/sync-controller-registry naming run %s: %+v", r.rec.RunID, evs.Items)
	}
}

// writeWorkspace makes a workspace with one playbook; it returns its root.
func writeWorkspace(t *testing.T, name, src string) string {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o700)
	os.MkdirAll(filepath.Join(root, "playbooks"), 0o700)
	writeFile(t, filepath.Join(root, "playbooks", name+".star"), src)
	return root
}

// TestRunRecordBounded: a run whose diffs are far over the limit leaves a
// record under 900 KiB whose diffs are cut with an explicit marker; the
// retention ($MNO_HISTORY_KEEP) removes the oldest records first.
func TestRunRecordBounded(t *testing.T) {
	e := newEnv(t)
	e.clearRecords()
	root := writeWorkspace(t, "big", `
def main(ctx, data = "", n = "0"):
    for i in range(2):
        kube.configmap.apply("mno-test-big-%d" % i, {"data": local.read(data), "n": n})
`)
	// Two ConfigMaps of 700 KB of random text each: 1.4 MB of diff that
	// gzip cannot shrink under the limit.
	raw := make([]byte, 520<<10)
	rand.Read(raw)
	enc := base64.StdEncoding.EncodeToString(raw)
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	dataFile := filepath.Join(root, "big.txt")
	// World-readable, or local.read would take it for a secret.
	if err := os.WriteFile(dataFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.runRecordedIn(root, e.kubeconfig, history.Options{}, nil, "big", "data="+dataFile)
	if r.exit != 0 || r.name == "" {
		t.Fatalf("big run: exit %d, record %q", r.exit, r.name)
	}
	cm, err := e.client.CoreV1().ConfigMaps(history.Namespace).Get(e.ctx, r.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cm.BinaryData[history.DataKey]); n > history.MaxBytes {
		t.Errorf("record of %d bytes, over %d", n, history.MaxBytes)
	}
	rec, err := e.store().Get(e.ctx, r.rec.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Cut == "" || !strings.Contains(rec.Cut, "diff(s) cut") {
		t.Errorf("record.cut = %q, want what was cut", rec.Cut)
	}
	shown := renderRecord(rec, true, "")
	if strings.Count(shown, history.CutMarker) < 2 || !strings.Contains(shown, "RECAP") {
		t.Errorf("the shown record lacks the cut markers or the recap:\n%.3000s", shown)
	}

	// Retention: keep 3, oldest removed first.
	keep := func(k string) string {
		if k == "MNO_HISTORY_KEEP" {
			return "3"
		}
		return ""
	}
	small := filepath.Join(root, "small.txt")
	os.WriteFile(small, []byte("x\n"), 0o644)
	// MNO_HISTORY_KEEP=0 turns records off: none written, no warning.
	off := e.runRecordedIn(root, e.kubeconfig, history.Options{}, func(k string) string {
		if k == "MNO_HISTORY_KEEP" {
			return "0"
		}
		return ""
	}, "big", "data="+small, "n=off")
	if off.exit != 0 || off.name != "" || strings.Contains(off.stderr, "warning") {
		t.Errorf("MNO_HISTORY_KEEP=0: exit %d, record %q\n%s", off.exit, off.name, off.stderr)
	}
	var ids []string
	for i := range 4 {
		r := e.runRecordedIn(root, e.kubeconfig, history.Options{}, keep, "big", "data="+small, "n="+string(rune('1'+i)))
		if r.name == "" {
			t.Fatalf("run %d left no record", i)
		}
		ids = append(ids, r.name)
	}
	var left []string
	for _, cm := range e.records() {
		left = append(left, cm.Name)
	}
	sort.Strings(left)
	newest := append([]string(nil), ids[1:]...)
	sort.Strings(newest)
	want := strings.Join(newest, ",")
	if strings.Join(left, ",") != want {
		t.Errorf("after 5 runs with MNO_HISTORY_KEEP=3 the records are %v, want the 3 newest %v", left, want)
	}
	// A bad MNO_HISTORY_KEEP is one warning naming it, the run succeeds.
	bad := e.runRecordedIn(root, e.kubeconfig, history.Options{}, func(k string) string {
		if k == "MNO_HISTORY_KEEP" {
			return "-1"
		}
		return ""
	}, "big", "data="+small, "n=9")
	if bad.exit != 0 || !strings.Contains(bad.stderr, `MNO_HISTORY_KEEP="-1" is not a number of records to keep`) {
		t.Errorf("bad MNO_HISTORY_KEEP: exit %d\n%s", bad.exit, bad.stderr)
	}
}

// TestRecordWithoutCluster: a run that changes something without a
// reachable cluster still works: exit 0, one warning line, no record.
func TestRecordWithoutCluster(t *testing.T) {
	e := newEnv(t)
	root := writeWorkspace(t, "touch", `
def main(ctx, path = ""):
    local.run(["touch", path])
`)
	dead := filepath.Join(t.TempDir(), "kubeconfig")
	writeFile(t, dead, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`)
	for _, kc := range []string{filepath.Join(t.TempDir(), "missing"), dead} {
		target := filepath.Join(t.TempDir(), "touched")
		r := e.runRecordedIn(root, kc, history.Options{}, nil, "touch", "path="+target)
		if r.exit != 0 || r.name != "" || r.rec == nil {
			t.Errorf("kubeconfig %s: exit %d, record %q", kc, r.exit, r.name)
		}
		if _, err := os.Stat(target); err != nil {
			t.Errorf("the run did not run: %v", err)
		}
		if n := strings.Count(r.stderr, "warning: "); n != 1 || !strings.Contains(r.stderr, "warning: run "+r.rec.RunID+" not recorded in the cluster: ") {
			t.Errorf("kubeconfig %s: want one warning line, got %d:\n%s", kc, n, r.stderr)
		}
	}
}

// TestRecordRedactsSecrets: a secret the run read after its start (so the
// live run_start could not know it) is redacted everywhere in the record —
// parameters, command lines, output — by the run's final redactor.
func TestRecordRedactsSecrets(t *testing.T) {
	e := newEnv(t)
	e.clearRecords()
	root := writeWorkspace(t, "leak", `
def main(ctx, token_file = "", echo = ""):
    tok = local.read(token_file)
    local.run(["sh", "-c", "echo " + echo])
    print("said " + echo)
`)
	const tok = "tok-5up3r-s3cr3t-ünï"
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.runRecordedIn(root, e.kubeconfig, history.Options{}, nil, "leak", "token_file="+tokFile, "echo="+tok)
	if r.exit != 0 || r.name == "" {
		t.Fatalf("exit %d, record %q", r.exit, r.name)
	}
	rec, err := e.store().Get(e.ctx, r.rec.RunID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) || strings.Contains(string(raw), "5up3r") {
		t.Errorf("the record holds the secret:\n%s", raw)
	}
	if rec.Params["echo"] != "<redacted>" || !strings.Contains(renderRecord(rec, false, ""), "echo <redacted>") {
		t.Errorf("params %v; shown:\n%s", rec.Params, renderRecord(rec, false, ""))
	}
}

// TestDriftHostsBlock: a hand edit inside mno's /etc/hosts block on a
// laptop is drift of /etc/hosts (found by a dry run, which writes nothing,
// and put back by the sync); an edit outside the block is the owner's and
// not drift.
func TestDriftHostsBlock(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2", "laptop-1")
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	addNodesWithKubeconfig(t, e)
	e.mustRun("sync")
	l := e.host("laptop-1")
	good := readFile(t, l, "/etc/hosts")
	if !strings.Contains(good, "100.1.1.5\tblog.home.local") {
		t.Fatalf("no blog line in the block:\n%s", good)
	}
	drift := func(dry bool) (map[string][]string, int) {
		var stderr bytes.Buffer
		res := engine.Run(e.ctx, engine.Options{Playbook: "sync", DryRun: dry, Timeout: 5 * time.Minute,
			Config:   runctx.Config{Home: e.home, Identity: e.identity, Kubeconfig: e.kubeconfig, Getenv: func(string) string { return "" }},
			Embedded: mno.Files, Stderr: &stderr})
		t.Logf("sync (dry %v) → exit %d\n%s", dry, res.Exit, stderr.String())
		return res.Drift, res.Exit
	}

	// Outside the block: the owner's line, not drift, left alone.
	own := good + "192.0.2.7\tmy-printer\n"
	l.WriteFile("/etc/hosts", []byte(own), 0o644)
	if d, code := drift(true); code != 0 || len(d) != 0 {
		t.Errorf("an edit outside mno's block: drift %v, exit %d", d, code)
	}
	// Inside the block: drift.
	edited := strings.Replace(own, "100.1.1.5\tblog.home.local", "203.0.113.66\tblog.home.local", 1)
	l.WriteFile("/etc/hosts", []byte(edited), 0o644)
	if d, _ := drift(true); strings.Join(d["laptop-1"], ",") != "/etc/hosts" || len(d) != 1 {
		t.Errorf("dry run after an edit in the block: drift %v, want laptop-1: /etc/hosts", d)
	}
	if readFile(t, l, "/etc/hosts") != edited {
		t.Error("the dry run wrote /etc/hosts")
	}
	if d, code := drift(false); code != 0 || strings.Join(d["laptop-1"], ",") != "/etc/hosts" {
		t.Errorf("sync: drift %v exit %d", d, code)
	}
	if got := readFile(t, l, "/etc/hosts"); got != own {
		t.Errorf("the sync did not put the block back (keeping the owner's line):\n%s", got)
	}
}

// TestRecordNamespace: records go to their own namespace, mno-history, not kube-system; a
// record written with an admin kubeconfig creates its namespace when it is missing (labelled
// as mno's); an identity that may not create it gets an error naming `mno install systemd` /
// `mno install kubernetes`, and nothing is created; a record an earlier mno left in
// kube-system is still listed by `mno history` (with a note giving the kubectl command that
// deletes it) and printed by `mno show`, and pruning never touches it.
func TestRecordNamespace(t *testing.T) {
	e := newEnv(t)
	e.clearRecords()
	t.Cleanup(e.clearRecords)
	root := writeWorkspace(t, "touch", `
def main(ctx, n = ""):
    kube.configmap.apply("mno-test-record-ns", {"n": n})
`)
	keep1 := func(k string) string {
		if k == "MNO_HISTORY_KEEP" {
			return "1"
		}
		return ""
	}
	// A run's record, moved to kube-system as an earlier mno kept it.
	old := e.runRecordedIn(root, e.kubeconfig, history.Options{}, keep1, "touch", "n=old")
	if old.exit != 0 || old.name == "" {
		t.Fatalf("exit %d, record %q", old.exit, old.name)
	}
	if got := e.records(); len(got) != 1 || got[0].Name != old.name || got[0].Namespace != "mno-history" {
		t.Fatalf("records in %s: %v, want %s", history.Namespace, got, old.name)
	}
	if got := e.legacyRecords(); len(got) != 0 {
		t.Fatalf("a record in kube-system: %s", got[0].Name)
	}
	admin := kubeapitest.KClient(t, kubeapitest.Server(t))
	if _, err := (&history.Store{Client: admin, Namespace: history.LegacyNamespace}).Write(e.ctx, old.rec); err != nil {
		t.Fatal(err)
	}
	if err := e.client.CoreV1().ConfigMaps(history.Namespace).Delete(e.ctx, old.name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Two runs keeping one record: the second prunes the first, in mno-history only.
	var last recorded
	for _, n := range []string{"1", "2"} {
		last = e.runRecordedIn(root, e.kubeconfig, history.Options{}, keep1, "touch", "n="+n)
		if last.exit != 0 || last.name == "" || strings.Contains(last.stderr, "warning") {
			t.Fatalf("run n=%s: exit %d, record %q\n%s", n, last.exit, last.name, last.stderr)
		}
	}
	if got := e.records(); len(got) != 1 || got[0].Name != last.name {
		t.Errorf("records in %s after pruning to 1: %d, want only %s", history.Namespace, len(got), last.name)
	}
	if got := e.legacyRecords(); len(got) != 1 || got[0].Name != old.name {
		t.Errorf("pruning touched kube-system: records there %d, want %s", len(got), old.name)
	}

	// mno history lists both, oldest first, with a note on the legacy one; mno show prints it.
	out, stderr, code := mnoCLI(t, e, "history")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], old.rec.RunID) || !strings.HasPrefix(lines[2], last.rec.RunID) {
		t.Errorf("history: exit %d, want the legacy run %s then %s:\n%s", code, old.rec.RunID, last.rec.RunID, out)
	}
	if !strings.Contains(stderr, "note: 1 of these records are in kube-system") ||
		!strings.Contains(stderr, "`kubectl delete configmap -n kube-system -l mno.sh/record=run` deletes them") {
		t.Errorf("history: no note on the legacy record and how to delete it:\n%s", stderr)
	}
	out, stderr, code = mnoCLI(t, e, "show", old.rec.RunID)
	if header, body, _ := strings.Cut(out, "\n"); code != 0 || !strings.HasPrefix(header, "# run "+old.rec.RunID+": ") || body != old.stderr {
		t.Errorf("show of the legacy record: exit %d %s\n%s", code, stderr, out)
	}
	if _, stderr, code := mnoCLI(t, e, "show", "20990101T000000-abcdef"); code != 1 ||
		!strings.Contains(stderr, "no ConfigMap mno-history/mno-run-20990101t000000-abcdef nor kube-system/mno-run-20990101t000000-abcdef") {
		t.Errorf("show of a missing run: exit %d, want both namespaces named:\n%s", code, stderr)
	}

	// A missing namespace: created by an admin's record, labelled as mno's.
	fresh := "mno-history-e2e-" + strings.ToLower(last.rec.RunID[len(last.rec.RunID)-6:])
	name, err := (&history.Store{Client: admin, Namespace: fresh}).Write(e.ctx, last.rec)
	if err != nil {
		t.Fatalf("record into the missing namespace %s: %v", fresh, err)
	}
	ns, err := e.client.CoreV1().Namespaces().Get(e.ctx, fresh, metav1.GetOptions{})
	if err != nil || ns.Labels["app.kubernetes.io/managed-by"] != "mno" {
		t.Errorf("namespace %s: %v %v", fresh, err, ns)
	}
	if _, err := e.client.CoreV1().ConfigMaps(fresh).Get(e.ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("record %s/%s: %v", fresh, name, err)
	}
	// …refused to an identity without the rights (mno's own): the error says how to install it.
	kc, err := kubeapitest.Server(t).UserKubeconfig("mno-e2e-no-rights")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := kclient.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	missing := fresh + "-x"
	_, err = (&history.Store{Client: weak, Namespace: missing}).Write(e.ctx, last.rec)
	if err == nil || !strings.Contains(err.Error(), "forbidden") ||
		!strings.Contains(err.Error(), "creating the namespace "+missing) ||
		!strings.Contains(err.Error(), "`mno install systemd` (or `mno install kubernetes`) creates it with mno's Role there") {
		t.Errorf("a record without the rights to the missing namespace: %v", err)
	}
	if _, err := e.client.CoreV1().Namespaces().Get(e.ctx, missing, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s exists after a refused record: %v", missing, err)
	}
}
