package ssh

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// idCache maps user and group names to ids and back on one connection,
// from /etc/passwd and /etc/group (read once over SFTP) and, for accounts
// that live elsewhere (LDAP, sssd), `getent`.
type idCache struct {
	byName [2]map[string]int // [0] users, [1] groups
	byID   [2]map[int]string
}

func kindIndex(group bool) int {
	if group {
		return 1
	}
	return 0
}

// idTable returns the connection's cache, loading the account files once.
func (h *host) idTable() *idCache {
	h.c.idsMu.Lock()
	defer h.c.idsMu.Unlock()
	if h.c.ids != nil {
		return h.c.ids
	}
	t := &idCache{}
	for i, file := range []string{"/etc/passwd", "/etc/group"} {
		t.byName[i], t.byID[i] = map[string]int{}, map[int]string{}
		data, _, err := sftpFS{h}.readAll(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 {
				continue
			}
			if id, err := strconv.Atoi(f[2]); err == nil {
				t.byName[i][f[0]] = id
				if _, ok := t.byID[i][id]; !ok {
					t.byID[i][id] = f[0]
				}
			}
		}
	}
	h.c.ids = t
	return t
}

func (h *host) cached(group bool, name string, id int) (string, int, bool) {
	t := h.idTable()
	h.c.idsMu.Lock()
	defer h.c.idsMu.Unlock()
	k := kindIndex(group)
	if name != "" {
		v, ok := t.byName[k][name]
		return name, v, ok
	}
	v, ok := t.byID[k][id]
	return v, id, ok
}

// getent asks the host's name service for one account.
func (h *host) getent(ctx context.Context, group bool, key string) (string, int, bool, error) {
	db := "passwd"
	if group {
		db = "group"
	}
	out, err := h.c.exec(ctx, remoteCmd{argv: []string{"getent", db, key}})
	if err != nil {
		return "", 0, false, err
	}
	f := strings.Split(strings.TrimSpace(string(out.stdout)), ":")
	if out.code != 0 || len(f) < 3 {
		return "", 0, false, nil
	}
	id, err := strconv.Atoi(f[2])
	if err != nil {
		return "", 0, false, nil
	}
	t := h.idTable()
	h.c.idsMu.Lock()
	t.byName[kindIndex(group)][f[0]] = id
	t.byID[kindIndex(group)][id] = f[0]
	h.c.idsMu.Unlock()
	return f[0], id, true, nil
}

// lookupID resolves a user (or group) name, or a numeric id, to an id.
func (h *host) lookupID(ctx context.Context, group bool, name string) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	if _, id, ok := h.cached(group, name, 0); ok {
		return id, nil
	}
	_, id, ok, err := h.getent(ctx, group, name)
	if err != nil {
		return 0, err
	}
	if !ok {
		kind := "user"
		if group {
			kind = "group"
		}
		return 0, fmt.Errorf("no %s %q on %s", kind, name, h.name)
	}
	return id, nil
}

// lookupName resolves an id to a name, "" when the host knows none.
func (h *host) lookupName(ctx context.Context, group bool, id int) (string, error) {
	if name, _, ok := h.cached(group, "", id); ok {
		return name, nil
	}
	name, _, _, err := h.getent(ctx, group, strconv.Itoa(id))
	return name, err
}

// fillNames sets info's owner and group names when the stat did not.
func (h *host) fillNames(ctx context.Context, info *fileInfo) error {
	var err error
	if info.owner == "" {
		if info.owner, err = h.lookupName(ctx, false, info.uid); err != nil {
			return err
		}
	}
	if info.group == "" {
		info.group, err = h.lookupName(ctx, true, info.gid)
	}
	return err
}

// idMatches reports whether the file's owner (or group) is want, a name or
// a numeric id.
func (h *host) idMatches(ctx context.Context, info *fileInfo, group bool, want string) (bool, error) {
	if want == "" {
		return true, nil
	}
	name, id := info.owner, info.uid
	if group {
		name, id = info.group, info.gid
	}
	if want == name || want == strconv.Itoa(id) {
		return true, nil
	}
	wantID, err := h.lookupID(ctx, group, want)
	if err != nil {
		return false, err
	}
	return wantID == id, nil
}
