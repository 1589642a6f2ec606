// Package plan saves the effects of a dry run and applies exactly them.
//
// `mno run --plan-out FILE` runs the playbook in dry-run and writes each
// effect that would change something with what it was computed from (a
// file's sha256 or its absence, a ConfigMap's resourceVersion), the mno
// version, the playbook's digest and its parameters. `mno apply FILE` first
// runs the playbook again in dry-run and refuses, naming each, any effect
// whose precondition no longer holds, whose change differs, that is new or
// that no longer happens — changing nothing then; otherwise it runs it for
// real with a guard that lets only the planned effects through.
//
// time.now() returns the plan's instant in its dry run and in the apply,
// so timestamps a playbook writes (the registry's last_sync) are the
// planned ones.
//
// Secrets never enter the file: diffs are redacted as in every report, and
// the secrets the run met are represented by an HMAC under a key kept on
// the control plane ($MNO_HOME/plan.key), so a secret that changed between
// plan and apply is detected; apply re-reads them where the playbook reads
// them.
package plan

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mno-sh/mno/engine"
	"github.com/mno-sh/mno/engine/journal"
)

// Version is the version of the plan file's JSON.
const Version = 1

// Plan is a saved dry run.
type Plan struct {
	V              int       `json:"v"`
	Mno            string    `json:"mno"`
	RunID          string    `json:"run_id"`
	Created        time.Time `json:"created"`
	Playbook       string    `json:"playbook"`
	Display        string    `json:"display"`
	PlaybookSHA256 string    `json:"playbook_sha256"`
	Params         []string  `json:"params,omitempty"`
	Root           string    `json:"root,omitempty"`
	// Clock is what time.now() returned in the dry run; apply runs with it
	// too, so the timestamps a playbook writes are the planned ones.
	Clock     time.Time `json:"clock"`
	AllowRead []string  `json:"allow_read,omitempty"`
	// SecretsHMAC is the HMAC of the secrets the run met ("" for none).
	SecretsHMAC string   `json:"secrets_hmac,omitempty"`
	Effects     []Effect `json:"effects"`
}

// Effect is one write the plan performs.
type Effect struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Desc   string `json:"desc"`
	Pos    string `json:"pos"`
	// Pre is what the change was computed from: "absent", "sha256:…",
	// "resourceVersion:…" ("" when the builtin does not say).
	Pre        string `json:"pre,omitempty"`
	Note       string `json:"note,omitempty"`
	Diff       string `json:"diff,omitempty"`
	DiffSHA256 string `json:"diff_sha256"`
}

func (e Effect) key() string    { return e.Target + "\x00" + e.Kind + "\x00" + e.Desc }
func (e Effect) object() string { return e.Target + "\x00" + e.Desc }

