package e2e

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/history"
	"github.com/mno-sh/mno/plan"
)

const testVersion = "mno test"

func (e *env) options(root, playbook string, params ...string) engine.Options {
	return engine.Options{Playbook: playbook, Params: params, Root: root, ShowDiff: true, Timeout: 5 * time.Minute,
		Config:   runctx.Config{Home: e.home, Identity: e.identity, Kubeconfig: e.kubeconfig, Getenv: func(string) string { return "" }},
		Embedded: mno.Files}
}

// makePlan saves a plan of playbook as `mno run --plan-out` does.
func (e *env) makePlan(root, playbook string, params ...string) (*plan.Plan, string) {
	e.t.Helper()
	key, err := plan.Key(e.home, true)
	if err != nil {
		e.t.Fatal(err)
	}
	var stderr bytes.Buffer
	o := e.options(root, playbook, params...)
	o.Stderr, o.Stdout = &stderr, &stderr
	p, _, err := plan.Make(e.ctx, o, testVersion, key)
	e.t.Logf("plan %s:\n%s", playbook, stderr.String())
	if err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.t.TempDir(), "plan.json")
	if err := plan.Write(path, p); err != nil {
		e.t.Fatal(err)
	}
	return p, path
}

// applied are the writes a run performed, as "[target] kind desc".
type applied struct {
	starts map[int]journal.Event
	list   []string
}

func (a *applied) Event(e journal.Event) {
	switch e.Type {
	case "effect_start":
		if a.starts == nil {
			a.starts = map[int]journal.Event{}
		}
		a.starts[e.ID] = e
	case "effect_end":
		if s := a.starts[e.ID]; s.Write && e.Changed != nil && *e.Changed && !e.Simulated {
			a.list = append(a.list, "["+e.Target+"] "+e.Kind+" "+s.Desc)
		}
	}
}

// applyPlan applies the plan file as `mno apply` does; it returns the
// writes performed and the refusal (nil when applied).
func (e *env) applyPlan(path string) ([]string, error, engine.Result) {
	e.t.Helper()
	p, err := plan.Read(path)
	if err != nil {
		e.t.Fatal(err)
	}
	key, _ := plan.Key(e.home, false)
	var stderr bytes.Buffer
	o := e.options("", "")
	o.Stderr, o.Stdout = &stderr, &stderr
	if err := plan.Check(e.ctx, p, o, testVersion, key); err != nil {
		e.t.Logf("apply refused: %v", err)
		return nil, err, engine.Result{}
	}
	a := &applied{}
	o.Observers = []journal.Observer{a}
	res, _, _ := history.Run(e.ctx, p.Options(o), history.Options{})
	e.t.Logf("apply → exit %d\n%s", res.Exit, stderr.String())
	return a.list, nil, res
}

func planned(p *plan.Plan) []string {
	var out []string
	for _, ef := range p.Effects {
		out = append(out, "["+ef.Target+"] "+ef.Kind+" "+ef.Desc)
	}
	return out
}

// TestSavedPlan: `mno apply` of a saved plan of sync performs exactly the
// planned effects (a routes file per VPS, the registry's status) with
// their preconditions recorded; applied once, the same plan is refused
// (its files are no longer as planned).
func TestSavedPlan(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2")
	e.clearRecords()
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	e.addVPSRecorded("vps-1")
	e.addVPSRecorded("vps-2")
	e.setServices(map[string]any{
		"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true},
		"wiki": map[string]any{"subdomain": "wiki", "ip": "100.1.1.6", "port": 80, "public": true},
	})
	before := map[string]string{}
	for _, v := range []string{"vps-1", "vps-2"} {
		before[v] = readFile(t, e.host(v), routesPath)
	}
	p, path := e.makePlan("", "sync")
	for _, v := range []string{"vps-1", "vps-2"} {
		if readFile(t, e.host(v), routesPath) != before[v] {
			t.Fatalf("making the plan changed %s", v)
		}
	}
	want := []string{"[cluster] configmap.update_json kube-system/sync-controller-registry[registry.json]",
		"[vps-1] put " + routesPath, "[vps-2] put " + routesPath}
	got := planned(p)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("planned effects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, ef := range p.Effects {
		switch {
		case ef.Target == "cluster" && !strings.HasPrefix(ef.Pre, "resourceVersion:"),
			ef.Target != "cluster" && !strings.HasPrefix(ef.Pre, "sha256:"),
			ef.Target != "cluster" && !strings.Contains(ef.Diff, "wiki.example.test"):
			t.Errorf("effect %s: pre %q diff\n%s", ef, ef.Pre, ef.Diff)
		}
	}
	if p.Mno != testVersion || len(p.PlaybookSHA256) != 64 || p.Display == "" {
		t.Errorf("plan header: %+v", p)
	}

	done, err, res := e.applyPlan(path)
	if err != nil || res.Exit != 0 {
		t.Fatalf("apply: %v, exit %d", err, res.Exit)
	}
	sort.Strings(done)
	if strings.Join(done, "\n") != strings.Join(want, "\n") {
		t.Errorf("applied:\n%s\nplanned:\n%s", strings.Join(done, "\n"), strings.Join(want, "\n"))
	}
	for _, v := range []string{"vps-1", "vps-2"} {
		if r := readFile(t, e.host(v), routesPath); !strings.Contains(r, "wiki.example.test") {
			t.Errorf("%s not updated:\n%s", v, r)
		}
	}
	// The same plan again: every effect is done already.
	_, err, _ = e.applyPlan(path)
	var refused *plan.RefusedError
	if !errors.As(err, &refused) || len(refused.Reasons) != 3 {
		t.Errorf("a plan applied twice: %v", err)
	}
}

