package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mno-sh/mno/engine/journal"
)

// TestCompare names each planned effect whose precondition or change no
// longer holds, each that no longer happens and each new one; identical
// effects (the same write twice included) pass.
func TestCompare(t *testing.T) {
	e := func(target, desc, pre, sum string) Effect {
		return Effect{Target: target, Kind: "put", Desc: desc, Pos: "x.star:1:1", Pre: pre, DiffSHA256: sum}
	}
	planned := []Effect{e("a", "/f", "sha256:1", "d1"), e("a", "/f", "sha256:2", "d2"), e("b", "/g", "absent", "d3"), e("c", "/h", "", "d4")}
	if got := compare(planned, planned); len(got) != 0 {
		t.Errorf("identical: %v", got)
	}
	now := []Effect{e("a", "/f", "sha256:1", "d1"), e("a", "/f", "sha256:9", "d2"), e("b", "/g", "absent", "dX"), e("d", "/new", "absent", "d5")}
	got := strings.Join(compare(planned, now), "\n")
	for _, want := range []string{
		"[a] put /f (x.star:1:1): changed since the plan: it was sha256:2, it is sha256:9",
		"[b] put /g (x.star:1:1): the change differs from the plan",
		"[c] put /h (x.star:1:1): no longer changes anything",
		"[d] put /new (x.star:1:1): would change too, not in the plan",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("compare lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 3 {
		t.Errorf("want 4 reasons:\n%s", got)
	}
}

// TestGuard lets through only planned writes, checking the precondition on
// an object's first write.
func TestGuard(t *testing.T) {
	p := &Plan{Effects: []Effect{{Target: "a", Kind: "put", Desc: "/f", Pre: "sha256:1"}, {Target: "a", Kind: "put", Desc: "/f", Pre: "sha256:1"}}}
	g := p.Guard()
	op := journal.Op{Target: "a", Kind: "put", Desc: "/f"}
	if err := g(op, journal.Change{Pre: "sha256:2"}); err == nil || !strings.Contains(err.Error(), "changed since the plan") {
		t.Errorf("first write with another precondition: %v", err)
	}
	g = p.Guard()
	if err := g(op, journal.Change{Pre: "sha256:1"}); err != nil {
		t.Errorf("planned write: %v", err)
	}
	if err := g(op, journal.Change{Pre: "sha256:other"}); err != nil {
		t.Errorf("second planned write on the object: %v", err)
	}
	if err := g(op, journal.Change{Pre: "sha256:1"}); err == nil {
		t.Error("a third write, not planned, let through")
	}
	if err := g(journal.Op{Target: "b", Kind: "put", Desc: "/f"}, journal.Change{}); err == nil {
		t.Error("a write to another target let through")
	}
}

// TestReadHostile: files that are not plans are refused with the file named.
func TestReadHostile(t *testing.T) {
	dir := t.TempDir()
	for i, s := range []string{"", "{", "null", "[]", `{"v":1}`, `{"v":2,"playbook":"sync","playbook_sha256":"x"}`, strings.Repeat("{", 100000)} {
		p := filepath.Join(dir, "p.json")
		os.WriteFile(p, []byte(s), 0o600)
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%d %.20q: %v", i, s, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file read")
	}
}

// TestKey creates a 0600 key once and reads the same one back.
func TestKey(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if _, err := Key(home, false); err == nil {
		t.Error("missing key without create")
	}
	k1, err := Key(home, true)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := Key(home, true)
	if string(k1) != string(k2) || len(k1) != 32 {
		t.Error("key changed or short")
	}
	if fi, _ := os.Stat(filepath.Join(home, KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
}
