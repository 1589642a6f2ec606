package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/state"
)

// decodeJSON parses a registry value into Starlark values, keeping the
// document's key order. MyNodeOne stored some values through a hand-rolled
// escape (sed 's/"/\\"/g' | tr '\n' ' ', then a kubectl patch that decodes the
// JSON escapes once more), so a value that is not valid JSON is repaired —
// raw control characters and stray backslashes inside strings escaped, see
// state.RepairJSON — and parsed again, reporting what was repaired; if that
// fails too, the original error is returned.
func decodeJSON(text string) (starlark.Value, state.Repair, error) {
	v, err := decodeStrict(text)
	if err == nil {
		return v, state.Repair{}, nil
	}
	if fixed, rep := state.RepairJSON(text); rep.Changed() {
		if v, err2 := decodeStrict(fixed); err2 == nil {
			return v, rep, nil
		}
	}
	return nil, state.Repair{}, err
}

func decodeStrict(text string) (starlark.Value, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, jsonError(text, dec, err)
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			rest := text[end:]
			end += len(rest) - len(strings.TrimLeft(rest, " \t\r\n"))
			return nil, fmt.Errorf("at offset %d: unexpected data after the JSON value", end)
		}
		return nil, jsonError(text, dec, err)
	}
	return v, nil
}

func jsonError(text string, dec *json.Decoder, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if strings.TrimSpace(text) == "" {
			return errors.New("empty value, want a JSON document")
		}
		return fmt.Errorf("at offset %d: unexpected end of JSON", len(text))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("at offset %d: %v", se.Offset, err)
	}
	return fmt.Errorf("at offset %d: %v", dec.InputOffset(), err)
}

func decodeValue(dec *json.Decoder) (starlark.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := starlark.NewDict(0)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if err := d.SetKey(starlark.String(k), v); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token() // '}'
			return d, err
		case '[':
			var elems []starlark.Value
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				elems = append(elems, v)
			}
			_, err := dec.Token() // ']'
			return starlark.NewList(elems), err
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case string:
		return starlark.String(t), nil
	case json.Number:
		return number(string(t))
	case bool:
		return starlark.Bool(t), nil
	case nil:
		return starlark.None, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func number(s string) (starlark.Value, error) {
	if !strings.ContainsAny(s, ".eE") {
		if n, ok := new(big.Int).SetString(s, 10); ok {
			return starlark.MakeBigInt(n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s: %v", s, err)
	}
	return starlark.Float(f), nil
}

// encodeJSON renders v the way mno writes registry values: indented by two
// spaces, object keys sorted, a trailing newline, no HTML escaping. Equal
// documents always encode to the same text, so it is also the comparison.
func encodeJSON(v starlark.Value) (string, error) {
	g, err := toGo(v, 0)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// toGo converts a Starlark value to what encoding/json marshals
// canonically: maps (whose keys it sorts), slices, json.Number.
func toGo(v starlark.Value, depth int) (any, error) {
	if depth > 100 {
		return nil, errors.New("value nested too deeply (a cycle?)")
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(x), nil
	case starlark.Int:
		return json.Number(x.String()), nil
	case starlark.Float:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("cannot encode %s as JSON", x)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e21 {
			return json.Number(strconv.FormatFloat(f, 'f', 1, 64)), nil
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case starlark.String:
		return string(x), nil
	case *secret.Secret:
		return nil, errors.New("a secret cannot be stored in a ConfigMap (anyone who can read it would see the value)")
	case *starlark.Dict:
		m := make(map[string]any, x.Len())
		for _, kv := range x.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict has %s key %s, want string", kv[0].Type(), kv[0])
			}
			e, err := toGo(kv[1], depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%q]: %w", string(k), err)
			}
			m[string(k)] = e
		}
		return m, nil
	case *starlark.List, starlark.Tuple:
		seq := x.(starlark.Indexable)
		out := make([]any, seq.Len())
		for i := range out {
			e, err := toGo(seq.Index(i), depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot encode %s as JSON", v.Type())
}

// prettyForDiff renders a value holding a JSON object or array in the
// canonical form, so a diff shows what changed rather than how MyNodeOne
// formatted it; any other value is returned as is.
func prettyForDiff(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return s
	}
	v, _, err := decodeJSON(s)
	if err != nil {
		return s
	}
	out, err := encodeJSON(v)
	if err != nil {
		return s
	}
	return out
}

// copyValue returns a fresh, mutable deep copy of a JSON-like value.
func copyValue(v starlark.Value) (starlark.Value, error) {
	text, err := encodeJSON(v)
	if err != nil {
		return nil, err
	}
	return decodeStrict(text)
}
