package kubeapitest

import (
	"regexp"
	"strings"
	"testing"
)

func TestNamePrefix(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := []struct {
		test, want string
	}{
		{"TestConfigMaps", "testconfigmaps-"},
		{"TestX/fresh_namespace", "testx-fresh-namespace-"},
		{"TestX/#01", "testx-01-"},
		{"///", "test-"},
		{strings.Repeat("Ab_", 40), ""},
	}
	for _, tt := range tests {
		t.Run(tt.test, func(t *testing.T) {
			got := namePrefix(tt.test)
			if tt.want != "" && got != tt.want {
				t.Errorf("namePrefix(%q) = %q, want %q", tt.test, got, tt.want)
			}
			// The server appends five characters; the result must be a DNS label.
			if name := got + "abcde"; len(name) > 63 || !label.MatchString(name) {
				t.Errorf("namePrefix(%q) = %q: %q is not a DNS label", tt.test, got, name)
			}
		})
	}
}