// String names the effect as the report does.
func (e Effect) String() string {
	return fmt.Sprintf("[%s] %s %s (%s)", e.Target, e.Kind, firstLine(e.Desc), e.Pos)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// collector keeps the effects that would change.
type collector struct {
	mu      sync.Mutex
	starts  map[int]journal.Event
	effects []Effect
	sha     string
	display string
}

func (c *collector) Event(e journal.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Type {
	case "run_start":
		c.sha, c.display = e.SourceSHA256, e.Playbook
	case "effect_start":
		if c.starts == nil {
			c.starts = map[int]journal.Event{}
		}
		c.starts[e.ID] = e
	case "effect_end":
		st := c.starts[e.ID]
		delete(c.starts, e.ID)
		if !st.Write || e.Changed == nil || !*e.Changed || !e.Simulated {
			return
		}
		sum := sha256.Sum256([]byte(e.Diff))
		c.effects = append(c.effects, Effect{Target: e.Target, Kind: e.Kind, Desc: st.Desc, Pos: e.Pos, Pre: e.Pre,
			Note: e.Note, Diff: e.Diff, DiffSHA256: hex.EncodeToString(sum[:])})
	}
}

// KeyFile is the HMAC key of the secrets' fingerprints, under $MNO_HOME.
const KeyFile = "plan.key"

// Key reads (creating it when create is set) the plan key in home.
func Key(home string, create bool) ([]byte, error) {
	p := filepath.Join(home, KeyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("%s: too short to be a plan key", p)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	rand.Read(k)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return Key(home, false)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(k); err != nil {
		return nil, err
	}
	return k, f.Close()
}

// Make runs o in dry-run and returns its plan; the run's report goes where
// o says. A run that fails makes no plan.
func Make(ctx context.Context, o engine.Options, mnoVersion string, key []byte) (*Plan, engine.Result, error) {
	c := &collector{}
	o.DryRun = true
	o.Observers = append(append([]journal.Observer(nil), o.Observers...), c)
	clock := time.Now().UTC()
	o.Clock = func() time.Time { return clock }
	res := engine.Run(ctx, o)
	if res.Exit != 0 {
		return nil, res, fmt.Errorf("the dry run exited %d: no plan written", res.Exit)
	}
	p := &Plan{V: Version, Mno: mnoVersion, RunID: res.RunID, Created: time.Now().UTC(), Clock: clock, Playbook: o.Playbook,
		Display: c.display, PlaybookSHA256: c.sha, Params: o.Params, Root: o.Root, AllowRead: o.AllowRead,
		Effects: c.effects}
	if p.Effects == nil {
		p.Effects = []Effect{}
	}
	if res.Redactor != nil {
		p.SecretsHMAC = res.Redactor.Fingerprint(key)
	}
	return p, res, nil
}

// Write writes p to path (mode 0600, replaced atomically).
func Write(path string, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read reads a plan file.
func Read(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Plan
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: not a plan file: %v", path, err)
	}
	if p.V != Version {
		return nil, fmt.Errorf("%s: plan version %d, this mno applies version %d", path, p.V, Version)
	}
	if p.Playbook == "" || p.PlaybookSHA256 == "" {
		return nil, fmt.Errorf("%s: not a plan file: no playbook", path)
	}
	return &p, nil
}

// RefusedError lists why a plan was not applied; nothing was changed.
type RefusedError struct{ Reasons []string }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("plan refused, nothing changed (%d reason(s)):\n  %s", len(e.Reasons), strings.Join(e.Reasons, "\n  "))
}

// Check compares the plan with a fresh dry run of it (o: the connection
// settings; playbook, parameters and workspace come from the plan) and
// returns a *RefusedError naming each difference.
func Check(ctx context.Context, p *Plan, o engine.Options, mnoVersion string, key []byte) error {
	var reasons []string
	if p.Mno != mnoVersion {
		reasons = append(reasons, fmt.Sprintf("made by %s, this is %s", p.Mno, mnoVersion))
	}
	c := &collector{}
	o = p.options(o)
	o.DryRun = true
	o.Stdout, o.Stderr = io.Discard, io.Discard
	o.Observers = append(append([]journal.Observer(nil), o.Observers...), c)
	res := engine.Run(ctx, o)
	if res.Exit != 0 {
		msg := fmt.Sprintf("the dry run of %s now exits %d", p.Display, res.Exit)
		if res.Err != nil {
			msg += ": " + firstLine(res.Err.Error())
		}
		reasons = append(reasons, msg)
	}
	if c.sha != p.PlaybookSHA256 {
		reasons = append(reasons, fmt.Sprintf("the playbook %s changed (sha256 %s, planned %s)", p.Display, short(c.sha), short(p.PlaybookSHA256)))
	}
	if res.Redactor != nil && res.Redactor.Fingerprint(key) != p.SecretsHMAC {
		reasons = append(reasons, "a secret the run reads changed since the plan (their HMAC differs)")
	}
	reasons = append(reasons, compare(p.Effects, c.effects)...)
	if len(reasons) > 0 {
		return &RefusedError{reasons}
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// compare names each planned effect that no longer holds and each new one.
func compare(planned, now []Effect) []string {
	avail := map[string][]Effect{}
	for _, e := range now {
		avail[e.key()] = append(avail[e.key()], e)
	}
	var out []string
	for _, e := range planned {
		list := avail[e.key()]
		if len(list) == 0 {
			out = append(out, fmt.Sprintf("%s: no longer changes anything (done or undone since the plan)", e))
			continue
		}
		n := list[0]
		avail[e.key()] = list[1:]
		switch {
		case n.Pre != e.Pre:
			out = append(out, fmt.Sprintf("%s: changed since the plan: it was %s, it is %s", e, e.Pre, n.Pre))
		case n.DiffSHA256 != e.DiffSHA256:
			out = append(out, fmt.Sprintf("%s: the change differs from the plan", e))
		}
	}
	for _, e := range now {
		if list := avail[e.key()]; len(list) > 0 && list[0] == e {
			avail[e.key()] = list[1:]
			out = append(out, fmt.Sprintf("%s: would change too, not in the plan", e))
		}
	}
	return out
}

func (p *Plan) options(o engine.Options) engine.Options {
	o.Playbook, o.Params, o.Root, o.AllowRead = p.Playbook, p.Params, p.Root, p.AllowRead
	clock := p.Clock
	o.Clock = func() time.Time { return clock }
	return o
}

// Guard returns the guard of the real run: a write is applied only when it
// is the next planned one on its object; the first write on an object must
// also find it as planned (its precondition and change).
func (p *Plan) Guard() func(op journal.Op, ch journal.Change) error {
	var mu sync.Mutex
	left := map[string][]Effect{}
	for _, e := range p.Effects {
		left[e.key()] = append(left[e.key()], e)
	}
	touched := map[string]bool{}
	return func(op journal.Op, ch journal.Change) error {
		mu.Lock()
		defer mu.Unlock()
		k := Effect{Target: op.Target, Kind: op.Kind, Desc: op.Desc}
		list := left[k.key()]
		if len(list) == 0 {
			return fmt.Errorf("not in the saved plan: refused")
		}
		e := list[0]
		left[k.key()] = list[1:]
		if !touched[e.object()] {
			touched[e.object()] = true
			if ch.Pre != e.Pre {
				return fmt.Errorf("changed since the plan (it was %s, it is %s): refused", e.Pre, ch.Pre)
			}
		}
		return nil
	}
}

// Options returns the options of the real run of p.
func (p *Plan) Options(o engine.Options) engine.Options {
	o = p.options(o)
	o.DryRun = false
	o.Guard = p.Guard()
	return o
}
