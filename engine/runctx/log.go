package runctx

import (
	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/starkit"
)

// Log implements log(msg) and ctx.log(msg): a line in the run's report,
// positioned at the calling Starlark line.
func Log(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg starlark.Value
	var target string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "msg", &msg, "target?", &target); err != nil {
		return nil, err
	}
	From(thread).Journal.Log(starkit.CallerPos(thread), text(msg))
	return starlark.None, nil
}

// Warn implements warn(msg, target=) and ctx.warn: a warning, counted in the
// recap and attributed to target when given.
func Warn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var msg starlark.Value
	var target string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "msg", &msg, "target?", &target); err != nil {
		return nil, err
	}
	From(thread).Journal.Warn(starkit.CallerPos(thread), target, text(msg))
	return starlark.None, nil
}

// text is a message's text: a string as it is (a secret prints redacted
// through its String method), anything else as Starlark prints it.
func text(v starlark.Value) string {
	if s, ok := v.(starlark.String); ok {
		return string(s)
	}
	return v.String()
}
