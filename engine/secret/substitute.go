package secret

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"go.starlark.net/starlark"
)

// Substitute returns a copy of v in which every secret is replaced by a unique
// random token string, and the map from token to clear text. Encoders use it
// to encode a value holding secrets with an ordinary encoder and then put the
// clear text back into a result that they return as a secret.
func Substitute(v starlark.Value) (starlark.Value, map[string]string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	s := &substituter{prefix: "mno-secret-" + hex.EncodeToString(b[:]) + "-", subs: map[string]string{}}
	out, err := s.walk(v, 0)
	return out, s.subs, err
}

type substituter struct {
	prefix string
	subs   map[string]string
}

func (s *substituter) walk(v starlark.Value, depth int) (starlark.Value, error) {
	if depth > 100 {
		return nil, fmt.Errorf("value nested too deeply")
	}
	switch x := v.(type) {
	case *Secret:
		tok := fmt.Sprintf("%s%d", s.prefix, len(s.subs))
		s.subs[tok] = x.value
		return starlark.String(tok), nil
	case *starlark.Dict:
		d := starlark.NewDict(x.Len())
		for _, kv := range x.Items() {
			val, err := s.walk(kv[1], depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(kv[0], val); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *starlark.List:
		elems := make([]starlark.Value, x.Len())
		for i := range elems {
			e, err := s.walk(x.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			elems[i] = e
		}
		return starlark.NewList(elems), nil
	case starlark.Tuple:
		elems := make(starlark.Tuple, len(x))
		for i := range x {
			e, err := s.walk(x[i], depth+1)
			if err != nil {
				return nil, err
			}
			elems[i] = e
		}
		return elems, nil
	case starlark.String, starlark.Int, starlark.Float, starlark.Bool, starlark.NoneType, starlark.Bytes:
		return v, nil
	case starlark.HasAttrs:
		if !Contains(v) {
			return v, nil
		}
		// A struct holding secrets becomes a dict with the same fields.
		d := starlark.NewDict(len(x.AttrNames()))
		for _, name := range x.AttrNames() {
			a, err := x.Attr(name)
			if err != nil || a == nil {
				continue
			}
			val, err := s.walk(a, depth+1)
			if err != nil {
				return nil, err
			}
			d.SetKey(starlark.String(name), val)
		}
		return d, nil
	}
	return v, nil
}
