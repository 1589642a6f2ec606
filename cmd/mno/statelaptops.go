package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mno-sh/mno/builtins/kube"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/state"
)

// laptopCredential is one laptop's enrolment as `mno state` shows it: the
// ClusterRoleBinding mno-laptop-NAME that add-laptop wrote (roles/laptop.star).
type laptopCredential struct {
	Name       string `json:"name"`
	User       string `json:"user"`
	Access     string `json:"access"`
	Role       string `json:"role"`
	Address    string `json:"address"`
	NotAfter   string `json:"not_after"`
	RenewAfter string `json:"renew_after"`
	// Registry says whether the laptop's registry entry matches: "matches",
	// "differs: FIELD", or "no entry".
	Registry string `json:"registry"`
}

// laptopCredentials lists the enrolments and compares each with the model's
// laptops. A control plane that may not list bindings gets a note, not an
// error: the rest of the state is still worth showing.
func laptopCredentials(run *runctx.Run, m *state.Model) (creds []laptopCredential, unenrolled []string, note string) {
	c, err := kube.Client(run)
	if err != nil {
		return nil, nil, err.Error()
	}
	list, err := c.ClusterRoleBindings().List(run.Ctx, metav1.ListOptions{LabelSelector: "mno.sh/credential=laptop"})
	if err != nil {
		return nil, nil, "cannot list clusterrolebindings: " + err.Error()
	}
	laptops := map[string]state.Node{}
	for _, n := range m.Entries {
		if n.Kind == state.Laptop && n.Disposition == state.Managed {
			laptops[n.Name] = n
		}
	}
	seen := map[string]bool{}
	for _, b := range list.Items {
		a := b.Annotations
		name := a["mno.sh/laptop"]
		if name == "" || b.Name != "mno-laptop-"+name {
			continue
		}
		seen[name] = true
		cr := laptopCredential{Name: name, Access: a["mno.sh/access"], Role: b.RoleRef.Name, Address: a["mno.sh/address"],
			NotAfter: a["mno.sh/not-after"], RenewAfter: a["mno.sh/renew-after"], Registry: "no entry"}
		for _, s := range b.Subjects {
			if s.Kind == "User" {
				cr.User = s.Name
			}
		}
		if n, ok := laptops[name]; ok {
			raw, _ := n.Raw["ip"].(string)
			switch {
			case raw != a["mno.sh/address"]:
				cr.Registry = "differs: ip"
			case n.SSHUser != a["mno.sh/ssh-user"]:
				cr.Registry = "differs: ssh_user"
			case fmt.Sprint(n.SSHPort) != a["mno.sh/ssh-port"]:
				cr.Registry = "differs: ssh_port"
			case n.HostKey != a["mno.sh/host-key"]:
				cr.Registry = "differs: host_key"
			default:
				cr.Registry = "matches"
			}
		}
		creds = append(creds, cr)
	}
	sort.Slice(creds, func(i, j int) bool { return creds[i].Name < creds[j].Name })
	for name := range laptops {
		if !seen[name] {
			unenrolled = append(unenrolled, name)
		}
	}
	sort.Strings(unenrolled)
	return creds, unenrolled, ""
}

func printLaptopCredentials(w io.Writer, creds []laptopCredential, unenrolled []string, note string) {
	fmt.Fprintf(w, "\nLAPTOP CREDENTIALS (ClusterRoleBindings mno-laptop-NAME; sync gives nothing to a laptop whose entry differs)\n")
	if note != "" {
		fmt.Fprintf(w, "  (unknown: %s)\n", note)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  LAPTOP\tUSER\tACCESS\tEXPIRES\tRENEWS AFTER\tREGISTRY ENTRY")
	for _, c := range creds {
		access := c.Access
		if c.Role != "" {
			access += " (" + c.Role + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Name, orDash(c.User), orDash(access), orDash(c.NotAfter), orDash(c.RenewAfter), c.Registry)
	}
	for _, name := range unenrolled {
		fmt.Fprintf(tw, "  %s\t-\t-\t-\t-\tnot enrolled: gets nothing (add-laptop enrols it)\n", name)
	}
	if len(creds) == 0 && len(unenrolled) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	tw.Flush()
}
