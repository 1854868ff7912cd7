package postgres

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ScopeMetaKey is the _meta key under which a call carries its task scope:
// an object of setting names to values, for example {"customer_id": "42"}.
// Each entry reaches the database as the transaction-local setting
// warden.<name>, which row-level security policies read with
// current_setting('warden.<name>', true).
const ScopeMetaKey = "io.wardenmcp/scope"

// ScopeSettingPrefix is prepended to every scope key to form the setting name.
const ScopeSettingPrefix = "warden."

// Bounds on a scope, so a call cannot make the connector set unbounded state.
const (
	maxScopeKeys       = 32
	maxScopeValueBytes = 1024
)

// scopeSetting is one transaction-local setting derived from the scope.
type scopeSetting struct {
	name  string // full setting name, e.g. warden.customer_id
	value string
}

// scopeSettings reads the task scope from a call's _meta. A missing scope is
// an empty one; a malformed scope is an error, so the call is refused rather
// than run with less confinement than intended.
func scopeSettings(meta map[string]any) ([]scopeSetting, error) {
	raw, ok := meta[ScopeMetaKey]
	if !ok || raw == nil {
		return nil, nil
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("_meta %q must be an object, got %T", ScopeMetaKey, raw)
	}
	if len(obj) > maxScopeKeys {
		return nil, fmt.Errorf("_meta %q has %d keys, at most %d allowed", ScopeMetaKey, len(obj), maxScopeKeys)
	}
	settings := make([]scopeSetting, 0, len(obj))
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		if !identifierPattern.MatchString(key) {
			return nil, fmt.Errorf("scope key %q: want [a-z_][a-z0-9_]*, at most 63 characters", key)
		}
		value, err := scopeValue(obj[key])
		if err != nil {
			return nil, fmt.Errorf("scope key %q: %w", key, err)
		}
		settings = append(settings, scopeSetting{name: ScopeSettingPrefix + key, value: value})
	}
	return settings, nil
}

func scopeValue(v any) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		s = strconv.FormatBool(v)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", fmt.Errorf("value %v is not a finite number", v)
		}
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return "", fmt.Errorf("value must be a string, number or boolean, got %T", v)
	}
	if len(s) > maxScopeValueBytes {
		return "", fmt.Errorf("value is %d bytes, at most %d allowed", len(s), maxScopeValueBytes)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("value must be valid UTF-8 without NUL characters")
	}
	return s, nil
}
