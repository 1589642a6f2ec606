package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// StatusFields are the registry fields a sync writes about its own outcome.
// A change to them alone is not a reason to sync again — otherwise every
// sync that changed something would trigger one more.
var StatusFields = []string{"status", "last_sync", "last_error", "last_attempt", "applied", "last_updated", "updated_by"}

// Fingerprint returns a digest of a ConfigMap's data that ignores the given
// fields at any depth of JSON values (values that are not JSON count whole).
func Fingerprint(cm *corev1.ConfigMap, ignore []string) string {
	skip := map[string]bool{}
	for _, f := range ignore {
		skip[f] = true
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		v := cm.Data[k]
		var doc any
		if json.Unmarshal([]byte(v), &doc) == nil {
			b, _ := json.Marshal(strip(doc, skip)) // map keys come out sorted
			v = string(b)
		}
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	for k, v := range cm.BinaryData {
		h.Write([]byte(k))
		h.Write(v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func strip(v any, skip map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !skip[k] {
				out[k] = strip(e, skip)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = strip(e, skip)
		}
		return out
	}
	return v
}
