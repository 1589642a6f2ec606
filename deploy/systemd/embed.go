// Package systemd embeds mno's systemd units, so `mno install systemd` can
// write them from an installed binary.
package systemd

import "embed"

// Units holds mno-sync.service, mno-sync.timer and mno-watch.service.
//
//go:embed *.service *.timer
var Units embed.FS
