package kube

import (
	"math"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, in, want string // want: the Starlark repr, or "error: …"
	}{
		{"object order kept", `{"b": 1, "a": 2}`, `{"b": 1, "a": 2}`},
		{"types", `[1, 2.5, -3e2, "s", true, false, null, {}, []]`, `[1, 2.5, -300.0, "s", True, False, None, {}, []]`},
		{"big int", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"unicode escapes", `"\u00e9\ud83d\ude00"`, `"é😀"`},
		// MyNodeOne (service-registry.sh): pretty JSON with newlines turned into spaces.
		{"newlines as spaces", `{   "immich": {     "port": 80,     "public": true   } }`, `{"immich": {"port": 80, "public": True}}`},
		// … and kubectl patch decoding jq's escapes once too often.
		{"raw newline in string", "{\"note\": \"a\nb\"}", `{"note": "a\nb"}`},
		{"raw tab in string", "[\"a\tb\"]", `["a\tb"]`},
		{"stray backslash", `{"path": "C:\data"}`, `{"path": "C:\\data"}`},
		{"valid escapes kept", `{"s": "a\"b\\c\/d\n"}`, `{"s": "a\"b\\c/d\n"}`},
		{"syntax error", `{"a": 1,,}`, `error: at offset 8: invalid character ','`},
		{"truncated", `{"a": [1, 2`, `error: unexpected end of JSON`},
		{"trailing data", `{} {}`, `error: at offset 3: unexpected data after the JSON value`},
		{"empty", ``, `error: empty value`},
		{"not repairable", "{\"a\": \"x\n\" oops}", `error: invalid character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _, err := decodeJSON(tt.in)
			if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestEncodeJSON(t *testing.T) {
	d := starlark.NewDict(0)
	d.SetKey(starlark.String("z"), starlark.MakeInt(1))
	d.SetKey(starlark.String("a"), starlark.NewList([]starlark.Value{starlark.Float(2), starlark.Float(0.5), starlark.None, starlark.String("<&>")}))
	d.SetKey(starlark.String("m"), starlark.NewDict(0))
	got, err := encodeJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": [\n    2.0,\n    0.5,\n    null,\n    \"<&>\"\n  ],\n  \"m\": {},\n  \"z\": 1\n}\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Canonical: a decode/encode round trip of the output is the identity.
	v, _, err := decodeJSON(got)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := encodeJSON(v); again != got {
		t.Errorf("round trip changed the text:\n%s", again)
	}
	for _, bad := range []starlark.Value{
		starlark.Float(math.Inf(1)),
		starlark.NewList([]starlark.Value{starlark.NewSet(0)}),
	} {
		if _, err := encodeJSON(bad); err == nil {
			t.Errorf("encodeJSON(%s) succeeded", bad)
		}
	}
	bad := starlark.NewDict(0)
	bad.SetKey(starlark.MakeInt(1), starlark.None)
	if _, err := encodeJSON(bad); err == nil || !strings.Contains(err.Error(), "dict has int key 1, want string") {
		t.Errorf("int key: %v", err)
	}
}
