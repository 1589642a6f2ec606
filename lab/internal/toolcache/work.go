package toolcache

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// packageCost is the fixed cost of compiling a package, in source bytes: a
// least-squares fit of compile time against source size over the ~400
// packages of mno, compiled one at a time, gave 0.45 s + 0.69 s per 100 KB.
const packageCost = 65_000

// defaultRate is the work done per second (weight units, see [Work]) assumed
// before a machine has finished a build of its own: the cold build of
// kube-apiserver v1.37.2 on a shared two-core machine (1616 packages,
// 168 MB-equivalent, 12 m 45 s) did 220 000 per second.
const defaultRate = 220_000

// Work is what a build has to do: the packages missing from the build
// cache, each weighted by its source size plus packageCost. Progress and the
// time left are measured in that weight, not in packages: a generated
// 2.7 MB API package takes a hundred times longer than a small one.
type Work struct {
	weights  map[string]int64 // import path → weight, the packages to compile
	Total    int64            // their weights added up
	Packages int              // how many must be compiled
	Cached   int              // dependencies the build cache already has
}

// planWork asks `go list -deps -trimpath` (the build's flags, so the action
// IDs match) which of the packages args builds are stale — missing from the
// build cache — and weighs them. It also downloads the modules the build
// needs, so on a fresh machine it can take minutes.
func planWork(ctx context.Context, dir string, args []string) (Work, error) {
	list := append([]string{"list", "-deps", "-trimpath", "-f",
		"{{if .Stale}}{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}} {{join .SFiles \" \"}}{{else}}-{{end}}"}, args...)
	out, err := GoOutput(ctx, dir, list...)
	if err != nil {
		return Work{}, err
	}
	w := Work{weights: map[string]int64{}}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		if line == "-" {
			w.Cached++
			continue
		}
		path, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		pkgDir, files, _ := strings.Cut(rest, "\t")
		weight := int64(packageCost)
		for _, f := range strings.Fields(files) {
			if fi, err := os.Stat(filepath.Join(pkgDir, f)); err == nil {
				weight += fi.Size()
			}
		}
		w.weights[path] = weight
		w.Total += weight
		w.Packages++
	}
	if w.Packages == 0 && w.Cached == 0 {
		return Work{}, fmt.Errorf("go %s printed no packages", strings.Join(list[:3], " "))
	}
	return w, nil
}

// weight is the weight of a package `go build -v` named; one not planned
// (the plan failed, or go builds something go list did not foresee) weighs
// what an average planned one does.
func (w Work) weight(path string) int64 {
	if n, ok := w.weights[path]; ok {
		return n
	}
	if w.Packages > 0 {
		return w.Total / int64(w.Packages)
	}
	return packageCost
}

// estimateLeft is the time the rest of the work takes: at the rate this build
// has kept so far once it is 5% done (and 20 s old), before that at rate,
// this machine's recorded rate (or defaultRate).
func estimateLeft(w Work, done int64, elapsed time.Duration, rate float64) (time.Duration, bool) {
	if w.Total <= 0 {
		return 0, false
	}
	if done*20 >= w.Total && elapsed >= 20*time.Second && done > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	if rate <= 0 {
		return 0, false
	}
	left := max(w.Total-done, 0)
	return time.Duration(float64(left) / rate * float64(time.Second)), true
}

// roughly renders a duration to read, not to compute with: "about 12m",
// "about 40s".
func roughly(d time.Duration) string {
	switch {
	case d >= 55*time.Minute:
		r := d.Round(10 * time.Minute)
		h, m := int(r/time.Hour), int(r%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("about %dh", h)
		}
		return fmt.Sprintf("about %dh%02dm", h, m)
	case d >= 10*time.Minute:
		return fmt.Sprintf("about %dm", int(d.Round(time.Minute)/time.Minute))
	case d >= 2*time.Minute:
		m := d.Round(30 * time.Second)
		if m%time.Minute == 0 {
			return fmt.Sprintf("about %dm", int(m/time.Minute))
		}
		return fmt.Sprintf("about %dm30s", int(m/time.Minute))
	case d >= time.Minute:
		return fmt.Sprintf("about %s", d.Round(10*time.Second))
	default:
		return fmt.Sprintf("about %ds", max(int(d.Round(5*time.Second)/time.Second), 5))
	}
}
