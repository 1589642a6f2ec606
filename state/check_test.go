package state

import (
	"net/netip"
	"strings"
	"testing"
)

func route(host, backend string) Route {
	return Route{Host: host, Service: "s", Backend: netip.MustParseAddrPort(backend)}
}

const goodRoutes = `# Managed by mno
http:
  routers:
    mno-a--b-example-com:
      rule: Host(` + "`a-b.example.com`" + `)
      service: mno-a--b-example-com
      entryPoints:
        - websecure
      tls:
        certResolver: letsencrypt
    mno-a--b-example-com_http:
      rule: Host(` + "`a-b.example.com`" + `)
      service: mno-a--b-example-com
      entryPoints:
        - web
      middlewares:
        - mno-https-redirect
  services:
    mno-a--b-example-com:
      loadBalancer:
        servers:
          - url: http://10.1.0.5:80
  middlewares:
    mno-https-redirect:
      redirectScheme:
        scheme: https
        permanent: true
`

func TestCheckRoutes(t *testing.T) {
	want := []Route{route("a-b.example.com", "10.1.0.5:80")}
	if err := CheckRoutes(goodRoutes, want); err != nil {
		t.Fatalf("the good file: %v", err)
	}
	if err := CheckRoutes("# Managed by mno\n{}\n", nil); err != nil {
		t.Errorf("empty routes: %v", err)
	}
	bad := map[string]struct{ text, err string }{
		"rule with a catch-all": {strings.Replace(goodRoutes, "Host(`a-b.example.com`)", "Host(`a`) || PathPrefix(`/`) || Host(`b`)", 1), "want exactly"},
		"a second rule":         {strings.Replace(goodRoutes, "  services:", "    evil:\n      rule: PathPrefix(`/`)\n      service: mno-a--b-example-com\n      entryPoints: [websecure]\n  services:", 1), `router "evil" routes no published host`},
		"priority":              {strings.Replace(goodRoutes, "      tls:", "      priority: 1000\n      tls:", 1), `unexpected key "priority"`},
		"other backend":         {strings.Replace(goodRoutes, "10.1.0.5:80", "169.254.169.254:80", 1), "want http://10.1.0.5:80"},
		"two servers":           {strings.Replace(goodRoutes, "          - url: http://10.1.0.5:80", "          - url: http://10.1.0.5:80\n          - url: http://10.9.9.9:80", 1), "exactly one server"},
		"duplicate key":         {strings.Replace(goodRoutes, "  middlewares:\n    mno-https", "  services:\n    x: {}\n  middlewares:\n    mno-https", 1), "already defined"},
		"alias":                 {strings.Replace(goodRoutes, "      tls:\n        certResolver: letsencrypt", "      tls: &t\n        certResolver: letsencrypt", 1), "anchors and aliases"},
		"tcp section":           {goodRoutes + "tcp:\n  routers: {}\n", `unexpected key "tcp"`},
		"two documents":         {goodRoutes + "---\nhttp: {}\n", "more than one YAML document"},
		"missing host":          {"{}\n", "configures something"},
		"undefined middleware":  {strings.Replace(goodRoutes, "        - mno-https-redirect", "        - auth", 1), `middleware "auth" is not defined`},
	}
	for name, c := range bad {
		w := want
		if name == "missing host" {
			err := CheckRoutes(c.text, want)
			if err == nil || !strings.Contains(err.Error(), "http") {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		err := CheckRoutes(c.text, w)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err %v, want %q", name, err, c.err)
		}
	}
	if err := CheckRoutes(goodRoutes, nil); err == nil {
		t.Error("routes when none are published passed")
	}
}

func TestCheckHosts(t *testing.T) {
	old := "127.0.0.1\tlocalhost\n192.168.1.10\tnas\n"
	lines := []string{"10.1.0.5\tblog.home.local"}
	good := old + "\n" + HostsBegin + "\n" + lines[0] + "\n" + HostsEnd + "\n"
	if err := CheckHosts(old, good, lines); err != nil {
		t.Fatalf("good: %v", err)
	}
	if err := CheckHosts(good, old, nil); err != nil {
		t.Errorf("block removed: %v", err)
	}
	bad := map[string]struct {
		new   string
		lines []string
		err   string
	}{
		"second block":      {good + HostsBegin + "\n" + HostsEnd + "\n", lines, "exactly one BEGIN"},
		"stray END":         {good + "# END mno\n", lines, "exactly one BEGIN and one END marker, found 1 and 2"},
		"line added":        {good + "6.6.6.6\tbank.com\n", lines, `line "6.6.6.6\tbank.com" outside mno's block was not in the file before`},
		"extra block line":  {strings.Replace(good, lines[0], lines[0]+"\n6.6.6.6\tbank.com", 1), lines, "other than the 1 entries"},
		"marker left":       {old + "# END mno\n", nil, "holds an mno marker"},
		"injected entry":    {good, []string{"10.1.0.5\n# END mno\tx.home.local"}, "not a canonical IP address"},
		"no newline at end": {strings.TrimSuffix(good, "\n"), lines, "does not end with a newline"},
	}
	for name, c := range bad {
		err := CheckHosts(old, c.new, c.lines)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err %v, want %q", name, err, c.err)
		}
	}
}
