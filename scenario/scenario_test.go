package scenario

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno"
	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/lab"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(scs []Scenario) []string {
	var out []string
	for _, s := range scs {
		out = append(out, s.Name)
	}
	return out
}

// TestFind: scenarios are *_test.star files in a workspace's playbooks/ and
// roles/ (not testdata or hidden directories), in any directory given, or
// embedded in mno.
func TestFind(t *testing.T) {
	ws := t.TempDir()
	for _, f := range []string{"roles/vps_test.star", "roles/vps.star", "roles/more/x_test.star", "playbooks/add_test.star",
		"roles/testdata/skip_test.star", "roles/.git/skip_test.star", "elsewhere/not_found_test.star"} {
		write(t, filepath.Join(ws, f), "PLAYBOOKS = []\n")
	}
	cases := []struct {
		target string
		want   []string
	}{
		{ws, []string{"playbooks/add_test.star", "roles/more/x_test.star", "roles/vps_test.star"}},
		{filepath.Join(ws, "roles", "vps_test.star"), []string{"roles/vps_test.star"}},
		// A directory that is not a workspace is searched whole; each file
		// finds its workspace.
		{filepath.Join(ws, "roles", "more"), []string{"roles/more/x_test.star"}},
	}
	for _, c := range cases {
		got, err := Find(c.target, mno.Files)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(names(got), c.want) {
			t.Errorf("Find(%s) = %v, want %v", c.target, names(got), c.want)
		}
		for _, s := range got {
			if s.Root != ws {
				t.Errorf("%s: root %q, want the workspace %s", s.Name, s.Root, ws)
			}
		}
	}
	if _, err := Find(filepath.Join(ws, "roles", "vps.star"), mno.Files); err == nil || !strings.Contains(err.Error(), "not a scenario") {
		t.Errorf("Find of a role: %v", err)
	}
	emb, err := Find("", mno.Files)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"embedded:roles/laptop_test.star", "embedded:roles/sync_test.star", "embedded:roles/vps_test.star", "embedded:roles/worker_test.star"}
	if !reflect.DeepEqual(names(emb), want) || emb[0].Path != "//roles/laptop_test.star" {
		t.Errorf("embedded scenarios: %v", emb)
	}
}

// TestToRun: PLAYBOOKS entries become `mno run` arguments; strings pass as
// they are, everything else as JSON; paths are relative to the scenario.
func TestToRun(t *testing.T) {
	sc := Scenario{Path: "/ws/roles/x_test.star", Root: "/ws"}
	labels := starlark.NewDict(1)
	labels.SetKey(starlark.String("zone"), starlark.String("lab"))
	params := starlark.NewDict(4)
	params.SetKey(starlark.String("name"), starlark.String("vps-1"))
	params.SetKey(starlark.String("port"), starlark.MakeInt(2222))
	params.SetKey(starlark.String("firewall"), starlark.False)
	params.SetKey(starlark.String("labels"), labels)
	cases := []struct {
		v        starlark.Value
		playbook string
		params   []string
		err      string
	}{
		{v: starlark.String("sync"), playbook: "sync"},
		{v: starlark.Tuple{starlark.String("add-vps"), params}, playbook: "add-vps",
			params: []string{"name=vps-1", "port:=2222", "firewall:=false", `labels:={"zone":"lab"}`}},
		{v: starlark.Tuple{starlark.String("../playbooks/mine.star"), starlark.NewDict(0)}, playbook: "/ws/playbooks/mine.star"},
		{v: starlark.Tuple{starlark.String("//playbooks/mine.star"), starlark.NewDict(0)}, playbook: "//playbooks/mine.star"},
		{v: starlark.MakeInt(3), err: "want (playbook, {params}) or a playbook name, got int"},
		{v: starlark.Tuple{starlark.String("sync")}, err: "want (playbook, {params}), got a tuple of 1"},
		{v: starlark.Tuple{starlark.String("sync"), starlark.NewList(nil)}, err: "got (string, list)"},
	}
	for _, c := range cases {
		r, err := toRun(sc, c.v)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("toRun(%s): %v, want %q", c.v, err, c.err)
			}
			continue
		}
		if err != nil || r.playbook != c.playbook || !reflect.DeepEqual(r.params, c.params) {
			t.Errorf("toRun(%s) = %+v, %v; want %s %v", c.v, r, err, c.playbook, c.params)
		}
	}
	emb := Scenario{Path: "//roles/x_test.star"}
	if r, _ := toRun(emb, starlark.String("./helper.star")); r.playbook != "//roles/helper.star" {
		t.Errorf("relative playbook of an embedded scenario: %s", r.playbook)
	}
}

