package encoding

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/secret"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the json and yaml modules.
func Module() starkit.Module {
	jsonMod := &starlarkstruct.Module{Name: "json", Members: starlark.StringDict{
		"encode":        starlark.NewBuiltin("json.encode", secretAware(starjson.Module.Members["encode"].(*starlark.Builtin))),
		"encode_indent": starlark.NewBuiltin("json.encode_indent", secretAware(starjson.Module.Members["encode_indent"].(*starlark.Builtin))),
		"decode":        starjson.Module.Members["decode"],
		"indent":        starjson.Module.Members["indent"],
	}}
	yamlMod := &starlarkstruct.Module{Name: "yaml", Members: starlark.StringDict{
		"encode":     starlark.NewBuiltin("yaml.encode", yamlEncode),
		"decode":     starlark.NewBuiltin("yaml.decode", yamlDecode),
		"decode_all": starlark.NewBuiltin("yaml.decode_all", yamlDecodeAll),
		"set":        starlark.NewBuiltin("yaml.set", yamlSet),
	}}
	return starkit.Module{
		Name:    "encoding",
		Doc:     starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"json": jsonMod, "yaml": yamlMod, "sha256": starlark.NewBuiltin("sha256", sha256sum)},
	}
}

func sha256sum(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return nil, err
	}
	text, isSecret, err := secret.Text(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if isSecret {
		return nil, fmt.Errorf("%s: refusing to hash a secret (a digest of a weak secret can be brute-forced)", b.Name())
	}
	sum := sha256.Sum256([]byte(text))
	return starlark.String(hex.EncodeToString(sum[:])), nil
}

type builtinFunc = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

// secretAware wraps a JSON encoder so that secrets inside the value are
// encoded with their clear text and the whole result becomes a secret.
func secretAware(enc *starlark.Builtin) builtinFunc {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) == 0 || !secret.Contains(args[0]) {
			return starlark.Call(thread, enc, args, kwargs)
		}
		sub, subs, err := secret.Substitute(args[0])
		if err != nil {
			return nil, starkit.Errorf(b.Name(), "%v", err)
		}
		nargs := append(starlark.Tuple{sub}, args[1:]...)
		v, err := starlark.Call(thread, enc, nargs, kwargs)
		if err != nil {
			return nil, err
		}
		out := string(v.(starlark.String))
		for tok, clear := range subs {
			q, _ := json.Marshal(clear)
			out = strings.ReplaceAll(out, `"`+tok+`"`, string(q))
		}
		return runctx.From(thread).Secret(out), nil
	}
}

func yamlEncode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return nil, err
	}
	text, tainted, err := Encode(x)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if tainted {
		return runctx.From(thread).Secret(text), nil
	}
	return starlark.String(text), nil
}

func yamlText(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (string, error) {
	var x starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &x); err != nil {
		return "", err
	}
	s, isSecret, err := secret.Text(x)
	if err != nil {
		return "", fmt.Errorf("%s: %v", b.Name(), err)
	}
	if isSecret {
		return "", fmt.Errorf("%s: cannot decode a secret into plain values", b.Name())
	}
	return s, nil
}

func yamlDecode(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := yamlText(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	docs, err := Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	switch len(docs) {
	case 0:
		return starlark.None, nil
	case 1:
		return docs[0], nil
	}
	return nil, fmt.Errorf("%s: the text holds %d documents; use yaml.decode_all", b.Name(), len(docs))
}

func yamlDecodeAll(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	s, err := yamlText(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	docs, err := Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	return starlark.NewList(docs), nil
}
