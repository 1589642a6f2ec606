// Package bootstrap gives playbooks the node preparation of `mno bootstrap`,
// for nodes mno can already reach another way (adopt logs in with MyNodeOne's
// key and runs it there), so the logic of the pasted line lives in one place.
//
//	bootstrap.public_key() -> str                  the control plane's public key line ("ssh-ed25519 AAAA…")
//	bootstrap.script(user, cp_address, sudo="all") -> str   the POSIX sh script `mno bootstrap --sudo` prints (without sudo sh -c)
//	bootstrap.check(user, cp_address, sudo="all") -> str    a sh script that exits 0 when that script's work is already done
//
// The script creates user if needed, authorises the control plane's public
// key for it restricted with from="cp_address", grants the sudo rule
// ("all": passwordless sudo for everything; "laptop": only mno's /etc/hosts
// helper; "none") through /etc/sudoers.d/mno-USER (checked with visudo -c)
// and prints the node's host keys; every value in it is quoted. Run it as root, e.g.
// host.run(["sh", "-c", script], sudo=True, unless=["sh", "-c", check]).
// The key is the control plane identity (--identity, $MNO_IDENTITY,
// $MNO_HOME/id_ed25519); only its public half is ever returned. Nothing here
// is an effect: the functions compute text.
package bootstrap
