package journal

import "strings"

// Problem is one finding about the cluster's state (package state makes
// them): an entry of a ConfigMap that was invalid and skipped, or read
// leniently. The journal reports each once per run, in a "problem" event
// and in the recap.
type Problem struct {
	Level     string `json:"level"` // "invalid" or "warning"
	ConfigMap string `json:"configmap"`
	Key       string `json:"key,omitempty"`
	Entry     string `json:"entry,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

// Text renders the problem on one line (as package state's Problem.String).
func (p Problem) Text() string {
	var b strings.Builder
	b.WriteString(p.ConfigMap)
	for _, s := range []string{p.Key, p.Entry} {
		if s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems records the problems of one read of the cluster's state, at
// pos. A problem already reported in this run (the state is often read more
// than once) is not reported again.
func (j *Journal) Problems(pos string, ps []Problem) {
	j.mu.Lock()
	j.stateRead = true
	var fresh []Problem
	for _, p := range ps {
		if j.seenProblem == nil {
			j.seenProblem = map[Problem]bool{}
		}
		if !j.seenProblem[p] {
			j.seenProblem[p] = true
			j.problems = append(j.problems, p)
			fresh = append(fresh, p)
		}
	}
	j.mu.Unlock()
	for _, p := range fresh {
		j.out.problem(pos, p)
	}
}

// StateProblems returns the problems reported so far, and whether the
// cluster's state was read at all in this run.
func (j *Journal) StateProblems() ([]Problem, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Problem(nil), j.problems...), j.stateRead
}
