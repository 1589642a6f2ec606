// Package diag renders errors for users: "file:line:col: message" first, then
// the Starlark backtrace. Users never see a Go stack trace.
package diag

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Redactor scrubs secrets from rendered text.
type Redactor interface{ Redact(string) string }

// Render formats err for a terminal.
func Render(err error, red Redactor) string {
	s := render(err)
	if red != nil {
		s = red.Redact(s)
	}
	return strings.TrimRight(s, "\n") + "\n"
}

func render(err error) string {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		return renderEval(evalErr)
	}
	var list resolve.ErrorList
	if errors.As(err, &list) {
		var b strings.Builder
		for _, e := range list {
			fmt.Fprintf(&b, "%s: %s\n", e.Pos, e.Msg)
		}
		return b.String()
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s: %s\n", se.Pos, se.Msg)
	}
	return err.Error()
}

// Position returns the innermost Starlark (non-builtin) position of err.
func Position(err error) (syntax.Position, bool) {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		for i := len(evalErr.CallStack) - 1; i >= 0; i-- {
			if evalErr.CallStack[i].Pos.Filename() != "<builtin>" {
				return evalErr.CallStack[i].Pos, true
			}
		}
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return se.Pos, true
	}
	var list resolve.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		return list[0].Pos, true
	}
	return syntax.Position{}, false
}

func renderEval(e *starlark.EvalError) string {
	msg := e.Msg
	// A failure inside a loaded module arrives as "cannot load X: <nested>";
	// the nested error already starts with its own position.
	var b strings.Builder
	if pos, ok := Position(e); ok && !startsWithPosition(msg) {
		fmt.Fprintf(&b, "%s: %s\n", pos, msg)
	} else {
		fmt.Fprintf(&b, "%s\n", msg)
	}
	if len(e.CallStack) > 0 {
		b.WriteString(e.Backtrace())
		b.WriteString("\n")
	}
	return b.String()
}

func startsWithPosition(msg string) bool {
	// "file.star:12:3: ..." — a colon-separated prefix with two numbers.
	first := strings.SplitN(msg, " ", 2)[0]
	parts := strings.Split(strings.TrimSuffix(first, ":"), ":")
	if len(parts) < 3 {
		return false
	}
	for _, p := range parts[len(parts)-2:] {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
