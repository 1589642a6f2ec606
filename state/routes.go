package state

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// The routing table (MyNodeOne's rules, written down):
//
//	service has a routing.json entry   served on each domain the entry lists, on each VPS whose address
//	                                   the entry lists; nowhere when either list is empty. public is not
//	                                   consulted: the entry alone decides.
//	no entry, public: true             served on every VPS under that VPS's own domain (registry "domain")
//	no entry, public: false            not served on any VPS
//	subdomain "@" or ""                the domain itself (its root); otherwise <subdomain>.<domain>
//	two services, one host on a VPS    the first by service name is served, the other reported
//	broken routing.json entry          its service is served nowhere until the entry is fixed

// routes computes every managed VPS's routes.
func (p *parser) routes() {
	for _, n := range p.m.Entries {
		if n.Kind != VPS || n.Disposition != Managed {
			continue
		}
		if n.Domain == "" {
			p.add(LevelWarning, RegistryCM, RegistryKey, n.Ref(), "domain",
				"none recorded: public services without a routing.json entry are not served on this VPS (add-vps or adopt records it)")
		}
		routes, probs := p.m.routesFor(n.IP, n.Domain, n.Name)
		p.m.Routes[n.Name] = routes
		p.m.Problems = append(p.m.Problems, probs...)
	}
}

// RoutesFor returns the routes of a VPS at address ip whose own domain is
// domain ("" for none), by the routing table above. It serves VPSes that are
// not (yet) registered as well: add-vps and adopt push before registering.
// Conflicts are returned as problems.
func (m *Model) RoutesFor(ip netip.Addr, domain string) ([]Route, []Problem) {
	return m.routesFor(ip.Unmap(), strings.ToLower(domain), ip.String())
}

func (m *Model) routesFor(ip netip.Addr, domain, who string) ([]Route, []Problem) {
	var probs []Problem
	byHost := map[string]Route{}
	for _, s := range m.Services {
		if s.Port == 0 {
			continue // no port: named in /etc/hosts only
		}
		type target struct{ domain, via string }
		var targets []target
		if r, ok := m.Routing[s.Name]; ok {
			if r.Broken || !slices.Contains(r.VPS, ip) {
				continue
			}
			for _, d := range r.Domains {
				targets = append(targets, target{d, "routing"})
			}
		} else if s.Public && domain != "" {
			targets = append(targets, target{domain, "public"})
		}
		for _, t := range targets {
			host := s.HostUnder(t.domain)
			if err := HostName(host); err != nil {
				probs = append(probs, Problem{Level: LevelInvalid, ConfigMap: ServicesCM, Key: ServicesKey, Entry: quote(s.Name), Field: "subdomain",
					Message: fmt.Sprintf("under %s: %v: not served there", t.domain, err)})
				continue
			}
			if prev, taken := byHost[host]; taken {
				if prev.Service != s.Name {
					probs = append(probs, Problem{Level: LevelWarning, ConfigMap: ServicesCM, Key: ServicesKey, Entry: quote(s.Name), Field: "subdomain",
						Message: fmt.Sprintf("%s on %s is also published by %s: routed to %s (first by name), not to this service", host, who, quote(prev.Service), quote(prev.Service))})
				}
				continue
			}
			byHost[host] = Route{Host: host, Service: s.Name, Backend: s.Backend(), Domain: t.domain, Via: t.via}
		}
	}
	out := make([]Route, 0, len(byHost))
	for _, r := range byHost {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, probs
}

// ServedOn returns, for a service, the hosts each managed VPS serves it on.
func (m *Model) ServedOn(service string) map[string][]string {
	out := map[string][]string{}
	for vps, routes := range m.Routes {
		for _, r := range routes {
			if r.Service == service {
				out[vps] = append(out[vps], r.Host)
			}
		}
	}
	return out
}

// hosts computes the /etc/hosts entries of laptops and workers, as
// MyNodeOne's sync-dns.sh named services: <subdomain>.<cluster-domain>.local
// (the apex for "@" or ""), and "dashboard" also as the bare
// <cluster-domain>.local when no service claims it. A name claimed with two
// addresses goes to the first service by name; the other is reported.
func (p *parser) hosts() {
	if p.m.Cluster.Domain == "" {
		return
	}
	base := p.m.Cluster.Domain + ".local"
	apexClaimed := false
	for _, s := range p.m.Services {
		apexClaimed = apexClaimed || s.Subdomain == ""
	}
	names := map[string]HostEntry{}
	claim := func(name string, s Service) {
		if err := HostName(name); err != nil {
			p.add(LevelInvalid, ServicesCM, ServicesKey, quote(s.Name), "subdomain", fmt.Sprintf("%v: not named in /etc/hosts", err))
			return
		}
		if prev, taken := names[name]; taken {
			if prev.IP != s.IP {
				p.add(LevelWarning, ServicesCM, ServicesKey, quote(s.Name), "subdomain",
					fmt.Sprintf("%s is also claimed by %s (%s): named for %s (first by name), not for this service (%s)", name, quote(prev.Service), prev.IP, quote(prev.Service), s.IP))
			}
			return
		}
		names[name] = HostEntry{IP: s.IP, Name: name, Service: s.Name}
	}
	for _, s := range p.m.Services {
		claim(s.HostUnder(base), s)
		if s.Subdomain == "dashboard" && !apexClaimed {
			claim(base, s)
		}
	}
	for _, h := range names {
		p.m.Hosts = append(p.m.Hosts, h)
	}
	sort.Slice(p.m.Hosts, func(i, j int) bool { return p.m.Hosts[i].Name < p.m.Hosts[j].Name })
}

// RouterKey returns the Traefik router (and service) name of a host:
// "mno-" and the host with '-' doubled and '.' turned into '-'. Labels never
// start or end with '-', so the mapping is one to one: a-b.example.com
// (mno-a--b-example-com) and a.b.example.com (mno-a-b-example-com) differ.
func RouterKey(host string) string {
	var b strings.Builder
	b.WriteString("mno-")
	for i := 0; i < len(host); i++ {
		switch c := host[i]; c {
		case '-':
			b.WriteString("--")
		case '.':
			b.WriteByte('-')
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// HTTPRouterSuffix ends the name of a host's plain-HTTP router (which
// redirects to HTTPS); '_' never occurs in a RouterKey, so no host's key
// can end in it.
const HTTPRouterSuffix = "_http"
