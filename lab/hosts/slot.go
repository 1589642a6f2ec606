package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mno-sh/mno/lab/internal/proc"
)

// A lab holds one slot, 1..maxSlot, for its life: slot S owns the subnet
// 10.213.S.0/24, the bridge mnolab-bS, the namespaces and veths mnolab-S-I and
// the directories mno-lab-S-*. The slot is an flock on lockDir/slot-S: the
// kernel drops it when its holder dies, however it dies, so a slot whose lock
// can be taken belongs to no live lab and whatever carries its number is stale.
// Lock files are never removed (that would let two holders lock two inodes).
const (
	lockDir = "/run/mno-lab"
	maxSlot = 254
)

type slot struct {
	n int
	f *os.File
}

// slotRecord is what a slot's lock file says about its lab. A detached lab
// (see Detached) outlives the process that holds the lock, so its record lists
// the hosts' sshd: while one of them lives, the slot is not stale although
// its lock can be taken.
type slotRecord struct {
	PID      int        `json:"pid"`
	Dir      string     `json:"dir"`
	Detached bool       `json:"detached,omitempty"`
	Procs    []proc.Ref `json:"procs,omitempty"`
}

// live reports whether the record names a detached lab one of whose
// processes still runs.
func (r slotRecord) live() bool {
	if !r.Detached {
		return false
	}
	for _, p := range r.Procs {
		if p.Alive() {
			return true
		}
	}
	return false
}

func readRecord(f *os.File) slotRecord {
	data, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	var rec slotRecord
	_ = json.Unmarshal(data, &rec)
	return rec
}

func lockPath(n int) string { return filepath.Join(lockDir, "slot-"+strconv.Itoa(n)) }

func (s *slot) record(dir string) error {
	return s.write(slotRecord{PID: os.Getpid(), Dir: dir})
}

func (s *slot) write(rec slotRecord) error {
	data, _ := json.Marshal(rec)
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.WriteAt(data, 0)
	return err
}

func (s *slot) release() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Truncate(0)
	err = errors.Join(err, s.f.Close())
	s.f = nil
	return err
}

// relock takes the slot's lock again for a lab whose process let go of it
// (Release, or Open in another process), waiting up to timeout for a sweep
// that holds it for a moment. It fails when the slot no longer records dir:
// the lab was cleaned up as stale, and the slot may be another lab's now.
func (s *slot) relock(dir string, timeout time.Duration) error {
	f, err := os.OpenFile(lockPath(s.n), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("hosts: %w", err)
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("hosts: lock %s: %w", lockPath(s.n), err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			rec := readRecord(f)
			f.Close()
			return fmt.Errorf("hosts: slot %d is held by process %d", s.n, rec.PID)
		}
	}
	if rec := readRecord(f); rec.Dir != dir {
		f.Close()
		return fmt.Errorf("hosts: %w: slot %d no longer belongs to the lab in %s (it was cleaned up as stale)", fs.ErrNotExist, s.n, dir)
	}
	s.f = f
	return nil
}

// CleanStale removes what labs of dead processes left behind: their sshd and
// other processes, network namespaces, links and state directories under
// baseDir (os.TempDir() if empty) or wherever their slot says. Start does this
// first; `mno lab clean` can call it alone. Live labs are not touched.
func CleanStale(ctx context.Context, baseDir string) error {
	if baseDir == "" {
		baseDir = os.TempDir()
	}
	_, err := sweep(ctx, false, baseDir)
	return err
}

// slotResources are the namespaces, links and directories that carry one
// slot's number.
type slotResources struct{ netns, links, dirs []string }

// scanResources finds every namespace and link with this package's prefix and
// every lab directory in baseDir.
func scanResources(baseDir string) map[int]*slotResources {
	out := map[int]*slotResources{}
	add := func(name, prefix string, list func(*slotResources) *[]string, value string) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return
		}
		num, _, _ := strings.Cut(strings.TrimPrefix(rest, "b"), "-")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > maxSlot {
			return
		}
		r := out[n]
		if r == nil {
			r = &slotResources{}
			out[n] = r
		}
		*list(r) = append(*list(r), value)
	}
	netns := func(r *slotResources) *[]string { return &r.netns }
	links := func(r *slotResources) *[]string { return &r.links }
	dirs := func(r *slotResources) *[]string { return &r.dirs }
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			add(e.Name(), linkPrefix, netns, e.Name())
		}
	}
	if ents, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range ents {
			add(e.Name(), linkPrefix, links, e.Name())
		}
	}
	if ents, err := os.ReadDir(baseDir); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				add(e.Name(), "mno-lab-", dirs, filepath.Join(baseDir, e.Name()))
			}
		}
	}
	return out
}

// sweep cleans every stale slot and, when claim is set, keeps the first free
// slot for the caller.
func sweep(ctx context.Context, claim bool, baseDir string) (*slot, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	res := scanResources(baseDir)
	var mine *slot
	var errs []error
	for n := 1; n <= maxSlot; n++ {
		p := lockPath(n)
		if !claim || mine != nil {
			// Only slots with something to clean are worth a lock attempt.
			if fi, err := os.Stat(p); res[n] == nil && (err != nil || fi.Size() == 0) {
				continue
			}
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok, err := tryLock(f); !ok {
			if err != nil {
				errs = append(errs, fmt.Errorf("hosts: lock %s: %w", p, err))
			}
			f.Close()
			continue
		}
		if readRecord(f).live() {
			f.Close() // a detached lab, running
			continue
		}
		if err := cleanSlot(ctx, n, f, res[n]); err != nil {
			errs = append(errs, err)
		}
		if claim && mine == nil {
			mine = &slot{n: n, f: f}
			continue
		}
		f.Close()
	}
	if claim && mine == nil {
		errs = append(errs, fmt.Errorf("hosts: all %d lab slots under %s are in use", maxSlot, lockDir))
	}
	return mine, errors.Join(errs...)
}

// cleanSlot removes what a dead lab left in slot n; the caller holds its lock.
func cleanSlot(ctx context.Context, n int, f *os.File, r *slotResources) error {
	if r == nil {
		r = &slotResources{}
	}
	rec := readRecord(f)
	dirs := r.dirs
	// The record is trusted only for a directory this package could have made.
	if d := filepath.Clean(rec.Dir); filepath.IsAbs(d) && strings.HasPrefix(filepath.Base(d), fmt.Sprintf("mno-lab-%d-", n)) && !slices.Contains(dirs, d) {
		dirs = append(dirs, d)
	}
	m := procMatch{net: map[string]bool{}, dirs: dirs}
	for _, ns := range r.netns {
		var st syscall.Stat_t
		if syscall.Stat(netnsPath(ns), &st) == nil {
			m.net[fmt.Sprintf("net:[%d]", st.Ino)] = true
		}
	}
	if len(m.net) > 0 || len(m.dirs) > 0 {
		killMatching(m)
	}
	// Veths before the bridge.
	links := append([]string(nil), r.links...)
	for i, l := range links {
		if l == bridgeName(n) {
			links = append(append(links[:i:i], links[i+1:]...), l)
			break
		}
	}
	err := teardownNetwork(ctx, links, r.netns)
	for _, d := range dirs {
		err = errors.Join(err, unmount(d), os.RemoveAll(d))
	}
	return errors.Join(err, f.Truncate(0))
}
