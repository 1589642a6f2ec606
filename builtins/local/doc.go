// Package local runs commands and reads files on the control plane itself.
//
//	local.run(cmd, stdin=None, env={}, dir=None, timeout="5m", check=True, read_only=False, creates=None, unless=None, secret_output=False) -> result
//	local.read(path, secret=None, missing_ok=False) -> str, secret, or None when missing_ok
//	local.env(name, default=None) -> str: $name on the control plane, or default when unset or empty
//
// cmd is a shell string (run with sh -c) or a list (argv, no shell). stdin
// and env values may be secrets: they reach the process, never the journal or
// its argv. The result has stdout, stderr, code, ok, changed and simulated.
// check=False returns a failed result instead of raising. creates=PATH skips
// the command when PATH exists and unless=CMD skips it when CMD exits 0;
// both guards are reads, so --dry-run predicts changed correctly. A command
// is a write unless read_only=True: --dry-run reports it without running it.
// On cancellation or timeout the whole process group is killed.
//
// local.read reads any file of the control plane (it is how a playbook reads
// its join token or kubeconfig, or a template kept outside the workspace for
// template.render) and every read is journaled: a "read" effect of target
// local with its position, shown with --verbose and always in the JSONL.
// secret=None (the default) returns a secret when the file is not readable by
// others (no o+r bit: secret material such as the k3s token or k3s.yaml) and
// a string otherwise; secret=True or False decides explicitly.
//
// local.env lets a playbook take a control-plane path from the environment,
// e.g. token_file or local.env("MNO_K3S_TOKEN_FILE", "/var/lib/rancher/k3s/server/node-token")
// (`mno lab env` points such variables into the lab). It is not an effect: nothing
// is journalled. Call it inside main, not in a parameter default, which is
// evaluated once when the file loads.
package local
