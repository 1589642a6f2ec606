// Package state exposes the cluster's state — the four MyNodeOne ConfigMaps
// in kube-system, validated entry by entry — to playbooks and roles.
//
//	state.read(namespace="kube-system") -> the model; reads the four ConfigMaps (journaled kube reads, also in dry-run) and reports each problem once per run
//	state.parse(registry=None, services=None, domains=None, cluster_info=None) -> the model of ConfigMap data given as dicts (None: missing); reports nothing
//	state.router_key(host) -> the Traefik router and service name of host ("mno-a--b-example-com" for a-b.example.com)
//	state.check_routes(text, routes) -> text, or an error if the routes file says anything but routes (route structs: host, url)
//	state.check_hosts(old, new, lines) -> new, or an error unless new is old with exactly one mno block holding lines
//	state.check_node(kind, entry) -> None, or an error naming the first field of a registry entry that the model would refuse
//	state.valid(what, value) -> None, or why value is not valid; what: node_name host_name domain subdomain node_ip service_ip port user host_key service_name
//	state.HOSTS_BEGIN state.HOSTS_END state.HTTP_ROUTER_SUFFIX   the hosts block's markers; the suffix of a host's HTTP router
//
// The model (a frozen struct) has:
//
//	nodes             the managed nodes: valid, current, not the control plane — what sync pushes to
//	entries           every registry entry, each with disposition (managed invalid superseded
//	                  control-plane ambiguous) and reason
//	hosts             the /etc/hosts entries of laptops and workers: struct(ip, name, service, line)
//	problems          struct(level, configmap, key, entry, field, message, text) for each finding
//	services routing domains info registry   the valid data as dicts, in MyNodeOne's shapes
//	cluster_name cluster_domain control_plane_ip   from cluster-info ("" when missing or invalid)
//
// and two methods: find(name) returns the managed node called name, or None;
// routes(ip, domain="") the routes of a VPS at ip whose own domain is domain,
// registered or not (add-vps and adopt push before they register).
//
// A node is struct(kind, list, index, name, ip, ssh_user, ssh_port, host_key,
// domain, public_ip, labels, status, last_sync, last_error, registered,
// applied, disposition, reason, entry, routes): entry is the registry entry
// as stored (every field), routes a VPS's routes. A route is struct(host,
// service, name, url, backend, domain, via, key): via is "public" or
// "routing", key the router name.
//
// Validation, entry by entry (an invalid entry is skipped — never pushed to,
// rendered or written — with a problem naming ConfigMap, key, entry, field
// and why; the rest is used): node names are host names as `hostname`
// prints them (letters of either case, digits, '-', '.', at most 63), so
// MyNodeOne's $HOSTNAME names pass; ip and control-plane-ip are IP literals,
// never host names, and never unspecified, link-local (169.254.169.254 is
// cloud metadata), multicast or broadcast — a service's ip not loopback
// either; ports are integers 1–65535 (a service without one is named, not
// routed, as MyNodeOne did); subdomains "@", "" or DNS labels;
// domains and cluster-domain host names. MyNodeOne's quirks are read as it
// meant them, with a warning: escapes its sed left invalid ("Backup\share"),
// blank documents, a port as a string of digits, a name registered twice
// (the later entry is the node), the control plane registered as a laptop
// (recognised by control-plane-ip, never pushed to).
//
// Where a service is served (MyNodeOne's routing rules):
//
//	routing.json entry for the service   each listed domain, on each VPS whose address is listed;
//	                                     none when either list is empty; public is not consulted
//	no entry, "public": true             every VPS, under that VPS's own domain (registry "domain")
//	no entry, "public": false            no VPS
//	subdomain "@" or ""                  the domain itself; otherwise <subdomain>.<domain>
//	one host, two services               the first by service name; the other is reported
//	broken entry (lists not lists)       its service is served nowhere until it is fixed
//
// Laptops and workers name every valid service <subdomain>.<cluster-domain>.local
// (the dashboard also as the bare <cluster-domain>.local when no service has it).
package state
