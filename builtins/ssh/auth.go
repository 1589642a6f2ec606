package ssh

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/mno-sh/mno/engine/runctx"
)

// identity is the control plane's way to authenticate: its key file and,
// when SSH_AUTH_SOCK is set, the keys of ssh-agent. It is loaded once per
// run.
type identity struct {
	file    string
	signers []xssh.Signer
	// fileKey says signers[0] came from file.
	fileKey bool
	// files name each signer when the keys came from identity= files.
	files []string
	// agentConn is closed with the run.
	agentConn net.Conn
}

// identityFile is the private key file mno uses: --identity / $MNO_IDENTITY
// (the CLI folds both into Config.Identity), else $MNO_HOME/id_ed25519.
func identityFile(cfg runctx.Config) string {
	if cfg.Identity != "" {
		return cfg.Identity
	}
	if cfg.Home != "" {
		return filepath.Join(cfg.Home, "id_ed25519")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".mno", "id_ed25519")
	}
	return "id_ed25519"
}

// loadIdentity reads the identity file and asks ssh-agent for its keys. A
// missing or unreadable file is fine when the agent has keys; with neither
// it is an error that says how to make one.
func loadIdentity(cfg runctx.Config) (*identity, error) {
	id := &identity{file: identityFile(cfg)}
	var fileErr error
	data, err := os.ReadFile(id.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fileErr = fmt.Errorf("no SSH identity: %s does not exist (`mno init` creates it; or pass --identity FILE / set MNO_IDENTITY)", id.file)
	case err != nil:
		fileErr = fmt.Errorf("cannot read SSH identity %s: %v (`mno init` creates one; or pass --identity FILE)", id.file, err)
	default:
		signer, err := xssh.ParsePrivateKey(data)
		var pp *xssh.PassphraseMissingError
		switch {
		case errors.As(err, &pp):
			fileErr = fmt.Errorf("SSH identity %s is protected by a passphrase: load it into ssh-agent (ssh-add %s) or use an unencrypted key", id.file, id.file)
		case err != nil:
			fileErr = fmt.Errorf("SSH identity %s is not a private key: %v", id.file, err)
		default:
			id.signers = append(id.signers, signer)
			id.fileKey = true
		}
	}
	if sock := cfg.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			if ss, err := agent.NewClient(c).Signers(); err == nil && len(ss) > 0 {
				id.signers = append(id.signers, ss...)
				id.agentConn = c
			} else {
				c.Close()
			}
		}
	}
	if len(id.signers) == 0 {
		if fileErr == nil {
			fileErr = fmt.Errorf("no SSH identity usable")
		}
		return nil, fileErr
	}
	return id, nil
}

// describe names the keys offered, for "refused the key" errors.
func (id *identity) describe() string {
	var parts []string
	for i, s := range id.signers {
		d := xssh.FingerprintSHA256(s.PublicKey())
		if i < len(id.files) {
			d += " (" + id.files[i] + ")"
		} else if i == 0 && id.fileKey {
			d += " (" + id.file + ")"
		} else {
			d += " (ssh-agent)"
		}
		parts = append(parts, d)
	}
	return strings.Join(parts, ", ")
}

// loadIdentityFiles reads the private keys in files, for a connect given
// identity=: the keys an existing installation (MyNodeOne's root keys) uses.
// Missing files are skipped; a file that exists but cannot be used is an
// error, as is a list where no file exists. ssh-agent is not asked: the
// caller named the keys to offer. Key material never leaves this process.
func loadIdentityFiles(files []string) (*identity, error) {
	id := &identity{file: strings.Join(files, ", ")}
	var missing []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, f)
			continue
		case err != nil:
			return nil, fmt.Errorf("cannot read SSH identity %s: %v", f, err)
		}
		signer, err := xssh.ParsePrivateKey(data)
		var pp *xssh.PassphraseMissingError
		switch {
		case errors.As(err, &pp):
			return nil, fmt.Errorf("SSH identity %s is protected by a passphrase: use an unencrypted key or leave it out of identity=", f)
		case err != nil:
			return nil, fmt.Errorf("SSH identity %s is not a private key: %v", f, err)
		}
		id.signers = append(id.signers, signer)
		id.files = append(id.files, f)
	}
	if len(id.signers) == 0 {
		return nil, fmt.Errorf("no SSH identity: none of %s exists", strings.Join(missing, ", "))
	}
	return id, nil
}

func (id *identity) close() {
	if id.agentConn != nil {
		id.agentConn.Close()
	}
}
