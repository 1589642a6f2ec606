package template

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"text/template"

	"github.com/mno-sh/mno/internal/shellquote"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"gopkg.in/yaml.v3"

	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the template module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "template",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"template": &starlarkstruct.Module{Name: "template", Members: starlark.StringDict{
			"render": starlark.NewBuiltin("template.render", render),
			"file":   starlark.NewBuiltin("template.file", file),
		}}},
	}
}

func render(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var text string
	var data starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "text", &text, "data?", &data); err != nil {
		return nil, err
	}
	return execute(thread, b.Name(), "inline", text, data)
}

func file(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path string
	var data starlark.Value = starlark.None
	var isSecret bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &path, "data?", &data, "secret?", &isSecret); err != nil {
		return nil, err
	}
	run := runctx.From(thread)
	var f runctx.File
	// A read of the control plane's files: journaled like local.read, with
	// the caller's position (shown with --verbose, always in the JSONL).
	_, err := run.Journal.Do(run.Ctx, journal.Op{
		Target: "local", Kind: "read", Desc: path, Pos: starkit.CallerPos(thread),
		Apply: func(context.Context) (journal.Change, error) {
			var err error
			f, err = run.ReadFile(thread, path)
			if err == nil {
				note := "embedded"
				if !f.Embedded {
					note = "from disk " + f.Display
				}
				return journal.Change{Note: note}, nil
			}
			return journal.Change{}, err
		},
	})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	out, err := execute(thread, b.Name(), f.Display, string(f.Data), data)
	if err != nil {
		return nil, err
	}
	// A template read from a file others may not read is secret material,
	// and so is whatever it renders to.
	if s, ok := out.(starlark.String); ok && (isSecret || f.Private) {
		return run.Secret(string(s)), nil
	}
	return out, nil
}

func execute(thread *starlark.Thread, fname, name, text string, data starlark.Value) (starlark.Value, error) {
	c := &converter{}
	goData, err := c.toGo(data, 0)
	if err != nil {
		return nil, starkit.Errorf(fname, "data: %v", err)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, starkit.Errorf(fname, "%v", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, goData); err != nil {
		return nil, starkit.Errorf(fname, "%v", err)
	}
	if c.tainted {
		return runctx.From(thread).Secret(buf.String()), nil
	}
	return starlark.String(buf.String()), nil
}

type converter struct{ tainted bool }

func (c *converter) toGo(v starlark.Value, depth int) (any, error) {
	if depth > 100 {
		return nil, fmt.Errorf("nested too deeply")
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			return i, nil
		}
		return new(big.Int).Set(x.BigInt()), nil
	case starlark.Float:
		return float64(x), nil
	case starlark.String:
		return string(x), nil
	case starlark.Bytes:
		return string(x), nil
	case *secret.Secret:
		s, _ := secret.Reveal(x)
		c.tainted = true
		return s, nil
	case *starlark.Dict:
		m := make(map[string]any, x.Len())
		for _, kv := range x.Items() {
			k, ok := starlark.AsString(kv[0])
			if !ok {
				return nil, fmt.Errorf("dict key %s is a %s, want string", kv[0], kv[0].Type())
			}
			val, err := c.toGo(kv[1], depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%q]: %v", k, err)
			}
			m[k] = val
		}
		return m, nil
	case *starlark.List, starlark.Tuple:
		var out []any
		it := x.(starlark.Iterable).Iterate()
		defer it.Done()
		var el starlark.Value
		for i := 0; it.Next(&el); i++ {
			val, err := c.toGo(el, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %v", i, err)
			}
			out = append(out, val)
		}
		return out, nil
	case starlark.HasAttrs:
		m := map[string]any{}
		for _, f := range starkit.Fields(x) {
			val, err := c.toGo(f.Value, depth+1)
			if err != nil {
				return nil, fmt.Errorf(".%s: %v", f.Name, err)
			}
			m[f.Name] = val
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot use a %s in a template", v.Type())
}

var funcs = template.FuncMap{
	"quote": shellquote.Quote,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"yaml": func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		return strings.TrimSuffix(string(b), "\n"), err
	},
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	"nindent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	"join": func(sep string, items []any) string {
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = fmt.Sprint(it)
		}
		return strings.Join(parts, sep)
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"trim":  strings.TrimSpace,
	"default": func(def, v any) any {
		if v == nil || v == "" {
			return def
		}
		return v
	},
}
