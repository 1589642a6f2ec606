package toolcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// Build phases a Status reports.
const (
	PhasePlanning  = "planning" // go list: modules downloaded, stale packages found
	PhaseQueued    = "queued"   // waiting for another build to finish (see Queue)
	PhaseCompiling = "compiling"
	PhaseBuilt     = "built"
	PhaseFailed    = "failed"
)

// Status is what a build tells other processes — a `make tools` waiting for
// the lock, a lab node's docker stand-in waiting for Traefik, `mno lab
// status` — in <cache>/status/NAME.json, rewritten at every progress line.
// A finished build's status also records how fast this machine built, for
// the next estimate.
type Status struct {
	Name    string    `json:"name"`
	Binary  string    `json:"binary"`
	Builder proc.Ref  `json:"builder"` // the process running the build
	Phase   string    `json:"phase"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Compiled of Packages packages are compiled; Done of Total is the same
	// weighted by source size (see Work).
	Compiled int   `json:"compiled"`
	Packages int   `json:"packages"`
	Cached   int   `json:"cached"`
	Done     int64 `json:"done"`
	Total    int64 `json:"total"`
	// Left is the estimated time left (0: unknown), Took a built one's time.
	Left  time.Duration `json:"left_ns,omitempty"`
	Took  time.Duration `json:"took_ns,omitempty"`
	Error string        `json:"error,omitempty"`
}

// StatusPath is where the status of the build of name lives under cacheDir.
func StatusPath(cacheDir, name string) string {
	return filepath.Join(cacheDir, "status", name+".json")
}

// LogPath is where a build of name run in the background (see lab's
// Traefik) writes its output.
func LogPath(cacheDir, name string) string {
	return filepath.Join(cacheDir, "status", name+".log")
}

// ReadStatus returns the last status of the build of name; fs.ErrNotExist
// when none ever ran.
func ReadStatus(cacheDir, name string) (Status, error) {
	var s Status
	data, err := os.ReadFile(StatusPath(cacheDir, name))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", StatusPath(cacheDir, name), err)
	}
	return s, nil
}

// writeStatus replaces the status file atomically.
func writeStatus(cacheDir string, s Status) error {
	p := StatusPath(cacheDir, s.Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", p, os.Getpid())
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Running reports whether the build is in progress: its phase says so and
// its process is alive.
func (s Status) Running() bool {
	return (s.Phase == PhasePlanning || s.Phase == PhaseQueued || s.Phase == PhaseCompiling) && s.Builder.Alive()
}

// Line describes the build in one line, as the progress lines do.
func (s Status) Line() string {
	var b strings.Builder
	b.WriteString(s.Name)
	switch s.Phase {
	case PhasePlanning:
		fmt.Fprintf(&b, ": downloading modules and finding what to compile (%s so far)", since(s.Started, s.Updated))
	case PhaseQueued:
		fmt.Fprintf(&b, ": %s to compile once the build ahead of it is done", plural(s.Packages, "package"))
		if s.Left > 0 {
			fmt.Fprintf(&b, ", %s left in all", roughly(s.Left))
		}
	case PhaseCompiling:
		fmt.Fprintf(&b, ": %d of %s compiled", s.Compiled, plural(s.Packages, "package"))
		if s.Total > 0 {
			fmt.Fprintf(&b, " (%d%% of the work)", min(100, int(100*s.Done/s.Total)))
		}
		fmt.Fprintf(&b, ", %s so far", since(s.Started, s.Updated))
		switch {
		case s.Packages > 0 && s.Compiled >= s.Packages:
			b.WriteString(", linking")
		case s.Left > 0:
			fmt.Fprintf(&b, ", %s left", roughly(s.Left))
		}
	case PhaseBuilt:
		fmt.Fprintf(&b, ": built in %s", s.Took.Round(time.Second))
	case PhaseFailed:
		fmt.Fprintf(&b, ": the build failed: %s", s.Error)
	}
	return b.String()
}

func since(start, now time.Time) time.Duration { return now.Sub(start).Round(time.Second) }

// machineRate is the rate of the last build on this machine that took more
// than a minute (weight per second), else defaultRate.
func machineRate(cacheDir string) float64 {
	files, _ := filepath.Glob(filepath.Join(cacheDir, "status", "*.json"))
	var last Status
	for _, f := range files {
		s, err := ReadStatus(cacheDir, strings.TrimSuffix(filepath.Base(f), ".json"))
		if err == nil && s.Phase == PhaseBuilt && s.Took > time.Minute && s.Total > 0 && s.Updated.After(last.Updated) {
			last = s
		}
	}
	if last.Total == 0 {
		return defaultRate
	}
	return float64(last.Total) / last.Took.Seconds()
}

// Failed returns the status of every build under cacheDir whose last try
// failed or died and whose binary is still missing.
func Failed(cacheDir string) []Status {
	files, _ := filepath.Glob(filepath.Join(cacheDir, "status", "*.json"))
	var out []Status
	for _, f := range files {
		s, err := ReadStatus(cacheDir, strings.TrimSuffix(filepath.Base(f), ".json"))
		if err != nil || s.Running() || s.Phase == PhaseBuilt || Executable(s.Binary) == nil {
			continue
		}
		if s.Phase != PhaseFailed {
			s.Phase, s.Error = PhaseFailed, fmt.Sprintf("its process %d ended without finishing", s.Builder.PID)
		}
		out = append(out, s)
	}
	return out
}

// Running returns the status of every build in progress under cacheDir.
func Running(cacheDir string) []Status {
	files, _ := filepath.Glob(filepath.Join(cacheDir, "status", "*.json"))
	var out []Status
	for _, f := range files {
		if s, err := ReadStatus(cacheDir, strings.TrimSuffix(filepath.Base(f), ".json")); err == nil && s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// Errors of Wait.
var (
	// ErrNotBuilding: the binary is missing and no build of it runs.
	ErrNotBuilding = errors.New("not built, and no build of it is running")
	// ErrTooLong: the build needs longer than the caller can wait.
	ErrTooLong = errors.New("still building")
)

// Wait returns once binary, which the build called name produces, is built.
// It prints that build's progress line on progress when it starts waiting
// and every `every`. It gives up with an error wrapping ErrTooLong when the
// build is estimated to need more than what is left of limit (at once, not
// after waiting in vain) or limit is over, and with one wrapping
// ErrNotBuilding when no build runs; a failed or dead build's error names
// its log.
func Wait(ctx context.Context, cacheDir, name, binary string, progress io.Writer, every, limit time.Duration) error {
	start := time.Now()
	var lastPrint time.Time
	for {
		if Executable(binary) == nil {
			if !lastPrint.IsZero() {
				fmt.Fprintf(progress, "%s is built (waited %s)\n", name, time.Since(start).Round(time.Second))
			}
			return nil
		}
		s, err := ReadStatus(cacheDir, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: %w", name, ErrNotBuilding)
		case err != nil:
			return err
		case s.Phase == PhaseFailed:
			return fmt.Errorf("%s: the build failed: %s (log: %s)", name, s.Error, LogPath(cacheDir, name))
		case !s.Running():
			if Executable(binary) == nil {
				continue
			}
			return fmt.Errorf("%s: %w (the last build stopped: %s; log: %s)", name, ErrNotBuilding, s.Line(), LogPath(cacheDir, name))
		}
		waited := time.Since(start)
		if limit > 0 && (waited >= limit || (s.Left > 0 && s.Left > limit-waited)) {
			return fmt.Errorf("%w: %s", ErrTooLong, s.Line())
		}
		if time.Since(lastPrint) >= every {
			fmt.Fprintf(progress, "waiting for %s\n", s.Line())
			lastPrint = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
