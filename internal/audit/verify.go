package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ProblemKind says what is wrong with a record.
type ProblemKind string

// What Verify can find wrong, per record.
const (
	// ProblemSeqGap: records are missing before this seq (deleted).
	ProblemSeqGap ProblemKind = "seq_gap"
	// ProblemBadRecord: the record cannot be checked (unknown version, a
	// checkpoint field on a record that is not a checkpoint).
	ProblemBadRecord ProblemKind = "bad_record"
	// ProblemHashMismatch: the record's content does not match its hash
	// (edited, or moved to another seq).
	ProblemHashMismatch ProblemKind = "hash_mismatch"
	// ProblemPrevMismatch: the record does not link to the one before it
	// (a record before it was removed, inserted or reordered).
	ProblemPrevMismatch ProblemKind = "prev_mismatch"
	// ProblemBadCheckpoint: a checkpoint does not describe the chain before it.
	ProblemBadCheckpoint ProblemKind = "bad_checkpoint"
	// ProblemUnknownKey: a checkpoint is signed by a key Verify was not given.
	ProblemUnknownKey ProblemKind = "unknown_key"
	// ProblemBadSignature: a checkpoint's signature does not verify (forged).
	ProblemBadSignature ProblemKind = "bad_signature"
)

// Problem is the first broken record Verify found.
type Problem struct {
	Seq    uint64      // the first seq that is wrong (for a gap: the first missing one)
	Kind   ProblemKind // what is wrong
	Detail string      // for a person
}

