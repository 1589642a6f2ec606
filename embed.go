// Package mno embeds the stock playbooks and roles, so an installed binary
// runs `mno run add-vps …` from any directory.
package mno

import "embed"

// Files holds playbooks/ and roles/ (and their templates).
//
//go:embed playbooks roles
var Files embed.FS
