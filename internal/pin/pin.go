// Package pin keeps upstream tool definitions honest: it pins the definition
// of every tool the first time Warden sees it, quarantines a tool whose
// definition later changes until an operator approves the change, and scans
// descriptions and schemas for tool poisoning (hidden instructions, invisible
// Unicode, encoded blobs, look-alike names).
//
// The package is pure logic over a small Store interface; the embedded
// SQLite store implements it in internal/store/sqlite.
package pin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Definition is one tool as an upstream lists it: everything a client (and
// the model behind it) reads about the tool.
type Definition struct {
	// Upstream is the configured name of the upstream that lists the tool.
	Upstream string
	// Name is the tool's name at the upstream (before namespacing).
	Name        string
	Title       string
	Description string
	// InputSchema, OutputSchema and Annotations are JSON as listed; empty
	// means absent.
	InputSchema  json.RawMessage
	OutputSchema json.RawMessage
	Annotations  json.RawMessage
}

// Ref is the definition's "upstream.name" reference, as the CLI takes it.
func (d Definition) Ref() string { return d.Upstream + "." + d.Name }

// State is what Warden does with a pinned tool.
type State string

const (
	// StateApproved: the pinned definition is trusted; a listing with the
	// same digest is exposed.
	StateApproved State = "approved"
	// StateQuarantined: a definition waits for an operator (Pending); the
	// tool is exposed only in its approved form, if it has one.
	StateQuarantined State = "quarantined"
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s == StateApproved || s == StateQuarantined }

// Pin is the stored trust record of one upstream tool.
type Pin struct {
	Upstream string
	Name     string
	// Digest is Digest(Definition) of the approved definition; empty when
	// the tool was quarantined at first sight and never approved.
	Digest     string
	Definition Definition
	State      State
	FirstSeen  time.Time
	// ApprovedAt is when Definition was approved (at first sight, or by an
	// operator); zero when never approved.
	ApprovedAt time.Time
	// PendingDigest and Pending are the listed definition that differs from
	// the approved one, waiting for approval; empty and nil otherwise.
	PendingDigest string
	Pending       *Definition
	// Findings are the scan findings of the newest definition seen: Pending
	// when there is one, else Definition.
	Findings []Finding
}

// Ref is the pin's "upstream.name" reference.
func (p Pin) Ref() string { return p.Upstream + "." + p.Name }

// Approved reports whether the pin has an approved definition.
func (p Pin) Approved() bool { return p.Digest != "" }

// validate checks what every store requires of a pin it keeps.
func (p Pin) validate() error {
	switch {
	case p.Upstream == "" || p.Name == "":
		return fmt.Errorf("pin %q: empty upstream or tool name", p.Ref())
	case !p.State.Valid():
		return fmt.Errorf("pin %s: invalid state %q", p.Ref(), p.State)
	case p.Definition.Upstream != p.Upstream || p.Definition.Name != p.Name:
		return fmt.Errorf("pin %s: definition is for %s", p.Ref(), p.Definition.Ref())
	case p.Pending != nil && (p.Pending.Upstream != p.Upstream || p.Pending.Name != p.Name):
		return fmt.Errorf("pin %s: pending definition is for %s", p.Ref(), p.Pending.Ref())
	case (p.Pending == nil) != (p.PendingDigest == ""):
		return fmt.Errorf("pin %s: pending definition and pending digest must be set together", p.Ref())
	case p.State == StateApproved && p.Pending != nil:
		return fmt.Errorf("pin %s: approved with a pending change", p.Ref())
	case p.State == StateApproved && p.Digest == "":
		return fmt.Errorf("pin %s: approved without a digest", p.Ref())
	case p.State == StateQuarantined && p.Pending == nil:
		return fmt.Errorf("pin %s: quarantined with nothing pending", p.Ref())
	}
	return nil
}

// Digest is the SHA-256 of the definition's canonical encoding, as
// "sha256:<hex>". The encoding is a JSON object with sorted keys in which
// each schema is re-encoded with sorted keys and no insignificant
// whitespace, so reordering keys or reformatting a schema keeps the digest
// while any change of content changes it. A schema that is not valid JSON,
// or is ambiguous (duplicate keys), and a string field that is not valid
// UTF-8 are hashed byte for byte under a different key: such a definition
// still gets a digest that changes with every byte, and never collides with
// a well-formed one.
func Digest(d Definition) string {
	sum := sha256.Sum256(canonicalDefinition(d))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// canonicalDefinition is the byte string Digest hashes.
func canonicalDefinition(d Definition) []byte {
	fields := map[string]json.RawMessage{}
	str := func(key, s string) {
		if utf8.ValidString(s) {
			fields[key] = encodeString(s)
			return
		}
		fields[key+"Hex"] = encodeString(hex.EncodeToString([]byte(s)))
	}
	raw := func(key string, v json.RawMessage) {
		if isAbsent(v) {
			fields[key] = json.RawMessage("null")
			return
		}
		c, err := canonicalJSON(v)
		if err != nil {
			fields[key+"Hex"] = encodeString(hex.EncodeToString(v))
			return
		}
		fields[key] = c
	}
	str("upstream", d.Upstream)
	str("name", d.Name)
	str("title", d.Title)
	str("description", d.Description)
	raw("inputSchema", d.InputSchema)
	raw("outputSchema", d.OutputSchema)
	raw("annotations", d.Annotations)
	keys := slices.Sorted(maps.Keys(fields))
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(encodeString(k))
		buf.WriteByte(':')
		buf.Write(fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// isAbsent reports whether a JSON field is missing: empty or null.
func isAbsent(v json.RawMessage) bool {
	return len(v) == 0 || string(v) == "null"
}
