package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// APIKey is one accepted API key, known only by its hash.
type APIKey struct {
	// ID names the key in logs and audit records; it is not secret.
	ID string `yaml:"id"`
	// Hash is HashAPIKey of the key: "sha256:" and 64 lower-case hex digits.
	Hash string `yaml:"hash"`
	// Principal is who presents this key.
	Principal Principal `yaml:"principal"`
}

const apiKeyHashPrefix = "sha256:"

// HashAPIKey returns the form of key that the configuration holds:
// "sha256:<hex>".
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return apiKeyHashPrefix + hex.EncodeToString(sum[:])
}

// ParseAPIKeyHash returns the digest in a "sha256:<hex>" hash, the form in
// which the configuration holds API and admin keys.
func ParseAPIKeyHash(h string) ([]byte, error) {
	digest, ok := strings.CutPrefix(h, apiKeyHashPrefix)
	if !ok {
		return nil, errors.New(`hash must start with "sha256:" (the key itself never goes in the configuration)`)
	}
	if len(digest) != 2*sha256.Size || strings.ToLower(digest) != digest {
		return nil, fmt.Errorf("hash must be \"sha256:\" and %d lower-case hex digits", 2*sha256.Size)
	}
	b, err := hex.DecodeString(digest)
	if err != nil {
		return nil, fmt.Errorf("hash must be \"sha256:\" and %d lower-case hex digits", 2*sha256.Size)
	}
	return b, nil
}

func validateAPIKeys(keys []APIKey) error {
	ids := make(map[string]bool, len(keys))
	hashes := make(map[string]string, len(keys))
	for i, k := range keys {
		where := fmt.Sprintf("identity.api_keys[%d]", i)
		if k.ID == "" {
			return fmt.Errorf("%s: id is required", where)
		}
		where = fmt.Sprintf("identity.api_keys[%d] (%s)", i, k.ID)
		if ids[k.ID] {
			return fmt.Errorf("%s: id appears twice", where)
		}
		ids[k.ID] = true
		if _, err := ParseAPIKeyHash(k.Hash); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if other, ok := hashes[k.Hash]; ok {
			return fmt.Errorf("%s: same key hash as %s", where, other)
		}
		hashes[k.Hash] = k.ID
		if k.Principal.ID == "" {
			return fmt.Errorf("%s: principal.id is required", where)
		}
	}
	return nil
}

// apiKeyTable finds the key whose hash matches a presented key.
type apiKeyTable []apiKeyEntry

type apiKeyEntry struct {
	id        string
	digest    []byte
	principal Principal
}

// newAPIKeyTable builds the table from validated keys.
func newAPIKeyTable(keys []APIKey) apiKeyTable {
	t := make(apiKeyTable, 0, len(keys))
	for _, k := range keys {
		digest, err := ParseAPIKeyHash(k.Hash)
		if err != nil {
			continue // unreachable after Validate; an unusable entry matches nothing
		}
		p := clonePrincipal(k.Principal)
		p.Method = MethodAPIKey
		t = append(t, apiKeyEntry{id: k.ID, digest: digest, principal: p})
	}
	return t
}

// lookup returns the key id and principal for key. Every entry is compared
// in constant time, so the time taken says nothing about which entry (or
// how much of a digest) matched.
func (t apiKeyTable) lookup(key string) (id string, p Principal, ok bool) {
	sum := sha256.Sum256([]byte(key))
	match := -1
	for i, e := range t {
		if subtle.ConstantTimeCompare(sum[:], e.digest) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", Principal{}, false
	}
	e := t[match]
	return e.id, clonePrincipal(e.principal), true
}
