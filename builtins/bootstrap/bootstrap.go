package bootstrap

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	xssh "golang.org/x/crypto/ssh"

	mnoboot "github.com/mno-sh/mno/bootstrap"
	"github.com/mno-sh/mno/engine/runctx"
	"github.com/mno-sh/mno/engine/starkit"
)

//go:embed doc.go
var docSrc []byte

// Module returns the bootstrap module.
func Module() starkit.Module {
	return starkit.Module{
		Name: "bootstrap",
		Doc:  starkit.PackageDoc(docSrc),
		Globals: starlark.StringDict{"bootstrap": &starlarkstruct.Module{Name: "bootstrap", Members: starlark.StringDict{
			"public_key": starlark.NewBuiltin("bootstrap.public_key", publicKey),
			"script":     starlark.NewBuiltin("bootstrap.script", script),
			"check":      starlark.NewBuiltin("bootstrap.check", check),
		}}},
	}
}

// identityFile mirrors the ssh module's choice of the control plane key.
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

// cpKey is the public key line of the control plane identity.
func cpKey(thread *starlark.Thread) (string, error) {
	file := identityFile(runctx.From(thread).Config)
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the control plane identity %s (`mno init` creates it): %v", file, err)
	}
	signer, err := xssh.ParsePrivateKey(data)
	if err != nil {
		return "", fmt.Errorf("the control plane identity %s is not a usable private key: %v", file, err)
	}
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}

func publicKey(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	k, err := cpKey(thread)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	return starlark.String(k), nil
}

func script(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return build(thread, b, args, kwargs, mnoboot.ScriptFor)
}

func check(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return build(thread, b, args, kwargs, mnoboot.Check)
}

func build(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple,
	f func(mnoboot.Options) (string, error)) (starlark.Value, error) {
	var user, from string
	sudo := mnoboot.SudoAll
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "user", &user, "cp_address", &from, "sudo?", &sudo); err != nil {
		return nil, err
	}
	if sudo != mnoboot.SudoAll && sudo != mnoboot.SudoLaptop && sudo != mnoboot.SudoNone {
		return nil, starkit.Errorf(b.Name(), "sudo %q: want \"all\", \"laptop\" or \"none\"", sudo)
	}
	if !mnoboot.ValidUser(user) {
		return nil, starkit.Errorf(b.Name(), "user %q is not a valid user name", user)
	}
	if !mnoboot.ValidFrom(from) {
		return nil, starkit.Errorf(b.Name(), "cp_address %q is not an address, pattern or CIDR", from)
	}
	k, err := cpKey(thread)
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	s, err := f(mnoboot.Options{User: user, Key: k, From: from, Sudo: sudo})
	if err != nil {
		return nil, starkit.Errorf(b.Name(), "%v", err)
	}
	return starlark.String(s), nil
}
