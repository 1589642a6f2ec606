package secret

import (
	"fmt"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

func TestRedactorLongestFirst(t *testing.T) {
	r := NewRedactor()
	r.Add("abcd")
	r.Add("abcdefgh")
	r.Add("xy") // too short to scrub from free text
	got := r.Redact("1 abcdefgh 2 abcd 3 xy")
	if got != "1 <redacted> 2 <redacted> 3 xy" {
		t.Errorf("got %q", got)
	}
	r.Add("line-one-secret\nline-two-secret")
	if got := r.Redact("echo line-two-secret"); got != "echo <redacted>" {
		t.Errorf("multi-line secrets are scrubbed line by line: %q", got)
	}
}

func TestSecretNeverFormats(t *testing.T) {
	s := New("clear-text")
	for _, out := range []string{s.String(), fmt.Sprintf("%v %s %q %+v", s, s, s, s)} {
		if strings.Contains(out, "clear") {
			t.Errorf("formatted secret leaks: %q", out)
		}
	}
	if _, err := s.MarshalJSON(); err == nil {
		t.Error("MarshalJSON of a secret must fail")
	}
}

func TestSubstitute(t *testing.T) {
	s := New("pw")
	d := starlark.NewDict(1)
	d.SetKey(starlark.String("k"), starlark.NewList([]starlark.Value{s, starlark.String("x")}))
	out, subs, err := Substitute(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 {
		t.Fatalf("subs = %v", subs)
	}
	for tok, clear := range subs {
		if clear != "pw" || !strings.Contains(out.String(), tok) {
			t.Errorf("token %q → %q not in %s", tok, clear, out)
		}
	}
	if Contains(out) || !Contains(d) {
		t.Error("Contains: the copy must hold no secret, the original must")
	}
}
