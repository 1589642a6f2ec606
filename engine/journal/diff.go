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
	return unified(name, a, b, editScript(a, b), 3)
}

// maxDiffWork bounds the work (and memory) of myers: about d·(n+m) steps for
// d edits. A document with changes everywhere (a 1000-node registry.json
// whose every entry gets a new status) would otherwise take seconds and
// gigabytes; past the bound the changed middle becomes one hunk.
const maxDiffWork = 20_000_000

// editScript is a shortest edit script from a to b when myers finds one
// within maxDiffWork, else a correct longer one: the lines between the
// common prefix and suffix deleted and inserted.
func editScript(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	mid, ok := myers(ma, mb, maxDiffWork)
	if !ok {
		mid = mid[:0]
		for i := range ma {
			mid = append(mid, edit{del, i, 0})
		}
		for j := range mb {
			mid = append(mid, edit{ins, len(ma), j})
		}
	}
	ops := make([]edit, 0, pre+len(mid)+suf)
	for i := range pre {
		ops = append(ops, edit{keep, i, i})
	}
	for _, e := range mid {
		ops = append(ops, edit{e.kind, e.a + pre, e.b + pre})
	}
	for i := range suf {
		ops = append(ops, edit{keep, len(a) - suf + i, len(b) - suf + i})
	}
	return ops
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
// recording per step the part of the V array that step can reach (diagonals
// -d..d) to backtrack: memory grows with the square of the number of edits,
// not with their product with the length. It gives up (ok false) once the
// work passes budget steps.
func myers(a, b []string, budget int) (ops []edit, ok bool) {
	n, m := len(a), len(b)
	max := n + m
	if max == 0 {
		return nil, true
	}
	off := max
	v := make([]int, 2*max+2)
	var trace [][]int
	for d := 0; d <= max; d++ {
		if d*max > budget {
			return nil, false
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
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
				return backtrack(trace, a, b, d), true
			}
		}
	}
	return nil, false
}

// backtrack walks trace back from step d; trace[d][k+d] is V[k] as step d
// found it.
func backtrack(trace [][]int, a, b []string, d int) []edit {
	x, y := len(a), len(b)
	var rev []edit
	for ; d > 0; d-- {
		t, dd := trace[d], d
		v := func(k int) int { return t[k+dd] }
		k := x - y
		var pk int
		if k == -d || (k != d && v(k-1) < v(k+1)) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := v(pk)
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
