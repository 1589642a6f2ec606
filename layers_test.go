package mno

import (
	"os/exec"
	"strings"
	"testing"
)

// layers ranks every package of mno (ARCHITECTURE.md, "Layers"): a package may
// import only packages of its own layer or a lower one. A new package must be
// placed here, or this test fails naming it.
var layers = map[string]int{
	// 0: leaves, no mno imports but each other's
	"":                       0, // the module root: the embedded playbooks and roles
	"internal/shellquote":    0,
	"internal/kubeconfig":    0,
	"engine/secret":          0,
	"engine/diag":            0,
	"engine/loader":          0,
	"state":                  0,
	"builtins/kube/kclient":  0,
	"deploy/systemd":         0,
	"deploy/rbac":            0,
	"lab/internal/proc":      0,
	"lab/internal/toolcache": 0,
	"bench/floor/spec":       0,
	"bench/minimal":          0,
	"bench/rusage":           0,
	// 1: the engine's core, which builtins are written against
	"engine/starkit": 1,
	"engine/journal": 1,
	"engine/runctx":  1,
	// 1: the real test parts
	"lab/hosts":               1,
	"lab/hosts/hoststest":     1,
	"lab/kubeapi":             1,
	"lab/kubeapi/kubeapitest": 1,
	"lab/traefik":             1,
	"lab/traefik/traefiktest": 1,
	"lab/cmd/buildtools":      1,
	// 2: the builtin modules (and the bootstrap line they render)
	"bootstrap":          2,
	"builtins/assert":    2,
	"builtins/bootstrap": 2,
	"builtins/encoding":  2,
	"builtins/flow":      2,
	"builtins/kube":      2,
	"builtins/local":     2,
	"builtins/ssh":       2,
	"builtins/state":     2,
	"builtins/template":  2,
	"builtins/time":      2,
	// 3: the engine, which composes the modules into a run
	"engine":                   3,
	"engine/enginetest":        3,
	"engine/loader/precompile": 3,
	// 4: what runs the engine: the lab, mno test, mno watch, benchmarks
	"lab":             4,
	"scenario":        4,
	"controller":      4,
	"history":         4,
	"plan":            4,
	"bench":           4,
	"bench/floor":     4,
	"bench/syncbench": 4,
	// 5: the command, and the end-to-end tests of it
	"cmd/mno": 5,
	"e2e":     5,
}

// TestLayers: no package imports a package of a higher layer (go list's
// imports of every package, test files excluded), and every package has a layer.
func TestLayers(t *testing.T) {
	const module = "github.com/mno-sh/mno"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, _ := rel(fields[0])
		rank, ok := layers[pkg]
		if !ok {
			t.Errorf("package %q has no layer: add it to layers in layers_test.go and to ARCHITECTURE.md", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			dep, ours := rel(imp)
			if !ours {
				continue
			}
			if r, ok := layers[dep]; ok && r > rank {
				t.Errorf("%q (layer %d) imports %q (layer %d): an arrow up a layer", pkg, rank, dep, r)
			}
		}
	}
	if seen < 40 {
		t.Errorf("go list named only %d packages of mno", seen)
	}
}
