package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// UsageError is a mistake in how the playbook was invoked; the CLI prints
// Usage after it and exits 1.
type UsageError struct {
	Msg   string
	Usage string
}

func (e *UsageError) Error() string { return e.Msg }

// Param is one parameter of a playbook's main.
type Param struct {
	Name     string
	Default  starlark.Value // nil when required
	Required bool
}

// signature returns main's parameters after ctx.
func signature(fn *starlark.Function) ([]Param, error) {
	n := fn.NumParams()
	if fn.HasVarargs() {
		return nil, fmt.Errorf("main must not take *args")
	}
	if n == 0 || (n == 1 && fn.HasKwargs()) {
		return nil, fmt.Errorf("main must take ctx as its first parameter")
	}
	last := n
	if fn.HasKwargs() {
		last--
	}
	var params []Param
	for i := 1; i < last; i++ {
		name, _ := fn.Param(i)
		d := fn.ParamDefault(i)
		params = append(params, Param{Name: name, Default: d, Required: d == nil})
	}
	return params, nil
}

// usage renders the playbook's docstring and parameter list.
func usage(playbook, doc string, params []Param) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: mno run %s", playbook)
	for _, p := range params {
		if p.Required {
			fmt.Fprintf(&b, " %s=…", p.Name)
		}
	}
	if len(params) > 0 {
		b.WriteString(" [key=value ...]")
	}
	b.WriteString("\n\n")
	if doc = strings.TrimSpace(doc); doc != "" {
		b.WriteString(doc)
		b.WriteString("\n\n")
	}
	b.WriteString("Parameters of main:\n")
	if len(params) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, p := range params {
		if p.Required {
			fmt.Fprintf(&b, "  %s (required)\n", p.Name)
		} else {
			fmt.Fprintf(&b, "  %s (default %s)\n", p.Name, p.Default)
		}
	}
	return b.String()
}

// moduleDoc returns the docstring of a Starlark file: its first statement
// when that is a string literal.
func moduleDoc(filename string, src []byte) string {
	f, err := syntax.Parse(filename, src, 0)
	if err != nil || len(f.Stmts) == 0 {
		return ""
	}
	if es, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
		if lit, ok := es.X.(*syntax.Literal); ok && lit.Token == syntax.STRING {
			if s, ok := lit.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// bindParams turns "key=value" arguments into keyword arguments for main,
// converting each value to the type of the parameter's default. A leading
// argument without '=' is the value of main's first parameter, so
// `mno run domain add name=x` reads as action=add name=x.
func bindParams(args []string, params []Param, hasKwargs bool, use string) ([]starlark.Tuple, map[string]string, error) {
	if len(args) > 0 && len(params) > 0 && args[0] != "" && !strings.Contains(args[0], "=") {
		args = append([]string{params[0].Name + "=" + args[0]}, args[1:]...)
	}
	byName := map[string]Param{}
	for _, p := range params {
		byName[p.Name] = p
	}
	seen := map[string]bool{}
	raw := map[string]string{}
	var kwargs []starlark.Tuple
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, nil, &UsageError{Msg: fmt.Sprintf("argument %q: want key=value", a), Usage: use}
		}
		forceJSON := strings.HasSuffix(k, ":")
		k = strings.TrimSuffix(k, ":")
		if seen[k] {
			return nil, nil, &UsageError{Msg: fmt.Sprintf("parameter %q given twice", k), Usage: use}
		}
		seen[k] = true
		p, known := byName[k]
		if !known && !hasKwargs {
			msg := fmt.Sprintf("unknown parameter %q", k)
			if near := nearest(k, params); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			return nil, nil, &UsageError{Msg: msg, Usage: use}
		}
		val, err := convert(v, p.Default, forceJSON)
		if err != nil {
			return nil, nil, &UsageError{Msg: fmt.Sprintf("parameter %s: %v", k, err), Usage: use}
		}
		raw[k] = v
		kwargs = append(kwargs, starlark.Tuple{starlark.String(k), val})
	}
	var missing []string
	for _, p := range params {
		if p.Required && !seen[p.Name] {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, &UsageError{Msg: fmt.Sprintf("missing required parameter(s): %s", strings.Join(missing, ", ")), Usage: use}
	}
	return kwargs, raw, nil
}

func convert(v string, def starlark.Value, forceJSON bool) (starlark.Value, error) {
	if forceJSON {
		return decodeJSON(v)
	}
	switch def.(type) {
	case starlark.Bool:
		switch strings.ToLower(v) {
		case "true", "yes", "1", "on":
			return starlark.True, nil
		case "false", "no", "0", "off":
			return starlark.False, nil
		}
		return nil, fmt.Errorf("invalid boolean %q (want true or false)", v)
	case starlark.Int:
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", v)
		}
		return starlark.MakeInt64(n), nil
	case starlark.Float:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid number %q", v)
		}
		return starlark.Float(f), nil
	case *starlark.List, starlark.Tuple:
		if strings.HasPrefix(strings.TrimSpace(v), "[") {
			return decodeJSON(v)
		}
		var items []starlark.Value
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, starlark.String(s))
			}
		}
		return starlark.NewList(items), nil
	case *starlark.Dict:
		if strings.HasPrefix(strings.TrimSpace(v), "{") {
			return decodeJSON(v)
		}
		// k=v,k2=v2 (e.g. labels=role=edge,zone=home)
		d := starlark.NewDict(0)
		for _, kv := range strings.Split(v, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("invalid %q: want JSON or k=v,k2=v2", v)
			}
			d.SetKey(starlark.String(k), starlark.String(val))
		}
		return d, nil
	}
	return starlark.String(v), nil
}

func decodeJSON(v string) (starlark.Value, error) {
	if !json.Valid([]byte(v)) {
		return nil, fmt.Errorf("invalid JSON %q", v)
	}
	thread := &starlark.Thread{Name: "params"}
	return starlark.Call(thread, starjson.Module.Members["decode"], starlark.Tuple{starlark.String(v)}, nil)
}

// nearest returns the parameter closest to k by edit distance, if close.
func nearest(k string, params []Param) string {
	best, bestD := "", 3
	for _, p := range params {
		if d := editDistance(k, p.Name); d < bestD {
			best, bestD = p.Name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