// TestSavedPlanRefused: when the routes file of one VPS changed between
// plan and apply, `mno apply` refuses the whole plan naming that effect,
// exits 1 and changes nothing on any node or in the cluster.
func TestSavedPlanRefused(t *testing.T) {
	e := newEnv(t, "vps-1", "vps-2")
	e.clearRecords()
	e.initCluster("10.0.0.1")
	e.setServices(map[string]any{"blog": map[string]any{"subdomain": "blog", "ip": "100.1.1.5", "port": 80, "public": true}})
	e.addVPSRecorded("vps-1")
	e.addVPSRecorded("vps-2")
	e.setServices(map[string]any{"wiki": map[string]any{"subdomain": "wiki", "ip": "100.1.1.6", "port": 80, "public": true}})
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if _, stderr, code := mnoCLI(t, e, "run", "--plan-out", planFile, "sync"); code != 0 || !strings.Contains(stderr, "plan: 3 effect(s) saved to "+planFile) {
		t.Fatalf("run --plan-out: exit %d\n%s", code, stderr)
	}
	h1 := e.host("vps-1")
	edited := readFile(t, h1, routesPath) + "# edited between plan and apply\n"
	h1.WriteFile(routesPath, []byte(edited), 0o644)
	v2 := readFile(t, e.host("vps-2"), routesPath)
	reg := e.configMap("sync-controller-registry")["registry.json"]
	records := len(e.records())

	_, stderr, code := mnoCLI(t, e, "apply", planFile)
	if code != 1 || !strings.Contains(stderr, "plan refused, nothing changed (1 reason(s))") ||
		!strings.Contains(stderr, "[vps-1] put "+routesPath) || !strings.Contains(stderr, "changed since the plan: it was sha256:") {
		t.Errorf("apply after an edit of vps-1's routes: exit %d, want 1 naming the effect:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "[vps-2] put") {
		t.Errorf("the refusal names vps-2, which did not change:\n%s", stderr)
	}
	if readFile(t, h1, routesPath) != edited || readFile(t, e.host("vps-2"), routesPath) != v2 {
		t.Error("a refused plan changed a routes file")
	}
	if e.configMap("sync-controller-registry")["registry.json"] != reg || len(e.records()) != records {
		t.Error("a refused plan changed the registry or wrote a record")
	}
	// Hostile plan files are refused before anything runs.
	bad := filepath.Join(t.TempDir(), "bad.json")
	for _, content := range []string{"", "{", `{"v": 99, "playbook": "sync", "playbook_sha256": "x"}`, `{"v": 1}`, "[]"} {
		os.WriteFile(bad, []byte(content), 0o600)
		if _, stderr, code := mnoCLI(t, e, "apply", bad); code != 1 || !strings.Contains(stderr, "apply: ") {
			t.Errorf("apply of %q: exit %d\n%s", content, code, stderr)
		}
	}
}

// TestSavedPlanSecret: a secret the playbook writes is not in the plan
// file (only an HMAC of it); apply re-reads it where the playbook reads it;
// a secret changed between plan and apply refuses the plan.
func TestSavedPlanSecret(t *testing.T) {
	e := newEnv(t, "app-1")
	e.clearRecords()
	h := e.host("app-1")
	root := writeWorkspace(t, "token", `
def main(ctx, address = "", host_key = "", token_file = ""):
    tok = local.read(token_file)
    h = ssh.connect(address, host_key = host_key, name = "app-1")
    h.put("/etc/app-token", tok, mode = 0o600)
`)
	tokFile := filepath.Join(t.TempDir(), "token")
	const tok = "s3cr3t-Token-ünï-value-0123456789"
	if err := os.WriteFile(tokFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	params := []string{"address=" + h.Addr, "host_key=" + h.HostKey, "token_file=" + tokFile}
	p, path := e.makePlan(root, "token", params...)
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte("s3cr3t")) {
		t.Fatalf("the plan file holds the secret:\n%s", raw)
	}
	if p.SecretsHMAC == "" || len(p.Effects) != 1 {
		t.Fatalf("plan: secrets_hmac %q, effects %v", p.SecretsHMAC, planned(p))
	}
	if fi, err := os.Stat(filepath.Join(e.home, plan.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("plan key: %v %v", fi, err)
	}

	// The secret changed since: refused, nothing written.
	os.WriteFile(tokFile, []byte(tok+"-rotated"), 0o600)
	_, err, _ := e.applyPlan(path)
	if err == nil || !strings.Contains(err.Error(), "a secret the run reads changed since the plan") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("apply with a rotated secret: %v", err)
	}
	if _, err := h.Stat("/etc/app-token"); err == nil {
		t.Error("a refused plan wrote the token")
	}
	// As planned: applied, the secret re-read from its file.
	os.WriteFile(tokFile, []byte(tok), 0o600)
	done, err, res := e.applyPlan(path)
	if err != nil || res.Exit != 0 || len(done) != 1 {
		t.Fatalf("apply: %v exit %d %v", err, res.Exit, done)
	}
	if got := readFile(t, h, "/etc/app-token"); got != tok {
		t.Errorf("token on the host: %q", got)
	}
}
