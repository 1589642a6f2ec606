package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/diag"
	"github.com/mno-sh/mno/engine/journal"
	"github.com/mno-sh/mno/lab"
)

// toRun turns one PLAYBOOKS entry into a run: its parameters become `mno run`
// arguments, strings as key=value and anything else as key:=JSON.
func toRun(sc Scenario, v starlark.Value) (run, error) {
	var name string
	var params *starlark.Dict
	switch v := v.(type) {
	case starlark.String:
		name = string(v)
	case starlark.Tuple:
		if len(v) != 2 {
			return run{}, fmt.Errorf("want (playbook, {params}), got a tuple of %d", len(v))
		}
		s, ok := v[0].(starlark.String)
		d, ok2 := v[1].(*starlark.Dict)
		if !ok || !ok2 {
			return run{}, fmt.Errorf("want (playbook, {params}), got (%s, %s)", v[0].Type(), v[1].Type())
		}
		name, params = string(s), d
	default:
		return run{}, fmt.Errorf("want (playbook, {params}) or a playbook name, got %s", v.Type())
	}
	r := run{playbook: resolvePlaybook(sc, name)}
	if params == nil {
		return r, nil
	}
	for _, item := range params.Items() {
		k, ok := item[0].(starlark.String)
		if !ok {
			return run{}, fmt.Errorf("parameter names are strings, got %s", item[0].Type())
		}
		if s, ok := item[1].(starlark.String); ok {
			r.params = append(r.params, string(k)+"="+string(s))
			continue
		}
		data, err := starlarkJSON(item[1])
		if err != nil {
			return run{}, fmt.Errorf("parameter %s: %v", k, err)
		}
		r.params = append(r.params, string(k)+":="+data)
	}
	return r, nil
}

// resolvePlaybook makes a playbook path relative to the scenario's file
// usable from anywhere; names and workspace paths stay as they are.
func resolvePlaybook(sc Scenario, name string) string {
	if !strings.ContainsRune(name, '/') || strings.HasPrefix(name, "//") || filepath.IsAbs(name) {
		return name
	}
	if strings.HasPrefix(sc.Path, "//") {
		return "//" + path.Join(path.Dir(strings.TrimPrefix(sc.Path, "//")), name)
	}
	return filepath.Join(filepath.Dir(sc.Path), name)
}

func starlarkJSON(v starlark.Value) (string, error) {
	var conv func(v starlark.Value) (any, error)
	conv = func(v starlark.Value) (any, error) {
		switch v := v.(type) {
		case starlark.NoneType:
			return nil, nil
		case starlark.Bool:
			return bool(v), nil
		case starlark.Int:
			n, ok := v.Int64()
			if !ok {
				return nil, fmt.Errorf("integer %s too large", v)
			}
			return n, nil
		case starlark.Float:
			return float64(v), nil
		case starlark.String:
			return string(v), nil
		case *starlark.List, starlark.Tuple:
			var out []any
			iter := starlark.Iterate(v)
			defer iter.Done()
			var x starlark.Value
			for iter.Next(&x) {
				c, err := conv(x)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
			return out, nil
		case *starlark.Dict:
			out := map[string]any{}
			for _, item := range v.Items() {
				k, ok := item[0].(starlark.String)
				if !ok {
					return nil, fmt.Errorf("dict keys are strings, got %s", item[0].Type())
				}
				c, err := conv(item[1])
				if err != nil {
					return nil, err
				}
				out[string(k)] = c
			}
			return out, nil
		}
		return nil, fmt.Errorf("cannot pass a %s as a parameter", v.Type())
	}
	x, err := conv(v)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(x)
	return string(data), err
}

// runPlaybook runs r once and returns its failures: a run that fails, and on
// the second pass every effect that changed something.
func runPlaybook(ctx context.Context, sc Scenario, o Options, cl *lab.Cluster, r run, second bool, out io.Writer) []string {
	var effects effectEnds
	res := engine.Run(ctx, engine.Options{
		Playbook: r.playbook, Params: r.params, Root: sc.Root, Config: cl.Config(), Embedded: o.Embedded,
		ShowDiff: true, Timeout: o.Timeout, Stdout: out, Stderr: out, Observers: []journal.Observer{&effects},
	})
	var fails []string
	if res.Exit != 0 {
		msg := fmt.Sprintf("mno run %s: exit %d", r, res.Exit)
		if res.Err != nil {
			msg += ": " + firstLines(diag.Render(res.Err, nil), 12)
		}
		for _, e := range effects.ends {
			if e.Status == journal.StatusFailed || e.Status == journal.StatusUnreachable {
				msg += fmt.Sprintf("\n  %s: [%s] %s %s %s: %s", e.Pos, e.Target, e.Kind, e.Desc, e.Status, firstLines(e.Error, 3))
			}
		}
		fails = append(fails, msg)
	}
	if second {
		for _, e := range effects.ends {
			if e.Changed != nil && *e.Changed {
				msg := fmt.Sprintf("%s: %s %s changed on the second run (mno run %s, target %s)", e.Pos, e.Kind, e.Desc, r.playbook, e.Target)
				if e.Diff != "" {
					msg += "\n" + indent(firstLines(e.Diff, 20), "    ")
				}
				fails = append(fails, msg)
			}
		}
	}
	return fails
}

// effectEnds collects the effect_end events of a run, each with the
// description its effect_start had.
type effectEnds struct {
	starts map[int]journal.Event
	ends   []journal.Event
}

func (c *effectEnds) Event(e journal.Event) {
	switch e.Type {
	case "effect_start":
		if c.starts == nil {
			c.starts = map[int]journal.Event{}
		}
		c.starts[e.ID] = e
	case "effect_end":
		e.Desc = c.starts[e.ID].Desc
		delete(c.starts, e.ID)
		c.ends = append(c.ends, e)
	}
}
