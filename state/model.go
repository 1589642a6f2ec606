package state

import (
	"net/netip"
	"strconv"
)

// The ConfigMaps (all in kube-system) and their keys.
const (
	RegistryCM    = "sync-controller-registry"
	RegistryKey   = "registry.json"
	ServicesCM    = "service-registry"
	ServicesKey   = "services.json"
	DomainsCM     = "domain-registry"
	DomainsKey    = "domains.json"
	RoutingKey    = "routing.json"
	ClusterInfoCM = "cluster-info"
	// cluster-info keys.
	ClusterNameKey    = "cluster-name"
	ClusterDomainKey  = "cluster-domain"
	ControlPlaneIPKey = "control-plane-ip"
)

// ConfigMaps lists the four ConfigMaps the model is read from.
var ConfigMaps = []string{RegistryCM, ServicesCM, DomainsCM, ClusterInfoCM}

// Input is the data of the four ConfigMaps; nil means the ConfigMap does not
// exist.
type Input struct {
	Registry, Services, Domains, ClusterInfo map[string]string
}

// Kind is a node's role.
type Kind string

const (
	VPS    Kind = "vps"
	Worker Kind = "worker"
	Laptop Kind = "laptop"
)

// Kinds lists the node kinds with the registry.json list that holds each, in
// the order the model reads them.
var Kinds = []struct {
	Kind Kind
	List string
}{{VPS, "vps_nodes"}, {Worker, "worker_nodes"}, {Laptop, "management_laptops"}}

// ListOf returns the registry.json list of kind ("" for an unknown kind).
func ListOf(k Kind) string {
	for _, x := range Kinds {
		if x.Kind == k {
			return x.List
		}
	}
	return ""
}

// Disposition is what the model does with a registry entry.
type Disposition string

const (
	// Managed entries are synced.
	Managed Disposition = "managed"
	// Invalid entries failed a check; they are never pushed to or written.
	Invalid Disposition = "invalid"
	// Superseded entries share their name with a later entry of the same
	// list (MyNodeOne re-registered the node after an address change).
	Superseded Disposition = "superseded"
	// ControlPlane entries have the control plane's own address (MyNodeOne
	// registers the CP as a laptop): never pushed to as a node.
	ControlPlane Disposition = "control-plane"
	// Ambiguous entries share their name with an entry of another kind.
	Ambiguous Disposition = "ambiguous"
)

// Node is one registry.json entry.
type Node struct {
	Kind  Kind
	List  string // its registry.json list
	Index int    // its position in that list
	Name  string // "" when the entry has no valid name
	IP    netip.Addr
	// SSHUser and SSHPort are the login (defaults root and 22).
	SSHUser  string
	SSHPort  int
	HostKey  string
	Domain   string     // a VPS's public domain (lower case), "" if none
	PublicIP netip.Addr // invalid when not recorded
	Labels   map[string]string
	// Status fields, shown as they are.
	Status, LastSync, LastError, Registered, Applied string
	// Raw is the entry as decoded (every field, for round trips).
	Raw map[string]any
	// Disposition and, when not Managed, why.
	Disposition Disposition
	Reason      string
}

// Ref names the entry for messages: `vps_nodes[2] "vps-1"`.
func (n Node) Ref() string {
	ref := n.List + "[" + strconv.Itoa(n.Index) + "]"
	if s, ok := n.Raw["name"].(string); ok {
		ref += " " + quote(s)
	}
	return ref
}

// Service is one services.json entry.
type Service struct {
	Name      string
	Subdomain string // lower case; "" is the apex ("@" and "" in the registry)
	IP        netip.Addr
	Port      int // 0 when the registry has none: named, not routed
	Public    bool
	Namespace string
	Service   string
	Raw       map[string]any
}

// Backend is where traffic for the service goes.
func (s Service) Backend() netip.AddrPort { return netip.AddrPortFrom(s.IP, uint16(s.Port)) }

// HostUnder returns the service's host name under domain.
func (s Service) HostUnder(domain string) string {
	if s.Subdomain == "" {
		return domain
	}
	return s.Subdomain + "." + domain
}

// Routing is one routing.json entry: the only domains and VPSes its service
// is served on.
type Routing struct {
	Service  string
	Domains  []string // lower case, valid
	VPS      []netip.Addr
	Strategy string
	// Broken is set when the entry as a whole could not be read (not an
	// object, domains not a list): its service is then served nowhere.
	Broken bool
	Raw    map[string]any
}

// Domain is one domains.json domain.
type Domain struct {
	Name        string
	Description string
	Status      string
}

// VPSRecord is one domains.json vps_nodes entry.
type VPSRecord struct {
	TailscaleIP netip.Addr
	PublicIP    netip.Addr // invalid when not recorded
	Location    string
	Raw         map[string]any
}

// Cluster is cluster-info.
type Cluster struct {
	Name           string
	Domain         string     // cluster-domain, lower case; "" when missing or invalid
	ControlPlaneIP netip.Addr // invalid when missing or invalid
	// Data is cluster-info with invalid values removed.
	Data map[string]string
}

// Route is one host a VPS serves.
type Route struct {
	Host    string // lower case
	Service string // its service-registry name
	Backend netip.AddrPort
	Domain  string // the domain the host is under
	// Via says why the VPS serves it: "public" (a public service on the
	// VPS's own domain) or "routing" (its routing.json entry).
	Via string
}

// URL is the backend as Traefik's loadBalancer takes it.
func (r Route) URL() string { return "http://" + r.Backend.String() }

// HostEntry is one /etc/hosts line of laptops and workers.
type HostEntry struct {
	IP      netip.Addr
	Name    string
	Service string
}

// Line is the entry as written: "ip<TAB>name".
func (h HostEntry) Line() string { return h.IP.String() + "\t" + h.Name }

// Model is the validated cluster state.
type Model struct {
	Cluster Cluster
	// Entries are all registry entries, in list order (vps, worker, laptop),
	// each with its disposition.
	Entries []Node
	// Services are the valid services, sorted by name.
	Services []Service
	// Routing holds the routing.json entries by service name (broken ones
	// included, flagged).
	Routing map[string]Routing
	Domains []Domain
	VPS     []VPSRecord
	// Routes are the routes of each managed VPS, by node name, sorted by host.
	Routes map[string][]Route
	// Hosts are the /etc/hosts entries, sorted by name.
	Hosts []HostEntry
	// Problems found, in the order found.
	Problems []Problem
	// Raw documents (valid JSON objects, or nil) for round trips.
	RawRegistry, RawServices, RawDomains, RawRouting map[string]any
}

// Nodes returns the managed nodes: the entries sync pushes to.
func (m *Model) Nodes() []Node {
	var out []Node
	for _, n := range m.Entries {
		if n.Disposition == Managed {
			out = append(out, n)
		}
	}
	return out
}

// Find returns the managed node called name.
func (m *Model) Find(name string) (Node, bool) {
	for _, n := range m.Entries {
		if n.Disposition == Managed && n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Service returns the valid service called name.
func (m *Model) Service(name string) (Service, bool) {
	for _, s := range m.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Invalid reports whether any problem is of level Invalid.
func (m *Model) Invalid() bool {
	for _, p := range m.Problems {
		if p.Level == LevelInvalid {
			return true
		}
	}
	return false
}
