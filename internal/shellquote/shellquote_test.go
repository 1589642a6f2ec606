package shellquote

import (
	"os/exec"
	"strings"
	"testing"
)

// TestQuoteRoundTrip: whatever the argument, sh receives it unchanged.
func TestQuoteRoundTrip(t *testing.T) {
	args := []string{"plain", "", "with space", "it's", `"dq"`, "$HOME", "`id`", "a;b", "x\ny", "*", "-n", "100%", "a\\b", "ünï", "'", "''", strings.Repeat("'x", 1000)}
	for _, a := range args {
		out, err := exec.Command("sh", "-c", "printf '%s' "+Quote(a)).Output()
		if err != nil {
			t.Fatalf("%q: %v", a, err)
		}
		if string(out) != a {
			t.Errorf("Quote(%q) = %s: sh printed %q", a, Quote(a), out)
		}
	}
}

// TestJoinSplitsBack: the shell splits Join's result into exactly the argv it was given.
func TestJoinSplitsBack(t *testing.T) {
	if got := Join([]string{"echo", "a b", "c"}); got != "echo 'a b' c" {
		t.Errorf("Join = %q", got)
	}
	argv := []string{"a b", "", "it's", "$(id)", "x\ny"}
	out, err := exec.Command("sh", "-c", "printf '%s|' "+Join(argv)).Output()
	if err != nil || string(out) != strings.Join(argv, "|")+"|" {
		t.Errorf("sh split %q into %q (%v)", Join(argv), out, err)
	}
}
