package flow

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the flow builtins.
func Module() starkit.Module {
	return starkit.Module{
		Name: "flow",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{
			"fail":     starlark.NewBuiltin("fail", fail),
			"log":      starlark.NewBuiltin("log", runctx.Log),
			"warn":     starlark.NewBuiltin("warn", runctx.Warn),
			"struct":   starlark.NewBuiltin("struct", starlarkstruct.Make),
			"secret":   starlark.NewBuiltin("secret", makeSecret),
			"parallel": starlark.NewBuiltin("parallel", parallel),
			"attempt":  starlark.NewBuiltin("attempt", attempt),
			"retry":    starlark.NewBuiltin("retry", retry),
			"prompt":   starlark.NewBuiltin("prompt", prompt),
		},
	}
}

func fail(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	sep := " "
	if err := starlark.UnpackArgs(b.Name(), nil, kwargs, "sep?", &sep); err != nil {
		return nil, err
	}
	parts := make([]string, len(args))
	for i, a := range args {
		if s, ok := a.(starlark.String); ok {
			parts[i] = string(s)
		} else {
			parts[i] = a.String()
		}
	}
	return nil, errors.New(strings.Join(parts, sep))
}

func makeSecret(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case starlark.String:
		return runctx.From(thread).Secret(string(x)), nil
	case starlark.Bytes:
		return runctx.From(thread).Secret(string(x)), nil
	}
	if _, ok := secret.Reveal(v); ok {
		return v, nil
	}
	return nil, starkit.Errorf(b.Name(), "got %s, want string", v.Type())
}

// Result is what attempt and parallel return for each call.
func result(ok bool, value starlark.Value, errMsg string) *starlarkstruct.Struct {
	var e starlark.Value = starlark.None
	if !ok {
		e = starlark.String(errMsg)
	}
	if value == nil {
		value = starlark.None
	}
	return starlarkstruct.FromStringDict(starlark.String("result"), starlark.StringDict{
		"ok":    starlark.Bool(ok),
		"value": value,
		"error": e,
	})
}

// fatal reports errors that attempt and parallel must not swallow: the run
// was cancelled or the thread ran out of its step budget.
func fatal(thread *starlark.Thread, err error) bool {
	if runctx.From(thread).Err() != nil {
		return true
	}
	return strings.Contains(err.Error(), "too many steps") || strings.Contains(err.Error(), "step budget")
}

func errMessage(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Msg
	}
	return err.Error()
}

func attempt(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 1 {
		return nil, starkit.Errorf(b.Name(), "missing function argument")
	}
	fn, ok := args[0].(starlark.Callable)
	if !ok {
		return nil, starkit.Errorf(b.Name(), "got %s, want callable", args[0].Type())
	}
	v, err := starlark.Call(thread, fn, args[1:], kwargs)
	if err != nil {
		if fatal(thread, err) {
			return nil, err
		}
		return result(false, nil, errMessage(err)), nil
	}
	return result(true, v, ""), nil
}

func retry(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	attempts := 3
	delay := starkit.Duration{D: time.Second}
	maxDelay := starkit.Duration{D: time.Minute}
	backoff := starlark.Float(2.0)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "attempts?", &attempts,
		"delay?", &delay, "backoff?", &backoff, "max_delay?", &maxDelay); err != nil {
		return nil, err
	}
	if attempts < 1 {
		return nil, starkit.Errorf(b.Name(), "attempts must be at least 1, got %d", attempts)
	}
	if backoff < 1 {
		return nil, starkit.Errorf(b.Name(), "backoff must be at least 1.0, got %v", backoff)
	}
	run := runctx.From(thread)
	wait := delay.D
	var last error
	for i := 1; i <= attempts; i++ {
		v, err := starlark.Call(thread, fn, nil, nil)
		if err == nil {
			return v, nil
		}
		if fatal(thread, err) {
			return nil, err
		}
		last = err
		if i == attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-run.Ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s: %v", b.Name(), run.Err())
		case <-t.C:
		}
		wait = time.Duration(float64(wait) * float64(backoff))
		if wait > maxDelay.D {
			wait = maxDelay.D
		}
	}
	return nil, fmt.Errorf("%s: gave up after %d attempts: %s", b.Name(), attempts, errMessage(last))
}

func parallel(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var items starlark.Iterable
	limit := 16
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "items", &items, "limit?", &limit); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, starkit.Errorf(b.Name(), "limit must be at least 1, got %d", limit)
	}
	var list []starlark.Value
	it := items.Iterate()
	var x starlark.Value
	for it.Next(&x) {
		list = append(list, x)
	}
	it.Done()
	// Items and fn are shared between threads: freeze them so no thread can
	// mutate what another reads.
	fn.Freeze()
	for _, v := range list {
		v.Freeze()
	}

	run := runctx.From(thread)
	results := make([]starlark.Value, len(list))
	var fatalErr error
	var fatalOnce sync.Once
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, item := range list {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, item starlark.Value) {
			defer wg.Done()
			defer func() { <-sem }()
			t, release := run.NewThread(fmt.Sprintf("parallel[%d]", i))
			defer release()
			v, err := starlark.Call(t, fn, starlark.Tuple{item}, nil)
			if err != nil {
				if fatal(t, err) {
					fatalOnce.Do(func() { fatalErr = err })
				}
				results[i] = result(false, nil, fmt.Sprintf("item %d (%s): %s", i, item.String(), errMessage(err)))
				return
			}
			results[i] = result(true, v, "")
		}(i, item)
	}
	wg.Wait()
	if err := run.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if fatalErr != nil {
		return nil, fatalErr
	}
	return starlark.NewList(results), nil
}

// prompt asks the user at the terminal and returns the answer, trimmed; None
// when mno runs without a terminal on stdin (a timer, a pipe, CI), so a
// playbook falls back to its parameters. Questions from parallel threads are
// asked one at a time. The question goes to the report, the answer nowhere.
func prompt(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var question string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "question", &question); err != nil {
		return nil, err
	}
	r := runctx.From(thread)
	if r.Config.Prompt == nil {
		return starlark.None, nil
	}
	answer, err := r.Config.Prompt(r.Ctx, question)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	return starlark.String(strings.TrimSpace(answer)), nil
}