// TestSecondRunFailure: an effect that changes on the second run fails with
// its position, kind, description, playbook and target; a failed run names
// its error.
func TestSecondRunFailure(t *testing.T) {
	dir := t.TempDir()
	book := filepath.Join(dir, "touch.star")
	write(t, book, "def main(ctx):\n    local.run([\"true\"])\n")
	broken := filepath.Join(dir, "broken.star")
	write(t, broken, "def main(ctx):\n    fail(\"no such luck\")\n")
	cl := &lab.Cluster{}
	o := Options{Embedded: mno.Files, Timeout: time.Minute}
	sc := Scenario{Path: filepath.Join(dir, "x_test.star"), Root: dir}
	var out bytes.Buffer
	if fails := runPlaybook(context.Background(), sc, o, cl, run{playbook: book}, false, &out); len(fails) != 0 {
		t.Errorf("first pass of a changing playbook: %v", fails)
	}
	fails := runPlaybook(context.Background(), sc, o, cl, run{playbook: book}, true, &out)
	want := "touch.star:2:14: run true changed on the second run (mno run " + book + ", target local)"
	if len(fails) != 1 || !strings.HasSuffix(fails[0], want) {
		t.Errorf("second pass: %q, want one ending in %q", fails, want)
	}
	fails = runPlaybook(context.Background(), sc, o, cl, run{playbook: broken}, false, &out)
	if len(fails) != 1 || !strings.Contains(fails[0], "exit 1") || !strings.Contains(fails[0], "no such luck") {
		t.Errorf("failing playbook: %q", fails)
	}
	if !strings.Contains(out.String(), "RECAP") {
		t.Errorf("the runs' reports are not kept:\n%s", out.String())
	}
}

// TestJUnit: the report has a suite per scenario, a case per step, failures
// with their first line as message, skipped steps, and the output.
func TestJUnit(t *testing.T) {
	results := []Result{
		{Scenario: Scenario{Name: "roles/a_test.star"}, Duration: 2 * time.Second, Output: "report a", Cases: []Case{
			{Name: CaseFirstRun, Duration: time.Second},
			{Name: CaseSecondRun, Failure: "roles/a.star:1:2: put /x changed on the second run\n  diff"},
			{Name: "test_x", Skipped: true},
		}},
		{Scenario: Scenario{Name: "roles/b_test.star"}, Cases: []Case{{Name: CaseFirstRun}, {Name: "test_y"}}},
	}
	if !results[0].Failed() || results[1].Failed() {
		t.Fatal("Failed() is wrong")
	}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, results); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Time  string `xml:"time,attr"`
			Out   string `xml:"system-out"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if doc.Tests != 5 || doc.Failures != 1 || doc.Skipped != 1 || len(doc.Suites) != 2 {
		t.Fatalf("counts: %+v\n%s", doc, buf.String())
	}
	a := doc.Suites[0]
	if a.Name != "roles/a_test.star" || a.Time != "2.000" || a.Out != "report a" || a.Cases[1].Failure == nil ||
		a.Cases[1].Failure.Message != "roles/a.star:1:2: put /x changed on the second run" || !strings.Contains(a.Cases[1].Failure.Text, "diff") ||
		a.Cases[2].Skipped == nil {
		t.Errorf("suite a: %+v", a)
	}
}

// TestCheckSeesLab: mno check resolves a scenario file with the lab global this
// package registers, and an ordinary role without it.
func TestCheckSeesLab(t *testing.T) {
	dir := t.TempDir()
	body := "def test_x():\n    lab.up()\n"
	write(t, filepath.Join(dir, "roles", "x_test.star"), body)
	write(t, filepath.Join(dir, "roles", "x.star"), body)
	if p := engine.Check(dir, mno.Files, []string{"roles/x_test.star"}); len(p) != 0 {
		t.Errorf("scenario file: %v, want no problem", p)
	}
	p := engine.Check(dir, mno.Files, []string{"roles/x.star"})
	if len(p) != 1 || !strings.Contains(p[0].Msg, "undefined: lab") {
		t.Errorf("role: %v, want one problem, undefined: lab", p)
	}
}
