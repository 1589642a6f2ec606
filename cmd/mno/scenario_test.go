package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestStockScenarios runs `mno test` on the scenarios shipped with the stock
// roles (roles/*_test.star), each in a fresh lab: every one passes, the
// second runs change nothing, and the JUnit report says so.
func TestStockScenarios(t *testing.T) {
	requireLab(t)
	root, _ := filepath.Abs("../..")
	junit := filepath.Join(t.TempDir(), "junit.xml")
	stdout, stderr, code := mnoRun(t, root, "", nil, "test", "--junit", junit)
	if code != 0 {
		t.Fatalf("mno test: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("mno test:\n%s", stdout)
	for _, s := range []string{"laptop", "sync", "vps", "worker"} {
		if !regexp.MustCompile(`(?m)^ok +roles/` + s + `_test\.star +[0-9hms.]+ \([1-9][0-9]* test\(s\)\)$`).MatchString(stdout) {
			t.Errorf("no ok line for roles/%s_test.star", s)
		}
	}
	if !strings.Contains(stdout, "ok: 4 scenario(s) passed") {
		t.Errorf("no summary line:\n%s", stdout)
	}
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		t.Fatalf("JUnit report: %v\n%s", err, data)
	}
	if len(report.Suites) != 4 || report.Failures != 0 || report.Tests < 4*4 {
		t.Errorf("JUnit report: %d suites, %d tests, %d failures", len(report.Suites), report.Tests, report.Failures)
	}
	for _, s := range report.Suites {
		names := fmt.Sprint(s.Cases)
		if !strings.Contains(names, "second run changes nothing") || !strings.Contains(names, "test_") {
			t.Errorf("suite %s lacks the second run or test_ cases: %s", s.Name, names)
		}
	}
}

// TestNonIdempotentRole: a customised vps role that writes a timestamp into
// the routes file makes `mno test` fail, naming the file:line of the put and
// the file it changed on the second run.
func TestNonIdempotentRole(t *testing.T) {
	requireLab(t)
	ws := t.TempDir()
	roles := filepath.Join(ws, "roles")
	if err := os.CopyFS(roles, os.DirFS("../../roles")); err != nil {
		t.Fatal(err)
	}
	vps := filepath.Join(roles, "vps.star")
	data, err := os.ReadFile(vps)
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	const stable = "    text = traefik.routes_file(routes)\n"
	if !strings.Contains(src, stable) {
		t.Fatalf("roles/vps.star no longer has %q", stable)
	}
	// The same line count, so positions stay.
	src = strings.Replace(src, stable, "    text = traefik.routes_file(routes) + \"# pushed at %s\\n\" % time.now()\n", 1)
	if err := os.WriteFile(vps, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Starlark places a call at its opening parenthesis.
	line, col := position(src, "(traefik.ROUTES_PATH")

	stdout, stderr, code := mnoRun(t, ws, "", nil, "test", "roles/vps_test.star")
	if code != 1 {
		t.Fatalf("mno test of a non-idempotent role: exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	want := fmt.Sprintf("roles/vps.star:%d:%d: put /etc/traefik/dynamic/mno-routes.yml (sudo) changed on the second run", line, col)
	if !strings.Contains(stdout, want) || !regexp.MustCompile(`(?m)^FAIL +roles/vps_test\.star`).MatchString(stdout) {
		t.Errorf("mno test output lacks %q:\n%s", want, stdout)
	}
	if !strings.Contains(stdout, "+# pushed at ") {
		t.Errorf("the failure does not show the diff:\n%s", stdout)
	}
}

// position returns the 1-based line and column of the first s in src.
func position(src, s string) (int, int) {
	i := strings.Index(src, s)
	if i < 0 {
		return 0, 0
	}
	before := src[:i]
	return strings.Count(before, "\n") + 1, i - strings.LastIndex(before, "\n")
}

// TestScenarioReuse: `mno test --reuse` runs every scenario in one named lab
// and leaves it up; between scenarios the ConfigMaps are reset (what one
// scenario registered is gone for the next) and the nodes are not (a file
// one scenario wrote on a node is still there).
func TestScenarioReuse(t *testing.T) {
	requireLab(t)
	ws := t.TempDir()
	for name, src := range map[string]string{
		"a_test.star": `
vps = lab.node("vps-1")
PLAYBOOKS = []

def test_mark_cluster_and_node():
    kube.configmap.update("service-registry", lambda d: dict(d, marker = "from a"))
    h = ssh.connect(vps.addr, user = lab.user, host_key = vps.host_key)
    h.put("/srv/marker", "from a\n", sudo = True)
`,
		"b_test.star": `
vps = lab.node("vps-1")
PLAYBOOKS = []

def test_cluster_reset_node_kept():
    assert.true("marker" not in kube.configmap.get("service-registry"), "the ConfigMaps were reset")
    h = ssh.connect(vps.addr, user = lab.user, host_key = vps.host_key)
    assert.eq(h.get("/srv/marker"), "from a\n")
`,
	} {
		if err := os.MkdirAll(filepath.Join(ws, "playbooks"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, "playbooks", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	name := randomName("reuse-")
	t.Cleanup(func() { mnoRun(t, ws, "", nil, "lab", "down", "--name", name) })
	stdout, stderr, code := mnoRun(t, ws, "", nil, "test", "--reuse", "--name", name, "--workers", "0", "--laptops", "0")
	if code != 0 {
		t.Fatalf("mno test --reuse: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "ok: 2 scenario(s) passed") {
		t.Errorf("mno test --reuse did not pass both scenarios:\n%s", stdout)
	}
	if _, stderr, code := mnoRun(t, ws, "", nil, "lab", "status", "--name", name); code != 0 {
		t.Errorf("the reused lab %s is not up after mno test: exit %d\n%s", name, code, stderr)
	}
	// Without --reuse, each scenario gets a fresh lab: b sees no marker file.
	stdout, _, code = mnoRun(t, ws, "", nil, "test", "--workers", "0", "--laptops", "0")
	if code != 1 || !regexp.MustCompile(`(?m)^FAIL +playbooks/b_test\.star`).MatchString(stdout) {
		t.Errorf("fresh labs per scenario: exit %d, want b_test to fail (no marker on a fresh node):\n%s", code, stdout)
	}
}
