// Package audit is Warden's tamper-evident audit log: append-only records,
// one per decision and one per outcome, each bound to its predecessor by a
// SHA-256 hash chain, with periodic Ed25519-signed checkpoints. Log appends
// with group commit and returns only once a record is durable; Verify walks
// the chain and names the first record that is wrong.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// SchemaVersion is the version of Record this package writes (the "v" field).
const SchemaVersion = 1

// GenesisHash is the "prev" of the first record of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Kind says what a record describes.
type Kind string

// The kinds of record Warden writes. Other kinds may be added; readers must
// accept kinds they do not know.
const (
	KindDecision   Kind = "decision"   // the policy decision on a request
	KindOutcome    Kind = "outcome"    // what happened after the decision
	KindAdmin      Kind = "admin"      // an operator action (policy, approval, key)
	KindCheckpoint Kind = "checkpoint" // a signed checkpoint, written only by Log
)

// Decision is the policy's answer on a request.
type Decision string

// The policy effects.
const (
	DecisionAllow   Decision = "allow"
	DecisionDeny    Decision = "deny"
	DecisionConfirm Decision = "confirm"
	DecisionApprove Decision = "approve"
)

// Record is one audit event. Fields set by the caller describe the event; Seq,
// Prev, Hash and Checkpoint are set by Log. Args and the other free-form
// fields must already be redacted: the log stores exactly what it is given.
type Record struct {
	V             int                        // schema version; 0 on Append means SchemaVersion
	Seq           uint64                     // position in the chain, from 1, without gaps
	Time          time.Time                  // when the event happened; zero on Append means now
	Kind          Kind                       // what the record describes
	RequestID     string                     // the JSON-RPC request the event belongs to
	DecisionID    string                     // the id the caller can quote
	Session       string                     // MCP session, if any
	Task          string                     // task grant id, if any
	Principal     string                     // who called
	Method        string                     // MCP method ("tools/call")
	Tool          string                     // namespaced tool, resource or prompt name
	Args          json.RawMessage            // redacted arguments, JSON
	Decision      Decision                   // allow, deny, confirm or approve
	Rules         []string                   // ids of the rules behind the decision
	Reason        string                     // why, as told to the caller
	PolicyVersion string                     // revision of the policy that decided
	ApprovalID    string                     // approval request, if one was needed
	CredentialID  string                     // per-call credential minted, if any
	Upstream      string                     // upstream server the call went to
	LatencyUS     int64                      // upstream latency in microseconds; 0 if not called
	Status        string                     // "ok", "error", "denied", …
	Masked        []string                   // result paths or data classes that were masked
	Labels        []string                   // task labels the event added
	Shadow        bool                       // decided in shadow mode: recorded, not enforced
	Extra         map[string]json.RawMessage // forward-compatible additions, JSON values
	Checkpoint    *Checkpoint                // set on kind "checkpoint" only
	Prev          string                     // hex SHA-256 of the previous record; GenesisHash for the first
	Hash          string                     // hex SHA-256 of this record's canonical encoding without "hash"
}

// Checkpoint is the signed statement that the chain up to HeadSeq ended in
// Head. A checkpoint record is itself part of the chain: HeadSeq is its Seq-1
// and Head its Prev. Fields are declared in the order of their JSON keys, as
// the canonical encoding requires.
type Checkpoint struct {
	Head    string `json:"head"`
	HeadSeq uint64 `json:"head_seq"`
	KeyID   string `json:"key_id"` // KeyID of the signing public key
	Sig     string `json:"sig"`    // hex Ed25519 signature over CheckpointMessage
}

// CheckpointMessage is the exact byte string a checkpoint signs: a context
// line, the head seq in decimal, the head hash and the checkpoint record's
// time, separated by newlines.
func CheckpointMessage(headSeq uint64, head string, t time.Time) []byte {
	return fmt.Appendf(nil, "warden audit checkpoint v1\n%d\n%s\n%s", headSeq, head, t.UTC().Format(time.RFC3339Nano))
}

