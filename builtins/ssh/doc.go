// Package ssh connects to remote hosts over SSH and changes them through the
// journal: commands, atomic file writes, reads and facts.
//
//	ssh.connect(address, user="root", port=22, host_key=None, accept_new_host_key=False, timeout="10s", jump=None, name=None, identity=None) -> host
//	k = ssh.host_key(address, port=22, timeout="10s", name=None)   struct(key, type, fingerprint): the key presented, not trusted, no login
//	fp = ssh.fingerprint(key)                "SHA256:…" of a key line ("ssh-ed25519 AAAA…"); a fingerprint is returned as it is
//	host.name host.address host.user host.port host.host_key ("ssh-ed25519 AAAA…" as seen) host.fingerprint ("SHA256:…")
//	facts = host.facts                       struct(hostname, os, arch, distro, version, home, uid), fetched once, lazily, in one remote exec
//	r = host.run(cmd, sudo=False, stdin=None, env={}, timeout="5m", check=True, read_only=False, creates=None, unless=None, secret_output=False)
//	changed = host.put(path, content, mode=0o644, owner=None, group=None, sudo=False)
//	text = host.get(path, sudo=False, missing_ok=False)
//	changed = host.edit(path, fn, sudo=False, create=True, mode=None)
//	st = host.stat(path, sudo=False)         struct(exists, is_dir, size, mode, uid, gid, owner, group, mtime), or None when missing
//	ok = host.exists(path, sudo=False)
//	changed = host.mkdir(path, mode=0o755, owner=None, group=None, sudo=False)
//	changed = host.remove(path, sudo=False, recursive=False)
//
// Connections: one per (user, address, port) and run, shared by every thread
// (concurrent connects share one dial), closed when the run ends; SFTP runs on
// the same connection. The key is the control plane identity (--identity,
// $MNO_IDENTITY, $MNO_HOME/id_ed25519, created by `mno init`) plus ssh-agent
// when SSH_AUTH_SOCK is set; identity= replaces them for that connect by
// other private key files of the control plane (a path, or a list whose
// missing files are skipped), on a connection of its own — the keys another
// tool already authorised, such as MyNodeOne's root keys that adopt logs in
// with. Private keys are read on the control plane and never sent, printed
// or logged. ssh.host_key runs a handshake up to the host key and stops: it
// shows what a host presents, so a playbook can have the user confirm the
// fingerprint and then connect with host_key= pinned to it. timeout bounds TCP connect and handshake; jump is
// another host to dial through (ProxyJump). name is the host's label in the
// journal (default: address). A keepalive every 15 s ($MNO_SSH_KEEPALIVE) drops
// a connection after 3 unanswered ones, so operations on a dead host fail as
// unreachable instead of hanging.
//
// Host keys are strict and never prompted for: host_key pins the key (its
// "ssh-ed25519 AAAA…" line or its "SHA256:…" fingerprint); otherwise it must be
// in $MNO_HOME/known_hosts, where accept_new_host_key=True records an unknown
// key. A changed key is always an error naming both fingerprints.
//
// run: cmd is a shell string for the login user's shell, or a list (argv,
// quoted). sudo=True runs it as root through `sudo -n` (passwordless sudo is
// required). stdin and env values may be secrets: secret env values travel on
// stdin, never on a remote command line. timeout kills the remote command and
// its process group. check=False returns a failed result instead of raising.
// creates=PATH / unless=CMD skip the command and are reads, so --dry-run
// predicts changed; read_only=True makes the command a read. The result has
// stdout, stderr, code, ok, changed and simulated; secret_output=True makes
// stdout a secret.
//
// Files: put is atomic — a temporary file in a .mno-staging directory next to
// (not inside) the target's directory, fsynced, chmod/chown'ed, renamed over
// the target — and writes nothing when content, mode and owner already match.
// owner and group are names; None keeps an existing file's. The directory must
// exist (mkdir is explicit). edit calls fn(old) ("" when missing) and writes
// only if the result differs, keeping an existing file's mode and owner. With
// sudo=True file operations run as root. --dry-run shows the unified diff of
// put, edit and remove against the live file (secret content is never shown).
package ssh
