package encoding

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"gopkg.in/yaml.v3"

	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

// Encode renders a Starlark value as block-style YAML, keeping dict order. It
// reports whether a secret was revealed into the text.
func Encode(v starlark.Value) (string, bool, error) {
	e := &encoder{}
	n, err := e.node(v, 0)
	if err != nil {
		return "", false, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", false, err
	}
	if err := enc.Close(); err != nil {
		return "", false, err
	}
	return buf.String(), e.tainted, nil
}

type encoder struct{ tainted bool }

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func (e *encoder) node(v starlark.Value, depth int) (*yaml.Node, error) {
	if depth > 100 {
		return nil, fmt.Errorf("value nested too deeply (a cycle?)")
	}
	switch x := v.(type) {
	case starlark.NoneType:
		return scalar("!!null", "null"), nil
	case starlark.Bool:
		return scalar("!!bool", strconv.FormatBool(bool(x))), nil
	case starlark.Int:
		return scalar("!!int", x.String()), nil
	case starlark.Float:
		f := float64(x)
		switch {
		case math.IsInf(f, 1):
			return scalar("!!float", ".inf"), nil
		case math.IsInf(f, -1):
			return scalar("!!float", "-.inf"), nil
		case math.IsNaN(f):
			return scalar("!!float", ".nan"), nil
		}
		return scalar("!!float", strconv.FormatFloat(f, 'g', -1, 64)), nil
	case starlark.String:
		return stringNode(string(x)), nil
	case starlark.Bytes:
		return stringNode(string(x)), nil
	case *secret.Secret:
		s, _ := secret.Reveal(x)
		e.tainted = true
		return stringNode(s), nil
	case *starlark.Dict:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, kv := range x.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict key %s is a %s, want string", kv[0], kv[0].Type())
			}
			val, err := e.node(kv[1], depth+1)
			if err != nil {
				return nil, fmt.Errorf("in key %q: %v", string(k), err)
			}
			m.Content = append(m.Content, stringNode(string(k)), val)
		}
		return m, nil
	case *starlark.List, starlark.Tuple:
		s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		it := x.(starlark.Iterable).Iterate()
		defer it.Done()
		var el starlark.Value
		for i := 0; it.Next(&el); i++ {
			n, err := e.node(el, depth+1)
			if err != nil {
				return nil, fmt.Errorf("at index %d: %v", i, err)
			}
			s.Content = append(s.Content, n)
		}
		return s, nil
	case starlark.HasAttrs:
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range starkit.Fields(x) {
			val, err := e.node(f.Value, depth+1)
			if err != nil {
				return nil, fmt.Errorf("in field .%s: %v", f.Name, err)
			}
			m.Content = append(m.Content, stringNode(f.Name), val)
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot encode %s as YAML", v.Type())
}

func stringNode(s string) *yaml.Node {
	n := scalar("!!str", s)
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

// Decode parses every document in text.
func Decode(text string) ([]starlark.Value, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []starlark.Value
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		v, err := fromNode(&n, 0)
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

func fromNode(n *yaml.Node, depth int) (starlark.Value, error) {
	if depth > 200 {
		return nil, fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return starlark.None, nil
		}
		return fromNode(n.Content[0], depth+1)
	case yaml.AliasNode:
		return fromNode(n.Alias, depth+1)
	case yaml.MappingNode:
		d := starlark.NewDict(len(n.Content) / 2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := fromNode(n.Content[i], depth+1)
			if err != nil {
				return nil, err
			}
			if _, err := k.Hash(); err != nil {
				return nil, fmt.Errorf("line %d: unhashable mapping key", n.Content[i].Line)
			}
			if _, found, _ := d.Get(k); found {
				return nil, fmt.Errorf("line %d: mapping key %s already defined", n.Content[i].Line, k)
			}
			v, err := fromNode(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			d.SetKey(k, v)
		}
		return d, nil
	case yaml.SequenceNode:
		l := make([]starlark.Value, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return starlark.NewList(l), nil
	case yaml.ScalarNode:
		return fromScalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func fromScalar(n *yaml.Node) (starlark.Value, error) {
	switch n.ShortTag() {
	case "!!null":
		return starlark.None, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return starlark.Bool(b), nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return starlark.MakeInt64(i), nil
		}
		bi, ok := new(big.Int).SetString(strings.ReplaceAll(n.Value, "_", ""), 0)
		if !ok {
			return nil, fmt.Errorf("line %d: invalid integer %q", n.Line, n.Value)
		}
		return starlark.MakeBigInt(bi), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return starlark.Float(f), nil
	}
	return starlark.String(n.Value), nil
}