// wireRecord fixes the canonical encoding: its fields are declared in
// byte-wise lexical order of their JSON keys, so encoding/json writes the keys
// sorted. v, seq, time, kind and prev are always present; the others are
// omitted when empty (nil and empty lists and maps encode the same). It is
// cut in three around prev and seq so that the Log can encode a record once,
// before it knows its place in the chain (see encodedRecord).
type wireRecord struct {
	wireBeforePrev
	Prev string `json:"prev"`
	wireBeforeSeq
	Seq uint64 `json:"seq"`
	wireAfterSeq
}

type wireBeforePrev struct {
	ApprovalID    string                     `json:"approval_id,omitempty"`
	Args          json.RawMessage            `json:"args,omitempty"`
	Checkpoint    *Checkpoint                `json:"checkpoint,omitempty"`
	CredentialID  string                     `json:"credential_id,omitempty"`
	Decision      Decision                   `json:"decision,omitempty"`
	DecisionID    string                     `json:"decision_id,omitempty"`
	Extra         map[string]json.RawMessage `json:"extra,omitempty"`
	Hash          string                     `json:"hash,omitempty"`
	Kind          Kind                       `json:"kind"`
	Labels        []string                   `json:"labels,omitempty"`
	LatencyUS     int64                      `json:"latency_us,omitempty"`
	Masked        []string                   `json:"masked,omitempty"`
	Method        string                     `json:"method,omitempty"`
	PolicyVersion string                     `json:"policy_version,omitempty"`
}

type wireBeforeSeq struct {
	Principal string   `json:"principal,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	RequestID string   `json:"request_id,omitempty"`
	Rules     []string `json:"rules,omitempty"`
}

type wireAfterSeq struct {
	Session  string `json:"session,omitempty"`
	Shadow   bool   `json:"shadow,omitempty"`
	Status   string `json:"status,omitempty"`
	Task     string `json:"task,omitempty"`
	Time     string `json:"time"`
	Tool     string `json:"tool,omitempty"`
	Upstream string `json:"upstream,omitempty"`
	V        int    `json:"v"`
}

// encodedRecord is a record's canonical encoding without prev and seq: the
// members of the three parts around them, each without braces. The Log
// makes it in the caller's goroutine, so its single writer only splices in
// prev and seq and hashes.
type encodedRecord struct {
	beforePrev, beforeSeq, afterSeq []byte
}

func (r Record) encode() (encodedRecord, error) {
	w := r.wire()
	var e encodedRecord
	for _, p := range []struct {
		dst *[]byte
		v   any
	}{{&e.beforePrev, w.wireBeforePrev}, {&e.beforeSeq, w.wireBeforeSeq}, {&e.afterSeq, w.wireAfterSeq}} {
		b, err := json.Marshal(p.v)
		if err != nil {
			return e, fmt.Errorf("encode audit record %d: %w", r.Seq, err)
		}
		*p.dst = b[1 : len(b)-1] // members without the braces
	}
	return e, nil
}

// canonical assembles the encoding: encoding/json writes a struct as its
// members joined by commas inside braces, which is what this rebuilds.
func (e encodedRecord) canonical(prev string, seq uint64) []byte {
	b := make([]byte, 0, len(e.beforePrev)+len(e.beforeSeq)+len(e.afterSeq)+len(prev)+48)
	b = append(b, '{')
	b = append(b, e.beforePrev...) // never empty: kind is always present
	b = append(b, `,"prev":`...)
	b = appendJSONString(b, prev)
	if len(e.beforeSeq) > 0 {
		b = append(b, ',')
		b = append(b, e.beforeSeq...)
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ',')
	b = append(b, e.afterSeq...) // never empty: time and v are always present
	return append(b, '}')
}

// hash is the record's hash given its prev and seq.
func (e encodedRecord) hash(prev string, seq uint64) string {
	sum := sha256.Sum256(e.canonical(prev, seq))
	return hex.EncodeToString(sum[:])
}

// appendJSONString appends s as encoding/json encodes it. Prev is lowercase
// hex when the log wrote it; anything else (a tampered store) takes the
// general path.
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= '0' && c <= '9' || c >= 'a' && c <= 'z'
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// Canonical returns the record's canonical encoding, the bytes its hash is
// computed over (with Hash empty) and the form export writes. It is exactly
// what encoding/json's Marshal produces for the record, so a record embedded
// in any other JSON keeps its encoding:
//
//   - one JSON object, keys in byte-wise lexical order, no insignificant
//     whitespace, no trailing newline;
//   - v, seq, time, kind and prev always present; every other key omitted
//     when its value is empty, zero, false or nil; hash present when set;
//   - time in RFC 3339 with nanoseconds, UTC, trailing zeros of the fraction
//     dropped (Go's time.RFC3339Nano);
//   - strings escaped as encoding/json does by default: `"`, `\` and control
//     characters escaped, and <, >, &, U+2028 and U+2029 written as \u003c,
//     \u003e, \u0026, \u2028 and \u2029 (so a record pasted into HTML or a
//     script stays inert); everything else literal UTF-8;
//   - args and the values of extra as given by the caller with insignificant
//     whitespace removed and the same five characters escaped inside their
//     strings (key order inside them is kept); extra's keys sorted.
//
// The escaping is encoding/json's default rather than a choice to turn it
// off because Marshal re-escapes raw JSON values: an unescaped form would
// change whenever a record passed through an ordinary Marshal.
func (r Record) Canonical() ([]byte, error) {
	e, err := r.encode()
	if err != nil {
		return nil, err
	}
	return e.canonical(r.Prev, r.Seq), nil
}

// ComputeHash returns the hex SHA-256 of the canonical encoding of r without
// its hash: the value Hash must hold.
func (r Record) ComputeHash() (string, error) {
	r.Hash = ""
	e, err := r.encode()
	if err != nil {
		return "", err
	}
	return e.hash(r.Prev, r.Seq), nil
}

// MarshalJSON encodes the record in its canonical form.
func (r Record) MarshalJSON() ([]byte, error) { return r.Canonical() }

// UnmarshalJSON decodes a record written by MarshalJSON. Unknown keys are an
// error: additions belong in extra.
func (r *Record) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireRecord
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("decode audit record: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("decode audit record %d: time: %w", w.Seq, err)
	}
	*r = Record{
		V: w.V, Seq: w.Seq, Time: t.UTC(), Kind: w.Kind, RequestID: w.RequestID, DecisionID: w.DecisionID,
		Session: w.Session, Task: w.Task, Principal: w.Principal, Method: w.Method, Tool: w.Tool,
		Args: w.Args, Decision: w.Decision, Rules: w.Rules, Reason: w.Reason, PolicyVersion: w.PolicyVersion,
		ApprovalID: w.ApprovalID, CredentialID: w.CredentialID, Upstream: w.Upstream, LatencyUS: w.LatencyUS,
		Status: w.Status, Masked: w.Masked, Labels: w.Labels, Shadow: w.Shadow, Extra: w.Extra,
		Checkpoint: w.Checkpoint, Prev: w.Prev, Hash: w.Hash,
	}
	return nil
}

