package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mno": func() { os.Exit(Main(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI tests in testdata/script/*.txtar: every
// user-visible behaviour of the mno command.
func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "../../testdata/script"))
}

func scriptParams(t *testing.T, dir string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("MNO_HOME", filepath.Join(env.WorkDir, ".mno"))
			return nil
		},
		// [root]: the script runs as root (mno lab and mno test need it).
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// jsonlines stdout|stderr: every line of the last command's output is a JSON object.
			"jsonlines": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: jsonlines stdout|stderr")
				}
				text := ts.ReadFile(args[0])
				for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						ts.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, line)
					}
					if m["v"] != float64(1) {
						ts.Fatalf("line %d has no \"v\":1: %s", i+1, line)
					}
				}
			},
			// noproc MARKER: no running process has MARKER in its command line.
			"noproc": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: noproc MARKER")
				}
				// Killed processes may take a moment to be reaped.
				deadline := time.Now().Add(5 * time.Second)
				for {
					pids := processesWith(args[0])
					if len(pids) == 0 {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("processes still running with %q: %v", args[0], pids)
					}
					time.Sleep(50 * time.Millisecond)
				}
			},
			// waitfile FILE: wait (up to 30s) until FILE exists.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: waitfile FILE")
				}
				p := ts.MkAbs(args[0])
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					if _, err := os.Stat(p); err == nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				ts.Fatalf("%s did not appear within 30s", args[0])
			},
		},
	}
}

// processesWith returns the pids whose command line contains marker.
func processesWith(marker string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), marker) && !strings.Contains(string(b), "noproc") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
