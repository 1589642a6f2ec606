package state

import (
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		good  []string
		bad   map[string]string // value → part of the error
	}{
		{"NodeName", NodeName,
			[]string{"vps-1", "Vinay-ThinkPad", "canada-pc", "vinay-laptop.lan", "w1", strings.Repeat("a", 63)},
			map[string]string{"": "empty", "VPS_1": "not a node name", "-x": "not a node name", "a b": "not a node name",
				"x\n# END mno": "not a node name", strings.Repeat("a", 64): "longer than 63", "a..b": "not a node name"}},
		{"HostName", HostName,
			[]string{"photos.example.com", "a-b.example.com", "xn--bcher-kva.example", "minicloud"},
			map[string]string{"a`) || PathPrefix(`/`) || Host(`b": "not a host name", "a..b": "not a host name",
				"-a.com": "starts or ends with '-'", "a.com.": "not a host name", strings.Repeat("a.", 127) + "aa": "longer than 253"}},
		{"DomainName", DomainName,
			[]string{"example.com", "curiios.com", "a.b.example.org"},
			map[string]string{"localhost": "at least two labels", "10.0.0.1": "last label is a number", "exa mple.com": "not a host name"}},
		{"Subdomain", Subdomain,
			[]string{"", "@", "photos", "api.v2", "Photos"},
			map[string]string{"a`) || PathPrefix(`/`) || Host(`b": "not a subdomain", "@.x": "not a subdomain", "*": "not a subdomain"}},
		{"UserName", UserName,
			[]string{"root", "mno", "vinaysachdeva", "_svc", "a.b-c"},
			map[string]string{"": "not a user name", "bad user": "not a user name", "1abc": "not a user name",
				"[INFO] Detecting SSH user...\nroot": "not a user name"}},
		{"HostKey", HostKey,
			[]string{"SHA256:" + strings.Repeat("A", 43), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAib9fvRZPIrwuXQFLCVWnakuy2tvL7FG5rLvOJacov6 c"},
			map[string]string{"SHA256:short": "not a SHA256", "ssh-ed25519 AAAA\nx": "spans several lines", "key": "neither"}},
		{"ServiceName", ServiceName,
			[]string{"immich", "immich-server", "minio_console", "a.b"},
			map[string]string{"": "not a service name", "a b": "not a service name", "x\n": "not a service name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, g := range tt.good {
				if err := tt.check(g); err != nil {
					t.Errorf("%q: %v", g, err)
				}
			}
			for b, want := range tt.bad {
				err := tt.check(b)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%q: err %v, want %q", b, err, want)
				}
				if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
					t.Errorf("%q: the message spans lines: %q", b, err)
				}
			}
		})
	}
}

func TestAddr(t *testing.T) {
	tests := []struct {
		in   string
		use  AddrUse
		want string // canonical address, or "error: …"
	}{
		{"100.86.188.1", NodeAddr, "100.86.188.1"},
		{"10.213.0.5", BackendAddr, "10.213.0.5"},
		{"2001:db8::1", BackendAddr, "2001:db8::1"},
		{"::ffff:100.1.2.3", NodeAddr, "100.1.2.3"},
		{"127.1.0.5", NodeAddr, "127.1.0.5"},
		{"127.0.0.1", BackendAddr, "error: loopback"},
		{"::1", BackendAddr, "error: loopback"},
		{"169.254.169.254", BackendAddr, "error: link-local"},
		{"169.254.169.254", NodeAddr, "error: link-local"},
		{"::ffff:169.254.169.254", BackendAddr, "error: link-local"},
		{"fe80::1", NodeAddr, "error: link-local"},
		{"fe80::1%eth0", NodeAddr, "error: zone"},
		{"0.0.0.0", NodeAddr, "error: unspecified"},
		{"0.1.2.3", NodeAddr, "error: unspecified"},
		{"::", NodeAddr, "error: unspecified"},
		{"224.0.0.1", NodeAddr, "error: multicast"},
		{"ff02::1", BackendAddr, "error: multicast"},
		{"255.255.255.255", NodeAddr, "error: broadcast"},
		{"photos.example.com", BackendAddr, "error: not an IP address"},
		{"100.1.1.1\n# END mno\n6.6.6.6 evil.com", BackendAddr, "error: not an IP address"},
		{"100.1.1.1 ", BackendAddr, "error: not an IP address"},
		{"010.1.1.1", BackendAddr, "error: not an IP address"},
		{"1.2.3", BackendAddr, "error: not an IP address"},
		{"", NodeAddr, "error: not an IP address"},
	}
	for _, tt := range tests {
		a, err := Addr(tt.in, tt.use)
		if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Addr(%q, %d) = %v, %v; want error %q", tt.in, tt.use, a, err, want)
			}
			continue
		}
		if err != nil || a.String() != tt.want {
			t.Errorf("Addr(%q, %d) = %v, %v; want %s", tt.in, tt.use, a, err, tt.want)
		}
	}
}

func TestRouterKeyIsOneToOne(t *testing.T) {
	hosts := []string{"a-b.example.com", "a.b.example.com", "a--b.example.com", "a.-b.example.com", "ab.example.com",
		"example.com", "x.http", "x", "xn--bcher-kva.example", "xn.bcher-kva.example", "demo.example.test"}
	seen := map[string]string{}
	for _, h := range hosts {
		for _, k := range []string{RouterKey(h), RouterKey(h) + HTTPRouterSuffix} {
			if prev, dup := seen[k]; dup {
				t.Errorf("%s and %s share the router key %s", prev, h, k)
			}
			seen[k] = h
		}
	}
	if got := RouterKey("demo.example.test"); got != "mno-demo-example-test" {
		t.Errorf("RouterKey(demo.example.test) = %s (hosts without '-' keep their old keys)", got)
	}
	if a, b := RouterKey("a-b.example.com"), RouterKey("a.b.example.com"); a == b {
		t.Errorf("a-b and a.b share %s", a)
	}
}