func (r Record) wire() wireRecord {
	return wireRecord{
		wireBeforePrev: wireBeforePrev{
			ApprovalID: r.ApprovalID, Args: r.Args, Checkpoint: r.Checkpoint, CredentialID: r.CredentialID,
			Decision: r.Decision, DecisionID: r.DecisionID, Extra: r.Extra, Hash: r.Hash, Kind: r.Kind,
			Labels: r.Labels, LatencyUS: r.LatencyUS, Masked: r.Masked, Method: r.Method, PolicyVersion: r.PolicyVersion,
		},
		Prev: r.Prev,
		wireBeforeSeq: wireBeforeSeq{
			Principal: r.Principal, Reason: r.Reason, RequestID: r.RequestID, Rules: r.Rules,
		},
		Seq: r.Seq,
		wireAfterSeq: wireAfterSeq{
			Session: r.Session, Shadow: r.Shadow, Status: r.Status, Task: r.Task,
			Time: r.Time.UTC().Format(time.RFC3339Nano), Tool: r.Tool, Upstream: r.Upstream, V: r.V,
		},
	}
}

// Clone returns a copy of r that shares no slices or maps with it.
func (r Record) Clone() Record {
	r.Args = cloneBytes(r.Args)
	r.Rules = cloneStrings(r.Rules)
	r.Masked = cloneStrings(r.Masked)
	r.Labels = cloneStrings(r.Labels)
	if r.Extra != nil {
		extra := make(map[string]json.RawMessage, len(r.Extra))
		for k, v := range r.Extra {
			extra[k] = cloneBytes(v)
		}
		r.Extra = extra
	}
	if r.Checkpoint != nil {
		cp := *r.Checkpoint
		r.Checkpoint = &cp
	}
	return r
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}

