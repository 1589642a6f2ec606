package state

import (
	"strings"
	"testing"
)

// FuzzParse: whatever the ConfigMaps hold, Parse does not panic, and what
// the model hands to renderers is valid: node names and addresses, route
// hosts and backends, hosts lines, one router key per host, one-line
// problems. Run briefly with: go test ./state -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	fx := fixture(f, "configmaps.json")
	f.Add(fx[RegistryCM][RegistryKey], fx[ServicesCM][ServicesKey], fx[DomainsCM][RoutingKey], "minicloud", "100.76.150.207")
	f.Add(`{"vps_nodes":[{"name":"v","ip":"100.64.0.1","domain":"example.com"}]}`,
		`{"e":{"subdomain":"a`+"`"+`) || PathPrefix(`+"`/`"+`) || Host(`+"`b"+`","ip":"10.0.0.1\n# END mno","port":"eighty","public":true}}`,
		`{"e":{"domains":["a.com",""],"vps_nodes":["100.64.0.1",""]}}`, "home", "169.254.169.254")
	f.Add(`{"management_laptops":[{"ip":"1.2.3.4"},{"name":"x","ip":"1.2.3.4"},{"name":"x","ip":"1.2.3.5"}]}`,
		`{"a":{"subdomain":"a-b","ip":"10.0.0.2","port":80,"public":true},"b":{"subdomain":"a.b","ip":"10.0.0.3","port":80,"public":true}}`,
		` `, "a", "")
	f.Fuzz(func(t *testing.T, registry, services, routing, domain, cp string) {
		m := Parse(Input{
			Registry:    map[string]string{RegistryKey: registry},
			Services:    map[string]string{ServicesKey: services},
			Domains:     map[string]string{RoutingKey: routing},
			ClusterInfo: map[string]string{ClusterDomainKey: domain, ControlPlaneIPKey: cp},
		})
		for _, n := range m.Nodes() {
			if NodeName(n.Name) != nil || !n.IP.IsValid() || n.IP.IsLinkLocalUnicast() || Port(int64(n.SSHPort)) != nil || UserName(n.SSHUser) != nil {
				t.Fatalf("managed node with invalid fields: %+v", n)
			}
			keys := map[string]bool{}
			for _, r := range m.Routes[n.Name] {
				if HostName(r.Host) != nil || strings.ContainsAny(r.Host, "`()| \n") {
					t.Fatalf("route host %q", r.Host)
				}
				if _, err := Addr(r.Backend.Addr().String(), BackendAddr); err != nil || r.Backend.Port() == 0 {
					t.Fatalf("route backend %v: %v", r.Backend, err)
				}
				if keys[RouterKey(r.Host)] {
					t.Fatalf("router key %s used twice", RouterKey(r.Host))
				}
				keys[RouterKey(r.Host)] = true
			}
		}
		var lines []string
		for _, h := range m.Hosts {
			lines = append(lines, h.Line())
		}
		if err := CheckHosts("", hostsBlock(lines), lines); err != nil {
			t.Fatalf("hosts entries do not pass CheckHosts: %v\n%q", err, lines)
		}
		for _, p := range m.Problems {
			if strings.ContainsAny(p.String(), "\n\r") {
				t.Fatalf("problem spans lines: %q", p.String())
			}
		}
	})
}

func hostsBlock(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return HostsBegin + "\n" + strings.Join(lines, "\n") + "\n" + HostsEnd + "\n"
}

// FuzzDecodeJSON: the lenient decoder never panics, and whatever it repairs
// is valid JSON afterwards.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a": "Backup\share"}`, "{\"a\": \"x\ny\"}", ` `, `{"a": 1,,}`, `"\u00e9"`, `[1, 2.5e3, null]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, rep, err := DecodeJSON(text)
		if err == nil && v == nil && !Blank(text) {
			t.Fatalf("%q decoded to nothing", text)
		}
		if rep.Changed() {
			fixed, _ := RepairJSON(text)
			if _, err := decodeStrict(fixed); err != nil {
				t.Fatalf("repaired %q does not parse: %v", fixed, err)
			}
		}
	})
}
