// Package spec is the input of the floor (bench/floor): what the benchmark
// driver writes and the floor reads, in one place.
package spec

// Spec is the input file.
type Spec struct {
	Identity string `json:"identity"`
	// QuickAck re-arms TCP_QUICKACK after every read, as mno does (ARCHITECTURE.md, "Performance facts").
	QuickAck bool   `json:"quick_ack"`
	Hosts    []Host `json:"hosts"`
}

// Host is one host and its file.
type Host struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	User    string `json:"user"`
	HostKey string `json:"host_key"`
	Path    string `json:"path"`
	// Content is the whole file; when Block is set instead, the file keeps
	// its other lines and gets Block (markers included) as its last lines,
	// replacing the block that starts with BlockBegin.
	Content    *string `json:"content,omitempty"`
	Block      string  `json:"block,omitempty"`
	BlockBegin string  `json:"block_begin,omitempty"`
	BlockEnd   string  `json:"block_end,omitempty"`
	Mode       uint32  `json:"mode"`
	// TmpDir receives the temporary file: on the file's filesystem, not in
	// a directory a watcher reads (Traefik's), as mno does.
	TmpDir string `json:"tmp_dir"`
}
