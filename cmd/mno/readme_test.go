package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// walkthroughCommands extracts, in order, the commands of the README's
// walk-through (steps 1 to 6, up to "Customise a role"): the lines of its
// code blocks that run mno or curl, either as they are (```sh blocks) or after
// a "# " prompt (blocks that show output), with "\" continuations joined.
func walkthroughCommands(t *testing.T, readme string) []string {
	t.Helper()
	start := strings.Index(readme, "## Walk-through")
	end := strings.Index(readme, "**Customise a role.**")
	if start < 0 || end < start {
		t.Fatal("README.md: no walk-through section ending at **Customise a role.**")
	}
	var cmds []string
	inBlock := false
	sc := bufio.NewScanner(strings.NewReader(readme[start:end]))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		cmd := strings.TrimPrefix(line, "# ")
		if !strings.HasPrefix(cmd, "mno ") && !strings.HasPrefix(cmd, "curl ") {
			continue
		}
		for strings.HasSuffix(cmd, `\`) && sc.Scan() {
			cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// TestReadmeWalkthrough runs the README's walk-through verbatim against a
// lab, as its Quick start says a newcomer can: every command succeeds, the
// VPS's real Traefik serves the lab's demo service, the laptop's /etc/hosts
// names it, and the final sync finds nothing to change on any node.
func TestReadmeWalkthrough(t *testing.T) {
	requireLab(t)
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmds := walkthroughCommands(t, string(data))
	// The steps the README promises, in its order.
	want := []string{"mno init", "mno bootstrap", "mno run add-vps", "curl ", "mno run --diff add-worker",
		"mno run add-laptop", "mno lab exec laptop-1 cat /etc/hosts", "mno run --diff sync"}
	i := 0
	for _, c := range cmds {
		if i < len(want) && strings.HasPrefix(c, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("README walk-through lacks %q (in that order); its commands:\n%s", want[i], strings.Join(cmds, "\n"))
	}

	name := randomName("readme-")
	dir := t.TempDir()
	if _, stderr, code := mnoRun(t, dir, "", nil, "lab", "up", "--name", name); code != 0 {
		t.Fatalf("lab up: exit %d\n%s", code, stderr)
	}
	t.Cleanup(func() { mnoRun(t, dir, "", nil, "lab", "down", "--name", name) })

	// One shell, as the reader's: the lab's environment, then each command.
	// Outputs are separated by a marker line naming the command.
	var script strings.Builder
	script.WriteString("set -e\neval \"$(mno lab env --name " + name + ")\"\n")
	for i, c := range cmds {
		script.WriteString("echo '=== " + strings.Repeat("x", i) + "'\n" + c + " 2>&1\n")
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = dir
	out, err := sh.CombinedOutput()
	parts := regexp.MustCompile(`(?m)^=== x*\n`).Split(string(out), -1)[1:]
	if err != nil {
		last := len(parts) - 1
		if last < 0 || last >= len(cmds) {
			t.Fatalf("walk-through: %v\n%s", err, out)
		}
		t.Fatalf("walk-through command failed (%v):\n%s\n%s", err, cmds[last], parts[last])
	}
	outputOf := func(prefix string) string {
		for i, c := range cmds {
			if strings.HasPrefix(c, prefix) {
				return parts[i]
			}
		}
		return ""
	}
	if got := outputOf("curl "); !strings.HasPrefix(got, "Hello from the mno lab demo service on worker-1") {
		t.Errorf("curl through the VPS's Traefik: %q", got)
	}
	if got := outputOf("mno lab exec laptop-1 cat /etc/hosts"); !regexp.MustCompile(`(?m)^# BEGIN mno .*\n[0-9.]+\tdemo\.home\.local\n# END mno$`).MatchString(got) {
		t.Errorf("laptop's /etc/hosts has no mno block naming demo.home.local:\n%s", got)
	}
	sync := outputOf("mno run --diff sync")
	if !strings.Contains(sync, "synced 3 of 3 node(s)") {
		t.Errorf("sync did not sync the three nodes:\n%s", sync)
	}
	for _, m := range regexp.MustCompile(`(?m)^  (\S+) +ok=\d+ +changed=(\d+)`).FindAllStringSubmatch(sync, -1) {
		if m[2] != "0" {
			t.Errorf("sync after the add playbooks changed %s on %s:\n%s", m[2], m[1], sync)
		}
	}
}

// readmePos is a position of a stock playbook or role the README quotes from
// mno's output ("embedded:roles/vps.star:90:23") or names in prose.
var readmePos = regexp.MustCompile(`((?:roles|playbooks)/[a-z_-]+\.star):(\d+):(\d+)`)

// callOf is the name of the builtin a README output line reports, as it is
// called in Starlark: the journal kind's last word ("configmap.update_json"
// → "update_json"), log for "log:", warn or drift for a warning, fail for
// an error and fail_target for a target marked failed. "" when the line
// names a position in prose.
func callOf(line string) []string {
	t := strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(t, "log:"):
		return []string{"log"}
	case strings.HasPrefix(t, "warning"):
		return []string{"warn", "drift"}
	case strings.Contains(t, "check marked failed"):
		return []string{"fail_target"}
	case strings.HasPrefix(t, "embedded:"):
		return []string{"fail"}
	}
	m := regexp.MustCompile(`^(?:ok|changed|failed|skipped|unreachable):\s+\[[^\]]*\]\s+(\S+)`).FindStringSubmatch(t)
	if m == nil {
		return nil
	}
	kind := m[1][strings.LastIndex(m[1], ".")+1:]
	return []string{kind}
}

// TestReadmePositions: every position of a stock playbook or role that the
// README shows is where its builtin is called in the file as it is now — the
// line's column holds the call's "(" after the builtin the output line
// reports (a put at a put, a log at a log) — so a change that moves a call
// makes the README's sample output say so instead of going stale.
func TestReadmePositions(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]string{}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range readmePos.FindAllStringSubmatch(line, -1) {
			n++
			file, ln, col := m[1], atoi(t, m[2]), atoi(t, m[3])
			src, ok := files[file]
			if !ok {
				b, err := os.ReadFile("../../" + file)
				if err != nil {
					t.Errorf("README.md:%d: %s: %v", i+1, m[0], err)
					continue
				}
				src = strings.Split(string(b), "\n")
				files[file] = src
			}
			if ln < 1 || ln > len(src) || col < 2 || col > len(src[ln-1]) || src[ln-1][col-1] != '(' {
				t.Errorf("README.md:%d: %s is not a call's \"(\" in %s (moved?)", i+1, m[0], file)
				continue
			}
			callee := regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*$`).FindString(src[ln-1][:col-1])
			want := callOf(line[:strings.Index(line, m[0])])
			if want != nil && !slices.Contains(want, callee) {
				t.Errorf("README.md:%d: %s calls %s, the output line reports %s", i+1, m[0], callee, strings.Join(want, " or "))
			}
		}
	}
	if n < 10 {
		t.Fatalf("README.md: found %d positions of stock files; the pattern no longer matches its sample output", n)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
