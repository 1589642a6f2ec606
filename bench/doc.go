// Package bench measures `mno run sync` (`make bench`, never part of
// `make test` or CI): against N real sshd hosts (lab/hosts) and a real
// kube-apiserver (lab/kubeapi), side by side with an equivalent Ansible
// playbook and the raw SSH floor (bench/floor), and at 1000 in-process SSH
// hosts for memory and leaks. bench/syncbench is the driver; README.md says
// how to run it and what the numbers mean, RESULTS.md holds the last run.
//
// The pieces:
//
//   - fixture.go: the cluster (registry of N nodes as the add playbooks leave
//     them, about twenty services), the hosts' files before a sync, and the
//     files a sync must leave, rendered by mno's own roles.
//   - tools.go: the three tools as commands (mno, the floor, ansible-playbook
//     with a generated inventory, known_hosts and playbook).
//   - run.go, measure.go: alternating timed runs (wait4 rusage for CPU and
//     peak RSS, the hosts' sshd CPU, the machine's other load), byte checks
//     of every remote file, and the proof that a second sync writes nothing
//     (every path under the hosts' writable overlays, the ConfigMaps'
//     resourceVersions).
//   - scale.go, memfs.go: x/crypto/ssh servers with a pkg/sftp server on an
//     in-memory filesystem, counting connections, sessions, execs and SFTP
//     requests per host.
//   - report.go: RESULTS.md and README-performance.md.
package bench
