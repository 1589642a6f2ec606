// Package state is the one model of the cluster's state that every playbook,
// role and `mno state` reads: the four MyNodeOne ConfigMaps, decoded
// leniently where MyNodeOne's scripts wrote quirky data, validated entry by
// entry, with MyNodeOne's routing rules applied. It does no I/O: its input is
// the ConfigMaps' data, its output a Model and the Problems found.
//
// Decoding. Each document is one JSON value in one key. Newlines turned into
// spaces parse as they are; a value only valid after repair (backslashes
// that start no escape, as `sed 's/"/\\"/g'` leaves "Backup\share", and raw
// control characters kubectl patch decoded from jq's escapes) is read as the
// text it stood for, with a warning; a blank document (" ") is empty, with a
// warning. A document that is not JSON, or not an object, is skipped whole.
//
// Validation. Every entry is checked on its own; an invalid one is skipped
// (never pushed to, rendered or written anywhere) with a problem naming
// ConfigMap, key, entry and field, and the other entries are used.
//
//	node name        a host name as `hostname` prints it: letters (either case), digits, '-', '.', at most 63
//	ip               an IP literal parsed with net/netip, never a host name; no zone, not unspecified
//	                 (0.0.0.0/8, ::), link-local (169.254.0.0/16 with cloud metadata, fe80::/10), multicast
//	                 or broadcast; a service's ip is not loopback either (it would publish a VPS's local ports)
//	control-plane-ip as a node's ip
//	port, ssh_port   an integer 1–65535 (a string of digits is read with a warning); a service
//	                 without a port is named in /etc/hosts but not routed, as MyNodeOne did
//	subdomain        "@" or "" (the domain itself) or RFC 1123 labels
//	domain           (a VPS's, routing.json domains[], domains.json keys) a host name of two or more labels
//	cluster-domain   a host name
//	ssh_user         a letter or '_', then letters, digits, '_', '-', '.'; at most 32
//	host_key         "ssh-ed25519 AAAA…" or "SHA256:…"
//	public           true or false (missing: false)
//
// A routing.json list item that fails is dropped (that domain or VPS is not
// used) and the rest of the entry holds; an entry that is not an object, or
// whose lists are not lists, serves its service nowhere.
//
// Registry quirks. Names shared by two entries of one list are MyNodeOne's
// re-registration after an address change: the later entry is the node,
// the earlier is superseded (reported, not synced). A name in two lists is
// ambiguous: neither is synced. An entry with the control plane's address
// (MyNodeOne registers the CP as a laptop) is recognised and never pushed to.
//
// Routing (MyNodeOne's rules, see routes.go): a service with a routing.json
// entry is served on exactly the listed domains, on exactly the VPSes whose
// addresses are listed — none when a list is empty; a public service without
// an entry on every VPS under that VPS's own domain; "@" is the domain's
// root. Hosts: <subdomain>.<cluster-domain>.local for every valid service.
//
// Rendering is checked before anything is written: CheckRoutes and
// CheckHosts accept only files that say exactly what the model says.
package state
