// Package starkit holds what every builtin package shares: the Module
// descriptor the engine lists, documentation extraction, argument unpackers
// and error helpers.
package starkit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/secret"
)

// Module is what one builtin package contributes to the predeclared names.
type Module struct {
	// Name is the package's documentation name (e.g. "ssh", "flow").
	Name string
	// Globals are the names it predeclares for every Starlark file.
	Globals starlark.StringDict
	// Doc is the package's doc comment: one line per Starlark signature.
	Doc string
}

// PackageDoc returns the package doc comment of a Go source file (the
// "//" comment lines right above the package clause, markers stripped), so
// the Starlark reference is the Go documentation and cannot drift from it.
// Every run builds the modules, so this is a scan of the lines, not a parse:
// go/parser cost ~1 ms per start for what only `mno doc` shows.
// TestPackageDocMatchesGoParser holds it to go/parser's reading.
func PackageDoc(src []byte) string {
	var doc []string
	for line := range strings.Lines(string(src)) {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "//"):
			t = strings.TrimPrefix(t, "//")
			doc = append(doc, strings.TrimPrefix(t, " "))
		case t == "package" || strings.HasPrefix(t, "package ") || strings.HasPrefix(t, "package\t"):
			return strings.TrimSpace(strings.Join(doc, "\n"))
		default:
			doc = doc[:0] // a blank line or code ends a comment group
		}
	}
	return ""
}

// Errorf returns an error prefixed with the builtin's name, the house style
// for builtin errors (starlark-go adds the position and call stack).
func Errorf(name string, format string, args ...any) error {
	return fmt.Errorf("%s: %w", name, fmt.Errorf(format, args...))
}

// CallerPos returns "file:line:col" of the Starlark code calling the
// builtin, skipping builtins in between (attempt(local.run, …) reports the
// line of the attempt call).
func CallerPos(thread *starlark.Thread) string {
	for i := 1; i < thread.CallStackDepth(); i++ {
		if pos := thread.CallFrame(i).Pos; pos.Filename() != "<builtin>" {
			return pos.String()
		}
	}
	return ""
}

// Duration unpacks "10s", "2m30s", a number of seconds, or a time.duration.
type Duration struct{ D time.Duration }

// Unpack implements starlark.Unpacker.
func (d *Duration) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		p, err := time.ParseDuration(string(x))
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. \"10s\", \"2m\")", string(x))
		}
		d.D = p
	case starlark.Int:
		n, ok := x.Int64()
		if !ok {
			return fmt.Errorf("duration out of range")
		}
		d.D = time.Duration(n) * time.Second
	case starlark.Float:
		d.D = time.Duration(float64(x) * float64(time.Second))
	case startime.Duration:
		d.D = time.Duration(x)
	default:
		return fmt.Errorf("got %s, want duration string like \"10s\"", v.Type())
	}
	if d.D < 0 {
		return fmt.Errorf("negative duration %s", d.D)
	}
	return nil
}

// Mode unpacks a file mode given as an int (0o644) or an octal string ("0644").
type Mode struct {
	M   uint32
	Set bool
}

// Unpack implements starlark.Unpacker.
func (m *Mode) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.Int:
		n, ok := x.Int64()
		if !ok || n < 0 || n > 0o7777 {
			return fmt.Errorf("invalid mode %s", x)
		}
		m.M = uint32(n)
	case starlark.String:
		n, err := strconv.ParseUint(strings.TrimPrefix(string(x), "0o"), 8, 32)
		if err != nil || n > 0o7777 {
			return fmt.Errorf("invalid mode %q (want octal like \"0644\")", string(x))
		}
		m.M = uint32(n)
	case starlark.NoneType:
		return nil
	default:
		return fmt.Errorf("got %s, want int like 0o644", v.Type())
	}
	m.Set = true
	return nil
}

// Command unpacks a command given as a shell string or an argv list.
type Command struct {
	Shell string   // set when a string was given
	Argv  []string // set when a list was given
}

// Unpack implements starlark.Unpacker.
func (c *Command) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		if strings.TrimSpace(string(x)) == "" {
			return fmt.Errorf("empty command")
		}
		c.Shell = string(x)
		return nil
	case *starlark.List, starlark.Tuple:
		it := x.(starlark.Iterable).Iterate()
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			s, ok := starlark.AsString(e)
			if !ok {
				return fmt.Errorf("command list items must be strings, got %s (a secret belongs in stdin or env, never in argv)", e.Type())
			}
			c.Argv = append(c.Argv, s)
		}
		if len(c.Argv) == 0 {
			return fmt.Errorf("empty command list")
		}
		return nil
	}
	return fmt.Errorf("got %s, want string or list of strings", v.Type())
}

// StringDict converts a Starlark dict of strings to a Go map. Secret values
// are refused: use SecretDict where a builtin can carry them safely.
func StringDict(name string, v starlark.Value) (map[string]string, error) {
	m, secrets, err := SecretDict(name, v)
	if err == nil && len(secrets) > 0 {
		return nil, fmt.Errorf("%s: a secret is not allowed here", name)
	}
	return m, err
}

// SecretDict converts a Starlark dict of strings or secrets to a Go map and
// reports which keys held secrets.
func SecretDict(name string, v starlark.Value) (map[string]string, map[string]bool, error) {
	if v == nil || v == starlark.None {
		return nil, nil, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, nil, fmt.Errorf("%s: got %s, want dict", name, v.Type())
	}
	out := make(map[string]string, d.Len())
	var secrets map[string]bool
	for _, kv := range d.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok {
			return nil, nil, fmt.Errorf("%s: keys must be strings, got %s", name, kv[0].Type())
		}
		s, isSecret, err := secret.Text(kv[1])
		if err != nil {
			return nil, nil, fmt.Errorf("%s[%q]: %v", name, k, err)
		}
		if isSecret {
			if secrets == nil {
				secrets = map[string]bool{}
			}
			secrets[k] = true
		}
		out[k] = s
	}
	return out, secrets, nil
}

// Field is one data field of a struct-like value.
type Field struct {
	Name  string
	Value starlark.Value
}

// Fields returns the data fields of v (methods and unreadable attributes
// skipped), in v's attribute order. Encoders use it to treat structs as maps.
func Fields(v starlark.HasAttrs) []Field {
	var out []Field
	for _, name := range v.AttrNames() {
		a, err := v.Attr(name)
		if err != nil || a == nil {
			continue
		}
		if _, isFn := a.(starlark.Callable); isFn {
			continue
		}
		out = append(out, Field{name, a})
	}
	return out
}
