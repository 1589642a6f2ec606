package bootstrap

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// EnsureIdentity creates home (0700) and the control plane's ed25519 key pair at
// identity (0600) unless the key exists, and returns the public key line that
// the bootstrap authorises. `mno init` and `mno lab up` make the identity this way.
func EnsureIdentity(home, identity string) (pub string, created bool, err error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", false, err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return "", false, err
	}
	if data, err := os.ReadFile(identity); err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return "", false, fmt.Errorf("%s exists but is not a usable private key: %v", identity, err)
		}
		if fi, err := os.Stat(identity); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is readable by others (mode %o); chmod 600 it", identity, fi.Mode().Perm())
		}
		return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", false, err
	}
	host, _ := os.Hostname()
	comment := "mno@" + host
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(identity), 0o700); err != nil {
		return "", false, err
	}
	if err := writeNew(identity, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", false, err
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		return "", false, err
	}
	line := string(ssh.MarshalAuthorizedKey(sshPub))
	line = line[:len(line)-1] + " " + comment + "\n"
	if err := writeNew(identity+".pub", []byte(line), 0o644); err != nil {
		return "", false, err
	}
	return line, true, nil
}

// writeNew writes a file that must not exist yet (O_EXCL), so a concurrent
// init never overwrites a key another one just made.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