// Time bounds: records carry nanosecond Unix times, which int64 holds only
// from 1678 to 2262; anything outside this narrower range is a clock fault.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func checkTime(t time.Time) error {
	if t.Before(minTime) || !t.Before(maxTime) {
		return fmt.Errorf("%w: time %s out of range", errInvalidRecord, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// errInvalidRecord marks a record the caller must fix.
var errInvalidRecord = errors.New("invalid audit record")

// normalize checks a caller's record and puts it in the form the chain
// stores: a private copy, args and extra values compacted, JSON null args
// dropped, time in UTC without a monotonic reading.
func normalize(r Record) (Record, error) {
	r = r.Clone()
	if r.V == 0 {
		r.V = SchemaVersion
	}
	if r.V != SchemaVersion {
		return r, fmt.Errorf("%w: version %d, this log writes %d", errInvalidRecord, r.V, SchemaVersion)
	}
	if r.Seq != 0 || r.Prev != "" || r.Hash != "" {
		return r, fmt.Errorf("%w: seq, prev and hash are set by the log", errInvalidRecord)
	}
	if r.Kind == "" {
		return r, fmt.Errorf("%w: kind is empty", errInvalidRecord)
	}
	if r.Kind == KindCheckpoint || r.Checkpoint != nil {
		return r, fmt.Errorf("%w: checkpoints are written by the log only", errInvalidRecord)
	}
	if r.LatencyUS < 0 {
		return r, fmt.Errorf("%w: negative latency %d", errInvalidRecord, r.LatencyUS)
	}
	if !r.Time.IsZero() {
		if err := checkTime(r.Time); err != nil {
			return r, err
		}
		r.Time = r.Time.Round(0).UTC()
	}
	var err error
	if r.Args, err = compactJSON("args", r.Args); err != nil {
		return r, err
	}
	if len(r.Args) == 0 {
		r.Args = nil
	}
	for k, v := range r.Extra {
		if !utf8.ValidString(k) {
			return r, fmt.Errorf("%w: extra key is not valid UTF-8", errInvalidRecord)
		}
		c, err := compactJSON("extra."+k, v)
		if err != nil {
			return r, err
		}
		if len(c) == 0 {
			c = json.RawMessage("null")
		}
		r.Extra[k] = c
	}
	if len(r.Extra) == 0 {
		r.Extra = nil
	}
	for name, s := range map[string]string{
		"kind": string(r.Kind), "request_id": r.RequestID, "decision_id": r.DecisionID, "session": r.Session,
		"task": r.Task, "principal": r.Principal, "method": r.Method, "tool": r.Tool, "decision": string(r.Decision),
		"reason": r.Reason, "policy_version": r.PolicyVersion, "approval_id": r.ApprovalID,
		"credential_id": r.CredentialID, "upstream": r.Upstream, "status": r.Status,
	} {
		if !utf8.ValidString(s) {
			return r, fmt.Errorf("%w: %s is not valid UTF-8", errInvalidRecord, name)
		}
	}
	for name, list := range map[string][]string{"rules": r.Rules, "masked": r.Masked, "labels": r.Labels} {
		for _, s := range list {
			if !utf8.ValidString(s) {
				return r, fmt.Errorf("%w: an entry of %s is not valid UTF-8", errInvalidRecord, name)
			}
		}
	}
	return r, nil
}

// compactJSON validates a JSON value and puts it in canonical form: no
// insignificant whitespace, <, >, &, U+2028 and U+2029 escaped in strings.
// An empty value or JSON null yields nil.
func compactJSON(field string, v json.RawMessage) (json.RawMessage, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if !utf8.Valid(v) || !json.Valid(v) {
		return nil, fmt.Errorf("%w: %s is not valid UTF-8 JSON", errInvalidRecord, field)
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, v); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errInvalidRecord, field, err)
	}
	if compact.String() == "null" {
		return nil, nil
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return escaped.Bytes(), nil
}
