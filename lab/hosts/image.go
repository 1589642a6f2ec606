package hosts

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// noSudoUser is the user whose sudo asks for a password.
const noSudoUser = "nosudo"

// account is a user that exists only inside the hosts.
type account struct {
	name     string
	uid, gid int
}

func (a account) home() string { return "/home/" + a.name }

// image is what every host of a lab shares: the machine's account files with
// the lab's users added, and what sshd and sudo are told.
type image struct {
	overlays       []overlay
	users          []account
	shell          string
	files          map[string]imageFile // /etc/passwd, /etc/shadow, …
	whiteouts      []string
	authorizedKeys []byte
	sshdExtra      string
	shims          []string
	fullStdin      bool
	// skel and rootSkel are the dot files new homes start with.
	skel, rootSkel map[string][]byte
}

type imageFile struct {
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

func loadImage(cfg *config, sshdVersion [2]int) (*image, error) {
	img := &image{
		overlays:  findOverlays(),
		shell:     "/bin/sh",
		files:     map[string]imageFile{},
		shims:     cfg.shims,
		fullStdin: cfg.fullStdin,
	}
	if _, err := os.Stat("/bin/bash"); err == nil {
		img.shell = "/bin/bash"
	}
	img.skel = readDotFiles("/etc/skel", "")
	// Debian gives root base-files' dot files rather than /etc/skel's.
	img.rootSkel = readDotFiles("/usr/share/base-files", "dot")
	if len(img.rootSkel) == 0 {
		img.rootSkel = img.skel
	}
	var have bool
	for _, o := range img.overlays {
		have = have || o.path == "/etc"
	}
	if !have {
		return nil, fmt.Errorf("hosts: /etc is not a directory on this machine")
	}
	if len(cfg.authorizedKeys) > 0 {
		img.authorizedKeys = []byte(strings.Join(cfg.authorizedKeys, "\n") + "\n")
	}
	if sshdVersion[0] > 9 || sshdVersion[0] == 9 && sshdVersion[1] >= 8 {
		// Tests fail logins on purpose; do not let sshd refuse the next ones.
		img.sshdExtra = "PerSourcePenalties no\n"
	}

	names := map[string]bool{cfg.loginUser: true, noSudoUser: true}
	if cfg.noUsers {
		names = map[string]bool{}
	}
	read := func(p string) (imageFile, error) {
		data, err := os.ReadFile(p)
		if err != nil {
			return imageFile{}, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return imageFile{}, err
		}
		f := imageFile{data: data, mode: fi.Mode().Perm()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			f.uid, f.gid = int(st.Uid), int(st.Gid)
		}
		return f, nil
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	group, err := read("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	shadow, err := read("/etc/shadow")
	if err != nil {
		shadow = imageFile{mode: 0o640}
	}
	passwd.data = dropLines(passwd.data, names, nil)
	group.data = dropLines(group.data, names, nil)
	today := strconv.FormatInt(time.Now().Unix()/86400, 10)
	// UsePAM is off, so sshd reads shadow itself: root must not look locked
	// ("!") nor need a password change, or even key logins are refused.
	shadow.data = dropLines(shadow.data, names, func(f []string) {
		if f[0] == "root" && len(f) > 2 {
			f[1] = "*"
			if f[2] == "0" {
				f[2] = today
			}
		}
	})
	usedUID, usedGID := ids(passwd.data, 2), ids(group.data, 2)
	var accounts []account
	if !cfg.noUsers {
		accounts = []account{{name: cfg.loginUser}, {name: noSudoUser}}
	}
	for _, u := range accounts {
		id := 1000
		for usedUID[id] || usedGID[id] {
			id++
		}
		usedUID[id], usedGID[id] = true, true
		u.uid, u.gid = id, id
		img.users = append(img.users, u)
		passwd.data = fmt.Appendf(passwd.data, "%s:x:%d:%d:mno lab:%s:%s\n", u.name, id, id, u.home(), img.shell)
		group.data = fmt.Appendf(group.data, "%s:x:%d:\n", u.name, id)
		// "*" is no password at all: key logins work, sudo cannot be answered.
		shadow.data = fmt.Appendf(shadow.data, "%s:*:%s:0:99999:7:::\n", u.name, today)
	}
	img.files["/etc/passwd"] = passwd
	img.files["/etc/group"] = group
	img.files["/etc/shadow"] = shadow
	if gshadow, err := read("/etc/gshadow"); err == nil {
		gshadow.data = dropLines(gshadow.data, names, nil)
		for _, u := range img.users {
			gshadow.data = fmt.Appendf(gshadow.data, "%s:!::\n", u.name)
		}
		img.files["/etc/gshadow"] = gshadow
	}
	img.files["/etc/sudoers"] = imageFile{data: []byte(sudoers), mode: 0o440}
	if !cfg.noUsers {
		img.files["/etc/sudoers.d/mno-lab"] = imageFile{
			data: fmt.Appendf(nil, "# mno lab: the login user needs no password.\n%s ALL=(ALL:ALL) NOPASSWD: ALL\n", cfg.loginUser),
			mode: 0o440,
		}
	}

	// The machine's other host keys must not leak into the hosts.
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*")
	for _, k := range keys {
		if !strings.HasPrefix(filepath.Base(k), "ssh_host_ed25519_key") {
			img.whiteouts = append(img.whiteouts, k)
		}
	}
	return img, nil
}

// sudoers is Debian's default, with /usr/local first on secure_path so shims win.
const sudoers = `# Written by mno lab (lab/hosts): Debian's default sudoers.
Defaults	env_reset
Defaults	mail_badpass
Defaults	secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
Defaults	use_pty
root	ALL=(ALL:ALL) ALL
%sudo	ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
`

// dropLines removes the lines of a colon-separated account file whose first
// field is in drop, and lets edit change the fields of the others.
func dropLines(data []byte, drop map[string]bool, edit func([]string)) []byte {
	var out bytes.Buffer
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), ":")
		if drop[f[0]] {
			continue
		}
		if edit != nil && len(f) > 1 {
			edit(f)
			line = strings.Join(f, ":") + "\n"
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// ids collects the numeric field i of an account file.
func ids(data []byte, i int) map[int]bool {
	out := map[int]bool{}
	for line := range strings.Lines(string(data)) {
		f := strings.Split(line, ":")
		if len(f) > i {
			if n, err := strconv.Atoi(f[i]); err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// sshdConfig is the host's /etc/ssh/sshd_config.
func sshdConfig(h *Host, img *image) []byte {
	listen := "0.0.0.0:22"
	if h.Netns == "" {
		listen = fmt.Sprintf("127.0.0.1:%d", h.Port)
	}
	return fmt.Appendf(nil, `# Written by mno lab (lab/hosts) for host %s.
ListenAddress %s
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
# No PAM: sshd runs in a mount namespace, without a login session to open.
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 256
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel VERBOSE
%s`, h.Name, listen, img.sshdExtra)
}

// buildTemplate writes the lab's template layer: what every host has the same,
// written once for all of them.
func buildTemplate(dir string, img *image) error {
	t, err := newLayer(dir, img.overlays)
	if err != nil {
		return err
	}
	for p, f := range img.files {
		if err := t.writeFile(p, f.data, f.mode, f.uid, f.gid); err != nil {
			return err
		}
	}
	for _, p := range img.whiteouts {
		if err := t.whiteout(p); err != nil {
			return err
		}
	}
	homes := append([]account{{name: "root"}}, img.users...)
	for _, a := range homes {
		home, skel := a.home(), img.skel
		if a.name == "root" {
			home, skel = "/root", img.rootSkel // fresh: see freshDirs
		} else if err := t.mkdir(home, 0o750, a.uid, a.gid); err != nil {
			return err
		} else if err := t.opaque(home); err != nil {
			return err
		}
		if err := t.mkdir(home+"/.ssh", 0o700, a.uid, a.gid); err != nil {
			return err
		}
		if err := t.writeFile(home+"/.ssh/authorized_keys", img.authorizedKeys, 0o600, a.uid, a.gid); err != nil {
			return err
		}
		for name, data := range skel {
			if err := t.writeFile(home+"/"+name, data, 0o644, a.uid, a.gid); err != nil {
				return err
			}
		}
	}
	return installShims(t, img)
}

// populate writes what is the host's own into its upper layer and makes its
// overlayfs work directories.
func populate(h *Host, img *image, hostKeyPEM []byte) error {
	u, err := newLayer(filepath.Join(h.Dir, "upper"), img.overlays)
	if err != nil {
		return err
	}
	for _, o := range img.overlays {
		if err := os.MkdirAll(filepath.Join(h.Dir, "work", o.name), 0o700); err != nil {
			return err
		}
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	for p, f := range map[string]imageFile{
		"/etc/hostname":                     {data: []byte(h.Name + "\n"), mode: 0o644},
		"/etc/hosts":                        {data: []byte(etcHosts(h)), mode: 0o644},
		"/etc/machine-id":                   {data: []byte(hex.EncodeToString(id) + "\n"), mode: 0o444},
		"/etc/ssh/sshd_config":              {data: sshdConfig(h, img), mode: 0o644},
		"/etc/ssh/ssh_host_ed25519_key":     {data: hostKeyPEM, mode: 0o600},
		"/etc/ssh/ssh_host_ed25519_key.pub": {data: []byte(h.HostKey + " root@" + h.Name + "\n"), mode: 0o644},
	} {
		if err := u.writeFile(p, f.data, f.mode, f.uid, f.gid); err != nil {
			return err
		}
	}
	return nil
}

// readDotFiles reads the regular files of dir whose names start with prefix+".",
// keyed by their name without prefix (base-files has dot.bashrc for .bashrc).
func readDotFiles(dir, prefix string) map[string][]byte {
	out := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), prefix+".")
		if !ok || !e.Type().IsRegular() || strings.Contains(name, ".md5") {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			out["."+name] = data
		}
	}
	return out
}

func etcHosts(h *Host) string {
	return fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", h.Name)
}
