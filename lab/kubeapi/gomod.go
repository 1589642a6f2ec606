package kubeapi

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// goMod is the part of a go.mod file the build needs: requirements and replacements.
type goMod struct {
	require map[string]string // module path → version
	replace map[string]string // module path → replacement path (versions dropped)
}

// parseGoMod reads require and replace directives, in blocks or on single lines. It is not a
// general go.mod parser (golang.org/x/mod is not a dependency of mno); it understands the
// generated go.mod of Kubernetes and files like it.
func parseGoMod(data []byte) (goMod, error) {
	m := goMod{require: map[string]string{}, replace: map[string]string{}}
	block := "" // verb of the open "verb (" block
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case block != "" && f[0] == ")":
			block = ""
			continue
		case block == "" && len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		}
		verb := block
		if verb == "" {
			verb, f = f[0], f[1:]
		}
		for i := range f {
			f[i] = strings.Trim(f[i], `"`)
		}
		switch verb {
		case "require":
			if len(f) != 2 {
				return goMod{}, fmt.Errorf("go.mod:%d: malformed require", n)
			}
			m.require[f[0]] = f[1]
		case "replace":
			arrow := indexOf(f, "=>")
			if arrow < 1 || arrow > 2 || len(f) < arrow+2 {
				return goMod{}, fmt.Errorf("go.mod:%d: malformed replace", n)
			}
			m.replace[f[0]] = f[arrow+1]
		}
	}
	return m, sc.Err()
}

func indexOf(f []string, s string) int {
	for i, x := range f {
		if x == s {
			return i
		}
	}
	return -1
}

// stagingModules lists the modules Kubernetes develops in its own repository: those its
// go.mod both requires at the placeholder version v0.0.0 and replaces with a ./staging
// directory. Outside that repository they must be pinned to their published tags instead.
func (m goMod) stagingModules() []string {
	var mods []string
	for mod, v := range m.require {
		if v != "v0.0.0" {
			continue
		}
		if strings.HasPrefix(m.replace[mod], "./staging/") {
			mods = append(mods, mod)
		}
	}
	sort.Strings(mods)
	return mods
}
