// Package hosts starts real OpenSSH test hosts on this machine: the nodes of
// `mno lab` and the SSH targets of mno's own tests.
//
// Each host is a real /usr/sbin/sshd with its own ed25519 host key, its own
// address and its own view of the filesystem:
//
//   - network: a network namespace per host, joined by a veth pair to a bridge
//     that holds one /24 of 10.213.0.0/16 per lab (host i gets 10.213.S.(i+2),
//     the machine is 10.213.S.1). Namespaces get no default route and the
//     machine gets an `unreachable 10.213.0.0/16` route with a worse metric, so
//     nothing leaks to the real network. When network namespaces cannot be
//     made (and the caller allows it), hosts listen on 127.0.0.1:<random port>.
//   - filesystem: a private mount namespace (and hostname) in which /etc /home
//     /opt /srv /var /usr/local are copy-on-write overlays: the host's own
//     upper layer in its Dir, over the lab's template layer (accounts,
//     sudoers, homes, shims), over this machine's directory. /root has only
//     the template below it (this machine's root home stays out); /tmp, /run
//     and /dev/shm are fresh tmpfs. Every other mount the host sees is this
//     machine's and read-only inside it (writing /x or /usr/bin/foo fails with
//     EROFS), except the kernel's /proc, /sys and /dev, left as they are.
//     Writes never reach the machine's files nor another host's. The lab's
//     directory is itself a tmpfs when possible.
//   - users: root, a login user (default "mno") with passwordless sudo, and
//     "nosudo" whose sudo asks for a password, all with the caller's
//     authorized keys; they exist only in the host's /etc. With NoUsers, root
//     alone, as on a fresh machine.
//   - shims: commands that cannot run here (apt-get, systemctl, …) are replaced
//     by recording scripts in /usr/local/sbin and /usr/local/bin that answer
//     with a set response or run a set script; see SetShim and ShimCalls.
//
// Hosts normally die with the process that started them (tests). Detached
// hosts (`mno lab`) outlive it: Start writes their state to Dir()/state.json,
// Release lets go of them, and Open, in any process, returns the lab again,
// whose Stop removes everything as for an attached one.
//
// Hosts are stopped by PID; their namespaces die with their processes. Names of
// namespaces, bridges and veths carry a lab slot (1–254) that is held with
// flock(2) under /run/mno-lab, so concurrent test binaries never collide and
// Start removes whatever a killed process left behind (see CleanStale); the
// slot of a detached lab stays its own while one of its sshd lives.
//
// Requirements: Linux 5.12 or later (mount_setattr), root (CAP_SYS_ADMIN and
// CAP_NET_ADMIN), overlayfs, and these Debian packages, which CI installs:
//
//	apt-get install -y openssh-server iproute2 sudo util-linux coreutils mawk
//
// (openssh-server: sshd; iproute2: ip; sudo; util-linux: nsenter, flock;
// coreutils and mawk: used by the shims inside the hosts.) Check reports what is
// missing.
package hosts
