package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Sample is one timed run of a tool.
type Sample struct {
	Wall     time.Duration
	User     time.Duration // CPU of the process and the children it reaped
	Sys      time.Duration
	MaxRSSKB int64   // peak RSS of the process (or its largest reaped child)
	Load1    float64 // 1-minute load average when the run started
	// Busy is the share of CPU time the machine spent busy in the second
	// before the repetition started (nothing of the benchmark running).
	Busy float64
	// HostsCPU is the CPU the hosts' sshd (and what they ran: sudo, sh, …)
	// spent on the run; Others is how many CPUs the rest of the machine
	// (other engineers' work) kept busy meanwhile: all busy time minus the
	// tool's and the hosts'.
	HostsCPU time.Duration
	Others   float64
}

// clockTick is USER_HZ, the unit of /proc/stat and /proc/PID/stat.
const clockTick = 10 * time.Millisecond

// Usage samples the machine's busy time and the CPU of the hosts' sshd
// processes (their children's CPU lands in the sshd master when it reaps
// them).
type Usage struct {
	busy  uint64
	hosts time.Duration
}

// MeasureUsage reads the counters once the hosts' sshd masters have reaped
// their connections' processes (at most a few seconds), so their CPU is
// counted in the run that caused it.
func MeasureUsage(pids []int) Usage {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && hasChildren(pids) {
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := cpuTimes()
	return Usage{busy: b, hosts: procCPU(pids)}
}

// Account fills s.HostsCPU and s.Others from the usage before and after it.
func (s *Sample) Account(before, after Usage) {
	s.HostsCPU = after.hosts - before.hosts
	busy := time.Duration(after.busy-before.busy) * clockTick
	if s.Wall > 0 {
		s.Others = max(0, (busy-s.User-s.Sys-s.HostsCPU).Seconds()/s.Wall.Seconds())
	}
}

// hasChildren reports whether any of pids has a child process.
func hasChildren(pids []int) bool {
	for _, pid := range pids {
		p := strconv.Itoa(pid)
		if b, err := os.ReadFile("/proc/" + p + "/task/" + p + "/children"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}

// procCPU sums utime, stime, cutime and cstime of pids.
func procCPU(pids []int) time.Duration {
	var ticks uint64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command may hold spaces: fields start after the last ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			if i < len(f) {
				n, _ := strconv.ParseUint(f[i], 10, 64)
				ticks += n
			}
		}
	}
	return time.Duration(ticks) * clockTick
}

// Timed runs cmd through the measuring wrapper (bench/rusage) and returns
// its wall time, CPU and peak RSS.
func Timed(wrapper string, cmd *exec.Cmd) (Sample, []byte, error) {
	var out bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &out
	}
	f, err := os.CreateTemp("", "mno-bench-rusage-")
	if err != nil {
		return Sample{}, nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	args := cmd.Args
	cmd.Path, cmd.Args = wrapper, append([]string{wrapper, f.Name(), cmd.Path}, args[1:]...)
	load := Load1()
	err = cmd.Run()
	var u struct{ WallNS, UserNS, SysNS, MaxRSSKB int64 }
	if b, rerr := os.ReadFile(f.Name()); rerr == nil {
		json.Unmarshal(b, &u)
	}
	s := Sample{Wall: time.Duration(u.WallNS), User: time.Duration(u.UserNS), Sys: time.Duration(u.SysNS), MaxRSSKB: u.MaxRSSKB, Load1: load}
	if err != nil {
		return s, out.Bytes(), fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, tail(out.String(), 40))
	}
	if s.Wall == 0 {
		return s, out.Bytes(), fmt.Errorf("%s: the measuring wrapper wrote nothing", strings.Join(args, " "))
	}
	return s, out.Bytes(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Load1 is the 1-minute load average.
func Load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// cpuTimes reads the aggregate busy and total jiffies from /proc/stat.
func cpuTimes() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fields := strings.Fields(sc.Text())
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// Busy measures the share of CPU the machine spends busy over d.
func Busy(d time.Duration) float64 {
	b0, t0 := cpuTimes()
	time.Sleep(d)
	b1, t1 := cpuTimes()
	if t1 == t0 {
		return 0
	}
	return float64(b1-b0) / float64(t1-t0)
}

// WaitQuiet waits, at most max, until the machine is less than threshold busy
// over a second (other engineers' builds share it); it returns the last
// measurement.
func WaitQuiet(ctx context.Context, threshold float64, max time.Duration) float64 {
	deadline := time.Now().Add(max)
	for {
		b := Busy(time.Second)
		if b < threshold || time.Now().After(deadline) || ctx.Err() != nil {
			return b
		}
	}
}

// Stats summarises samples.
type Stats struct {
	N                int
	Median, Min, Max time.Duration
	CPU              time.Duration // median user+sys
	MaxRSSKB         int64         // highest peak RSS
	Load1            float64       // median load average at the start of the runs
	LoadMax          float64
	Busy             float64       // median busy share before the repetitions
	HostsCPU         time.Duration // median
	Others           float64       // median CPUs busy with other work during the runs
}

// Summarise computes Stats.
func Summarise(s []Sample) Stats {
	if len(s) == 0 {
		return Stats{}
	}
	walls := make([]time.Duration, len(s))
	cpus := make([]time.Duration, len(s))
	loads := make([]float64, len(s))
	busy := make([]float64, len(s))
	hosts := make([]time.Duration, len(s))
	others := make([]float64, len(s))
	st := Stats{N: len(s)}
	for i, x := range s {
		walls[i], cpus[i], loads[i], busy[i] = x.Wall, x.User+x.Sys, x.Load1, x.Busy
		hosts[i], others[i] = x.HostsCPU, x.Others
		if x.MaxRSSKB > st.MaxRSSKB {
			st.MaxRSSKB = x.MaxRSSKB
		}
		if x.Load1 > st.LoadMax {
			st.LoadMax = x.Load1
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	sort.Slice(cpus, func(i, j int) bool { return cpus[i] < cpus[j] })
	sort.Float64s(loads)
	sort.Float64s(busy)
	st.Median, st.Min, st.Max = medianD(walls), walls[0], walls[len(walls)-1]
	st.CPU = medianD(cpus)
	st.Load1 = medianF(loads)
	st.Busy = medianF(busy)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i] < hosts[j] })
	sort.Float64s(others)
	st.HostsCPU, st.Others = medianD(hosts), medianF(others)
	return st
}

func medianD(v []time.Duration) time.Duration {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func medianF(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// fileState is what a write would change.
type fileState struct {
	mtime, ctime int64
	size         int64
}

// Snapshot records every path the hosts have written (their overlay upper
// layers) with its mtime and ctime: comparing two snapshots shows any write
// at all, not just to the files sync manages.
type Snapshot map[string]fileState

// TakeSnapshot walks the upper layers of nodes' hosts.
func TakeSnapshot(nodes []Node) (Snapshot, error) {
	s := Snapshot{}
	for _, n := range nodes {
		root := filepath.Join(n.Host.Dir, "upper")
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(p, &st); err != nil {
				return err
			}
			s[p] = fileState{mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), size: st.Size}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Changed lists the paths written, created or removed since before.
func (s Snapshot) Changed(before Snapshot) []string {
	var out []string
	for p, st := range s {
		if b, ok := before[p]; !ok || b != st {
			out = append(out, p)
		}
	}
	for p := range before {
		if _, ok := s[p]; !ok {
			out = append(out, p+" (removed)")
		}
	}
	sort.Strings(out)
	return out
}
