// Package secret holds the Starlark secret type and the run's redactor.
//
// A *Secret wraps a clear-text string that must never reach an output: its
// String form is "<redacted>", so print, %-formatting, str(), errors and the
// journal all show the placeholder. Only Go code that deliberately calls
// Reveal (the builtin that consumes the value, e.g. as stdin or file content)
// sees the clear text. Concatenation with + keeps the taint: the result is a
// Secret again.
package secret

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Placeholder is what every output shows instead of a secret's value.
const Placeholder = "<redacted>"

// Secret is a string value whose clear text is hidden from every output.
type Secret struct {
	value  string
	frozen bool
}

var (
	_ starlark.Value     = (*Secret)(nil)
	_ starlark.HasBinary = (*Secret)(nil)
	_ starlark.HasAttrs  = (*Secret)(nil)
)

// New wraps value. Callers that have a run should prefer runctx's Run.Secret,
// which also teaches the run's Redactor to scrub the value from free text.
func New(value string) *Secret { return &Secret{value: value} }

// Reveal returns the clear text of v if it is a secret.
func Reveal(v starlark.Value) (string, bool) {
	if s, ok := v.(*Secret); ok {
		return s.value, true
	}
	return "", false
}

// Text accepts a string, bytes or secret and returns its text and whether it
// was secret. It is what builtins use for content and stdin parameters.
func Text(v starlark.Value) (text string, isSecret bool, err error) {
	switch x := v.(type) {
	case starlark.String:
		return string(x), false, nil
	case starlark.Bytes:
		return string(x), false, nil
	case *Secret:
		return x.value, true, nil
	}
	return "", false, fmt.Errorf("got %s, want string, bytes or secret", v.Type())
}

// Contains reports whether v is, or transitively contains, a secret.
func Contains(v starlark.Value) bool {
	return contains(v, 0)
}

func contains(v starlark.Value, depth int) bool {
	if depth > 64 {
		return false
	}
	switch x := v.(type) {
	case *Secret:
		return true
	case starlark.String, starlark.Bytes, starlark.Int, starlark.Float, starlark.Bool, starlark.NoneType, *starlark.Builtin:
		// Scalars hold no secret; their methods (String.upper, …) are not
		// attributes worth walking, and binding each costs an allocation.
		return false
	case *starlark.Dict:
		for k, v := range x.Entries() {
			if contains(k, depth+1) || contains(v, depth+1) {
				return true
			}
		}
	case starlark.Iterable:
		if _, isStr := v.(starlark.String); isStr {
			return false
		}
		it := x.Iterate()
		defer it.Done()
		var e starlark.Value
		for it.Next(&e) {
			if contains(e, depth+1) {
				return true
			}
		}
	case starlark.HasAttrs:
		for _, name := range x.AttrNames() {
			a, err := x.Attr(name)
			if err == nil && a != nil && contains(a, depth+1) {
				return true
			}
		}
	}
	return false
}

func (s *Secret) String() string        { return Placeholder }
func (s *Secret) Type() string          { return "secret" }
func (s *Secret) Freeze()               { s.frozen = true }
func (s *Secret) Truth() starlark.Bool  { return s.value != "" }
func (s *Secret) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: secret") }

// MarshalJSON refuses: JSON encoding must go through the encoding builtins,
// which keep the result secret, never through a path that would print it.
func (s *Secret) MarshalJSON() ([]byte, error) {
	return nil, fmt.Errorf("cannot encode a secret as JSON outside json.encode")
}

// Format keeps fmt's %v, %s and %q from ever printing the clear text.
func (s *Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, Placeholder) }

// Binary implements secret + string, string + secret and secret + secret.
// Every other operator is an error that never shows the value.
func (s *Secret) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	if op != syntax.PLUS {
		return nil, fmt.Errorf("unsupported operation %s on a secret", op)
	}
	other, _, err := Text(y)
	if err != nil {
		return nil, fmt.Errorf("cannot concatenate a secret with %s", y.Type())
	}
	if side == starlark.Left {
		return &Secret{value: s.value + other}, nil
	}
	return &Secret{value: other + s.value}, nil
}

