package starkit

import (
	"os/exec"
	"testing"
)

// TestShellQuoteRoundTrip: whatever the argument, sh receives it unchanged.
func TestShellQuoteRoundTrip(t *testing.T) {
	args := []string{"plain", "", "with space", "it's", `"dq"`, "$HOME", "`id`", "a;b", "x\ny", "*", "-n", "100%", "a\\b", "ünï"}
	for _, a := range args {
		out, err := exec.Command("sh", "-c", "printf '%s' "+ShellQuote(a)).Output()
		if err != nil {
			t.Fatalf("%q: %v", a, err)
		}
		if string(out) != a {
			t.Errorf("ShellQuote(%q) = %s: sh printed %q", a, ShellQuote(a), out)
		}
	}
	if got := ShellJoin([]string{"echo", "a b", "c"}); got != "echo 'a b' c" {
		t.Errorf("ShellJoin = %q", got)
	}
}
