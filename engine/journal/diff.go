package journal

import (
	"bytes"
	"fmt"
	"strings"
)

// maxDiffBytes bounds the inputs that get a line diff; larger or binary
// content is summarised instead.
const maxDiffBytes = 1 << 20

// Diff returns a unified diff (3 lines of context) from old to new, labelled
// with name. It returns "" when they are equal. Binary or very large content
// is summarised in one line.
func Diff(name, old, new string) string {
	if old == new {
		return ""
	}
	if len(old) > maxDiffBytes || len(new) > maxDiffBytes || isBinary(old) || isBinary(new) {
		return fmt.Sprintf("--- %s\n+++ %s\nbinary or large content differs (%d bytes → %d bytes)\n", name, name, len(old), len(new))
	}
	a, b := splitLines(old), splitLines(new)
	ops := myers(a, b)
	return unified(name, a, b, ops, 3)
}

func isBinary(s string) bool {
	n := len(s)
	if n > 8000 {
		n = 8000
	}
	return bytes.IndexByte([]byte(s[:n]), 0) >= 0
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

type editKind int8

const (
	keep editKind = iota
	del
	ins
)

type edit struct {
	kind editKind
	a, b int // indices into a (keep, del) and b (keep, ins)
}

// myers computes a shortest edit script between a and b (Myers 1986),
// recording the V array per step to backtrack.
func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil
	}
	off := max
	v := make([]int, 2*max+2)
	var trace [][]int
	for d := 0; d <= max; d++ {
		snap := make([]int, len(v))
		copy(snap, v)
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, d, off)
			}
		}
	}
	return nil
}

func backtrack(trace [][]int, a, b []string, d, off int) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for ; d > 0; d-- {
		v := trace[d]
		k := x - y
		var pk int
		if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v[off+pk]
		py := px - pk
		for x > px && y > py {
			x--
			y--
			rev = append(rev, edit{keep, x, y})
		}
		if x == px {
			y--
			rev = append(rev, edit{ins, x, y})
		} else {
			x--
			rev = append(rev, edit{del, x, y})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, edit{keep, x, y})
	}
	out := make([]edit, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out
}

func unified(name string, a, b []string, ops []edit, ctx int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", name, name)
	i := 0
	for i < len(ops) {
		// find next change
		for i < len(ops) && ops[i].kind == keep {
			i++
		}
		if i == len(ops) {
			break
		}
		start := i - ctx
		if start < 0 {
			start = 0
		}
		// extend hunk while changes are within 2*ctx of each other
		end := i
		for {
			for end < len(ops) && ops[end].kind != keep {
				end++
			}
			run := end
			for run < len(ops) && ops[run].kind == keep && run-end < 2*ctx {
				run++
			}
			if run < len(ops) && ops[run].kind != keep {
				end = run
				continue
			}
			break
		}
		stop := end + ctx
		if stop > len(ops) {
			stop = len(ops)
		}
		hunk := ops[start:stop]
		aStart, bStart, aLen, bLen := -1, -1, 0, 0
		for _, e := range hunk {
			switch e.kind {
			case keep:
				aLen++
				bLen++
			case del:
				aLen++
			case ins:
				bLen++
			}
			if aStart < 0 && e.kind != ins {
				aStart = e.a
			}
			if bStart < 0 && e.kind != del {
				bStart = e.b
			}
		}
		if aStart < 0 {
			aStart = hunk[0].a
		}
		if bStart < 0 {
			bStart = hunk[0].b
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", rng(aStart, aLen), rng(bStart, bLen))
		for _, e := range hunk {
			switch e.kind {
			case keep:
				writeLine(&sb, ' ', a[e.a])
			case del:
				writeLine(&sb, '-', a[e.a])
			case ins:
				writeLine(&sb, '+', b[e.b])
			}
		}
		i = stop
	}
	return sb.String()
}

func rng(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

func writeLine(sb *strings.Builder, prefix byte, line string) {
	sb.WriteByte(prefix)
	sb.WriteString(line)
	if !strings.HasSuffix(line, "\n") {
		sb.WriteString("\n\\ No newline at end of file\n")
	}
}
