package assert

import (
	_ "embed"
	"errors"
	"fmt"
	"regexp"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the assert module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "assert",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"assert": &starlarkstruct.Module{Name: "assert", Members: starlark.StringDict{
			"eq":       starlark.NewBuiltin("assert.eq", eq),
			"ne":       starlark.NewBuiltin("assert.ne", ne),
			"true":     starlark.NewBuiltin("assert.true", truth),
			"contains": starlark.NewBuiltin("assert.contains", contains),
			"fails":    starlark.NewBuiltin("assert.fails", fails),
		}}},
	}
}

func prefix(msg starlark.Value) string {
	if s, ok := msg.(starlark.String); ok && s != "" {
		return string(s) + ": "
	}
	return ""
}

func compare(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, want bool) (starlark.Value, error) {
	var x, y starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "got", &x, "want", &y, "msg?", &msg); err != nil {
		return nil, err
	}
	ok, err := starlark.Equal(x, y)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if ok != want {
		if want {
			return nil, fmt.Errorf("%sgot %s, want %s", prefix(msg), x, y)
		}
		return nil, fmt.Errorf("%sgot %s, want anything else", prefix(msg), x)
	}
	return starlark.None, nil
}

func eq(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return compare(b, args, kwargs, true)
}

func ne(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return compare(b, args, kwargs, false)
}

func truth(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cond starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cond", &cond, "msg?", &msg); err != nil {
		return nil, err
	}
	if !cond.Truth() {
		if p := prefix(msg); p != "" {
			return nil, errors.New(p[:len(p)-2])
		}
		return nil, fmt.Errorf("assertion failed: got %s", cond)
	}
	return starlark.None, nil
}

func contains(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var container, item starlark.Value
	var msg starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &container, "item", &item, "msg?", &msg); err != nil {
		return nil, err
	}
	in, err := starlark.Binary(syntax.IN, item, container)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if !in.Truth() {
		return nil, fmt.Errorf("%s%s not in %s", prefix(msg), item, container)
	}
	return starlark.None, nil
}

func fails(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "pattern", &pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "invalid pattern: %v", err)
	}
	_, err = starlark.Call(thread, fn, nil, nil)
	if err == nil {
		return nil, fmt.Errorf("%s: %s succeeded, want an error matching %q", b.Name(), fn.Name(), pattern)
	}
	msg := err.Error()
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		msg = ee.Msg
	}
	if !re.MatchString(msg) {
		return nil, fmt.Errorf("%s: error %q does not match %q", b.Name(), msg, pattern)
	}
	return starlark.String(msg), nil
}
