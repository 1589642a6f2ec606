package encoding

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.starlark.net/starlark"
	"gopkg.in/yaml.v3"

	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
)

// yaml.set edits a YAML document as a document: parse, set the value at a
// path, encode. It is how a secret document (a kubeconfig) is changed
// without revealing it to the script and without string replacement, which a
// value with a newline could turn into new keys.
func yamlSet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var textV, value starlark.Value
	var pathL *starlark.List
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "text", &textV, "path", &pathL, "value", &value); err != nil {
		return nil, err
	}
	text, textSecret, err := secret.Text(textV)
	if err != nil {
		return nil, fmt.Errorf("%s: text: %v", b.Name(), err)
	}
	var path []string
	for i := 0; i < pathL.Len(); i++ {
		switch x := pathL.Index(i).(type) {
		case starlark.String:
			path = append(path, string(x))
		case starlark.Int:
			path = append(path, x.String())
		default:
			return nil, fmt.Errorf("%s: path[%d]: got %s, want a key (string), an index (int) or \"*\"", b.Name(), i, x.Type())
		}
	}
	if len(path) == 0 {
		return nil, fmt.Errorf("%s: empty path", b.Name())
	}
	e := &encoder{}
	val, err := e.node(value, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: value: %v", b.Name(), err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		if textSecret {
			// A parser message may quote the text: keep only where.
			where := regexp.MustCompile(`line \d+`).FindString(err.Error())
			return nil, fmt.Errorf("%s: the (secret) text is not valid YAML (%s)", b.Name(), where)
		}
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the text holds no YAML document", b.Name())
	}
	if n := setAt(doc.Content[0], path, val); n == 0 {
		return nil, fmt.Errorf("%s: nothing at %s", b.Name(), showPath(path))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	enc.Close()
	if textSecret || e.tainted {
		return runctx.From(thread).Secret(buf.String()), nil
	}
	return starlark.String(buf.String()), nil
}

// setAt sets val at path below n and returns how many places it set. "*"
// matches every entry of a list or mapping; the last key is added to a
// mapping that lacks it.
func setAt(n *yaml.Node, path []string, val *yaml.Node) int {
	if len(path) == 0 {
		*n = *val
		return 1
	}
	key, rest := path[0], path[1:]
	count := 0
	switch n.Kind {
	case yaml.MappingNode:
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if key == "*" || n.Content[i].Value == key {
				found = true
				count += setAt(n.Content[i+1], rest, val)
			}
		}
		if !found && key != "*" && len(rest) == 0 {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, val)
			count++
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if key == "*" || key == strconv.Itoa(i) {
				count += setAt(c, rest, val)
			}
		}
	}
	return count
}

func showPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil || p == "*" {
			fmt.Fprintf(&b, "[%s]", p)
		} else {
			fmt.Fprintf(&b, ".%s", p)
		}
	}
	return strings.TrimPrefix(b.String(), ".")
}
