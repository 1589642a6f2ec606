package state

import "strings"

// Level says how bad a problem is.
type Level string

const (
	// LevelInvalid: an entry (or one value of a list) failed a check and is
	// skipped — never pushed, rendered or written; `mno state check` fails.
	LevelInvalid Level = "invalid"
	// LevelWarning: the data was read leniently, or a conflict was settled by
	// a documented rule (a duplicate name, the control plane registered as a
	// laptop, two services claiming one host).
	LevelWarning Level = "warning"
)

// Problem is one finding about the cluster's state, naming where it is.
type Problem struct {
	Level     Level  `json:"level"`
	ConfigMap string `json:"configmap"`
	Key       string `json:"key"`             // the data key (registry.json, cluster-domain …)
	Entry     string `json:"entry,omitempty"` // `vps_nodes[2] "vps-1"`, `"immich"`; "" for the whole key
	Field     string `json:"field,omitempty"` // subdomain, ip, domains[1] …
	Message   string `json:"message"`         // what is wrong and what mno does about it
}

// String renders the problem on one line:
// `service-registry services.json "evil": subdomain: … is not a subdomain …; skipped`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.ConfigMap)
	if p.Key != "" {
		b.WriteString(" ")
		b.WriteString(p.Key)
	}
	if p.Entry != "" {
		b.WriteString(" ")
		b.WriteString(p.Entry)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}