func (p Problem) String() string { return fmt.Sprintf("record %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// Report is what Verify found.
type Report struct {
	Records           uint64   // records checked, checkpoints included
	Checkpoints       uint64   // valid checkpoints among them
	HeadSeq           uint64   // seq of the last record checked
	HeadHash          string   // hash of the last record checked
	LastCheckpointSeq uint64   // seq of the last valid checkpoint; 0 if none
	Unsigned          uint64   // records after the last checkpoint, protected by the chain only
	Problem           *Problem // the first broken record; nil when the chain is intact
}

// OK reports whether the chain verified.
func (r Report) OK() bool { return r.Problem == nil }

// verifyPage is how many records Verify reads per query.
const verifyPage = 5000

// Verify walks the whole chain in store and reports the first record that is
// wrong. Checkpoint signatures are checked against pub when it is given (a
// key kept apart from the database: the strong check), otherwise against the
// keys recorded in the store, which proves the chain consistent but not who
// wrote it. An error means the store could not be read, not that the chain is
// broken. Records after the last checkpoint cannot be proven complete: the
// report counts them in Unsigned.
func Verify(ctx context.Context, store Store, pub ed25519.PublicKey) (Report, error) {
	var keys map[string]ed25519.PublicKey
	if pub != nil {
		if len(pub) != ed25519.PublicKeySize {
			return Report{}, fmt.Errorf("verify: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
		}
		keys = map[string]ed25519.PublicKey{KeyID(pub): pub}
	} else {
		var err error
		if keys, err = store.Keys(ctx); err != nil {
			return Report{}, fmt.Errorf("verify: read keys: %w", err)
		}
	}
	rep := Report{HeadHash: GenesisHash}
	for {
		page, err := store.Query(ctx, Filter{AfterSeq: rep.HeadSeq, Limit: verifyPage})
		var corrupt *CorruptRecordError
		if errors.As(err, &corrupt) && corrupt.Seq > rep.HeadSeq {
			return verifyBefore(ctx, store, keys, rep, corrupt)
		}
		if err != nil {
			return rep, fmt.Errorf("verify: read records after %d: %w", rep.HeadSeq, err)
		}
		if rep.check(page, keys); rep.Problem != nil {
			return rep, nil
		}
		if len(page) < verifyPage {
			break
		}
	}
	rep.Unsigned = rep.HeadSeq - rep.LastCheckpointSeq
	return rep, nil
}

// verifyBefore finishes a walk that met a record the store cannot decode:
// the records before it are checked first, since the first problem may lie
// among them.
func verifyBefore(ctx context.Context, store Store, keys map[string]ed25519.PublicKey, rep Report, corrupt *CorruptRecordError) (Report, error) {
	for rep.HeadSeq+1 < corrupt.Seq {
		n := min(corrupt.Seq-rep.HeadSeq-1, verifyPage)
		page, err := store.Query(ctx, Filter{AfterSeq: rep.HeadSeq, Limit: int(n)})
		if err != nil {
			return rep, fmt.Errorf("verify: read records after %d: %w", rep.HeadSeq, err)
		}
		if rep.check(page, keys); rep.Problem != nil || len(page) == 0 {
			break
		}
	}
	if rep.Problem == nil {
		rep.Problem = checkSeq(rep.HeadSeq, corrupt.Seq)
	}
	if rep.Problem == nil {
		rep.Problem = &Problem{Seq: corrupt.Seq, Kind: ProblemBadRecord, Detail: corrupt.Err.Error()}
	}
	return rep, nil
}

// check checks page as the continuation of what rep has verified, stopping
// at the first problem.
func (rep *Report) check(page []Record, keys map[string]ed25519.PublicKey) {
	for _, r := range page {
		if p := checkRecord(rep.HeadSeq, rep.HeadHash, r, keys); p != nil {
			rep.Problem = p
			return
		}
		rep.Records++
		rep.HeadSeq, rep.HeadHash = r.Seq, r.Hash
		if r.Kind == KindCheckpoint {
			rep.Checkpoints++
			rep.LastCheckpointSeq = r.Seq
		}
	}
}

// checkSeq reports a gap between seq and the next stored record's seq.
func checkSeq(seq, next uint64) *Problem {
	if next == seq+1 {
		return nil
	}
	return &Problem{Seq: seq + 1, Kind: ProblemSeqGap,
		Detail: fmt.Sprintf("records %d to %d are missing (the next stored record is %d)", seq+1, next-1, next)}
}

// checkRecord checks r as the successor of the record (seq, hash).
func checkRecord(seq uint64, hash string, r Record, keys map[string]ed25519.PublicKey) *Problem {
	if p := checkSeq(seq, r.Seq); p != nil {
		return p
	}
	if r.V != SchemaVersion {
		return &Problem{Seq: r.Seq, Kind: ProblemBadRecord, Detail: fmt.Sprintf("unknown schema version %d", r.V)}
	}
	got, err := r.ComputeHash()
	if err != nil {
		return &Problem{Seq: r.Seq, Kind: ProblemBadRecord, Detail: err.Error()}
	}
	if got != r.Hash {
		return &Problem{Seq: r.Seq, Kind: ProblemHashMismatch,
			Detail: fmt.Sprintf("content hashes to %s but the record says %s: it was edited or moved", got, r.Hash)}
	}
	if r.Prev != hash {
		return &Problem{Seq: r.Seq, Kind: ProblemPrevMismatch,
			Detail: fmt.Sprintf("prev is %s but record %d hashes to %s: a record before it was removed, inserted or reordered", r.Prev, seq, hash)}
	}
	if r.Kind != KindCheckpoint {
		if r.Checkpoint != nil {
			return &Problem{Seq: r.Seq, Kind: ProblemBadRecord, Detail: fmt.Sprintf("a %q record carries a checkpoint", r.Kind)}
		}
		return nil
	}
	cp := r.Checkpoint
	if cp == nil {
		return &Problem{Seq: r.Seq, Kind: ProblemBadCheckpoint, Detail: "checkpoint record without a checkpoint"}
	}
	if cp.HeadSeq != seq || cp.Head != hash {
		return &Problem{Seq: r.Seq, Kind: ProblemBadCheckpoint,
			Detail: fmt.Sprintf("checkpoint names head %d %s, the chain before it ends at %d %s", cp.HeadSeq, cp.Head, seq, hash)}
	}
	pub, ok := keys[cp.KeyID]
	if !ok {
		return &Problem{Seq: r.Seq, Kind: ProblemUnknownKey, Detail: fmt.Sprintf("checkpoint is signed by key %q, which is not trusted", cp.KeyID)}
	}
	sig, err := hex.DecodeString(cp.Sig)
	if err != nil || !ed25519.Verify(pub, CheckpointMessage(cp.HeadSeq, cp.Head, r.Time), sig) {
		return &Problem{Seq: r.Seq, Kind: ProblemBadSignature, Detail: fmt.Sprintf("checkpoint signature does not verify with key %q: it was forged", cp.KeyID)}
	}
	return nil
}

// WriteReport writes rep for a person, one fact per line.
func WriteReport(w io.Writer, rep Report) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	if rep.Problem != nil {
		p("FAILED: %s\n", rep.Problem)
		p("verified before the failure: %d records, %d checkpoints, up to seq %d\n", rep.Records, rep.Checkpoints, rep.HeadSeq)
		return err
	}
	p("OK: %d records, %d checkpoints, head seq %d hash %s\n", rep.Records, rep.Checkpoints, rep.HeadSeq, rep.HeadHash)
	if rep.Unsigned > 0 {
		p("note: the last %d records follow the last checkpoint (seq %d): removing them from the end would not be detected\n", rep.Unsigned, rep.LastCheckpointSeq)
	}
	return err
}
