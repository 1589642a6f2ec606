package scenario

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mno-sh/mno/engine/loader"
)

// Scenario is one scenario file.
type Scenario struct {
	// Path is what the engine resolves: a file path, or "//roles/x_test.star"
	// for an embedded one.
	Path string
	// Name is how reports name it: relative to the workspace, or
	// "embedded:roles/x_test.star".
	Name string
	// Root is the workspace its playbooks and loads resolve in ("" when embedded).
	Root string
}

// Find returns the scenarios under target, sorted: target is a scenario
// file, a workspace (its playbooks/ and roles/ are searched) or any other
// directory (searched whole). With target "", the scenarios embedded in mno
// (embedded, its playbooks/ and roles/).
func Find(target string, embedded fs.FS) ([]Scenario, error) {
	if target == "" {
		var out []Scenario
		for _, dir := range []string{"playbooks", "roles"} {
			ents, _ := fs.ReadDir(embedded, dir)
			for _, e := range ents {
				if !e.IsDir() && IsScenario(e.Name()) {
					logical := path.Join(dir, e.Name())
					out = append(out, Scenario{Path: "//" + logical, Name: loader.EmbeddedPrefix + logical})
				}
			}
		}
		return out, nil
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if !IsScenario(abs) {
			return nil, fmt.Errorf("%s is not a scenario (a *_test.star file)", target)
		}
		root, err := loader.DiscoverRoot(filepath.Dir(abs))
		if err != nil {
			return nil, err
		}
		return []Scenario{{Path: abs, Name: relName(root, abs), Root: root}}, nil
	}
	root, err := loader.DiscoverRoot(abs)
	if err != nil {
		return nil, err
	}
	if root != abs {
		root = "" // a directory that is not a workspace: each file finds its own
	}
	var dirs []string
	if root != "" {
		for _, sub := range []string{"playbooks", "roles"} {
			if fi, err := os.Stat(filepath.Join(abs, sub)); err == nil && fi.IsDir() {
				dirs = append(dirs, filepath.Join(abs, sub))
			}
		}
	} else {
		dirs = []string{abs}
	}
	var out []Scenario
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && p != d && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
				return filepath.SkipDir
			}
			if !e.IsDir() && IsScenario(e.Name()) {
				r := root
				if r == "" {
					if r, err = loader.DiscoverRoot(filepath.Dir(p)); err != nil {
						return err
					}
				}
				out = append(out, Scenario{Path: p, Name: relName(r, p), Root: r})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// relName names p relative to the current directory when it is below it,
// else relative to root, else as is.
func relName(root, p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	if root != "" {
		if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}