// Attr implements the methods that keep the value secret: replace(old, new)
// and strip() return secrets; contains(s) answers a yes/no question.
func (s *Secret) Attr(name string) (starlark.Value, error) {
	switch name {
	case "replace":
		return starlark.NewBuiltin("secret.replace", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var old, new string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &old, &new); err != nil {
				return nil, err
			}
			return &Secret{value: strings.ReplaceAll(s.value, old, new)}, nil
		}), nil
	case "strip":
		return starlark.NewBuiltin("secret.strip", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
				return nil, err
			}
			return &Secret{value: strings.TrimSpace(s.value)}, nil
		}), nil
	case "contains":
		return starlark.NewBuiltin("secret.contains", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var sub string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &sub); err != nil {
				return nil, err
			}
			return starlark.Bool(strings.Contains(s.value, sub)), nil
		}), nil
	}
	return nil, nil
}

// AttrNames implements starlark.HasAttrs.
func (s *Secret) AttrNames() []string { return []string{"contains", "replace", "strip"} }

// Redactor scrubs known secret values from free text (command output, error
// messages) as a second line of defence behind the typed Secret.
type Redactor struct {
	mu       sync.RWMutex
	values   map[string]bool
	replacer *strings.Replacer
}

// minRedactLen keeps trivially short secrets from garbling all output.
const minRedactLen = 4

// NewRedactor returns an empty redactor.
func NewRedactor() *Redactor { return &Redactor{values: map[string]bool{}} }

// Add registers a clear-text value to scrub.
func (r *Redactor) Add(value string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(value)
	// Multi-line secrets (keys, kubeconfigs) are also scrubbed line by line,
	// since tools often echo one line of them.
	if strings.Contains(value, "\n") {
		for _, line := range strings.Split(value, "\n") {
			r.addLocked(strings.TrimSpace(line))
		}
	}
	r.replacer = nil
}

func (r *Redactor) addLocked(v string) {
	if len(v) >= minRedactLen {
		r.values[v] = true
	}
}

// Redact replaces every registered value in s with the placeholder.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	rep := r.replacer
	n := len(r.values)
	r.mu.RUnlock()
	if n == 0 {
		return s
	}
	if rep == nil {
		r.mu.Lock()
		if r.replacer == nil {
			vals := make([]string, 0, len(r.values))
			for v := range r.values {
				vals = append(vals, v)
			}
			// Longest first, so a secret containing another is replaced whole.
			sort.Slice(vals, func(i, j int) bool {
				if len(vals[i]) != len(vals[j]) {
					return len(vals[i]) > len(vals[j])
				}
				return vals[i] < vals[j]
			})
			args := make([]string, 0, 2*len(vals))
			for _, v := range vals {
				args = append(args, v, Placeholder)
			}
			r.replacer = strings.NewReplacer(args...)
		}
		rep = r.replacer
		r.mu.Unlock()
	}
	return rep.Replace(s)
}

// Fingerprint returns an HMAC-SHA256, under key, of every value registered
// (sorted): it changes when any secret the run met changes, and without the
// key it tells nothing about them. "" when there are none.
func (r *Redactor) Fingerprint(key []byte) string {
	if r == nil {
		return ""
	}
	r.mu.RLock()
	vals := make([]string, 0, len(r.values))
	for v := range r.values {
		vals = append(vals, v)
	}
	r.mu.RUnlock()
	if len(vals) == 0 {
		return ""
	}
	sort.Strings(vals)
	m := hmac.New(sha256.New, key)
	for _, v := range vals {
		fmt.Fprintf(m, "%d:%s\n", len(v), v)
	}
	return hex.EncodeToString(m.Sum(nil))
}
