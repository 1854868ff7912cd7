package sqlite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/wardenmcp/warden/internal/audit"
)

// AuditStore is the audit.Store kept in the database's audit_records and
// audit_keys tables.
type AuditStore struct {
	db *DB

	mu       sync.Mutex
	prepared map[string]*sql.Stmt // the statements Append runs, by text
}

// Audit returns the database's audit store.
func (d *DB) Audit() *AuditStore { return d.audit }

// stmt returns query prepared on the pool, preparing it once: Append runs
// the same few statements for every batch, and parsing SQL costs more than
// running them.
func (s *AuditStore) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stmt, ok := s.prepared[query]; ok {
		return stmt, nil
	}
	stmt, err := s.db.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.prepared == nil {
		s.prepared = map[string]*sql.Stmt{}
	}
	s.prepared[query] = stmt
	return stmt, nil
}

var _ audit.Store = (*AuditStore)(nil)

const auditColumns = `seq, v, time_ns, kind, request_id, decision_id, session, task, principal, method, tool,
	args, decision, rules, reason, policy_version, approval_id, credential_id, upstream, latency_us, status,
	masked, labels, shadow, extra, checkpoint, prev, hash`

// chunkRows returns how many of n records the next INSERT carries: 64, 16,
// 4 or 1, the largest that fits. Multi-row statements mean fewer executions
// per transaction; 64 rows stay well under SQLite's bound-parameter limit.
func chunkRows(n int) int {
	switch {
	case n >= 64:
		return 64
	case n >= 16:
		return 16
	case n >= 4:
		return 4
	}
	return 1
}

const columnsPerRecord = 28

// Append implements audit.Store: one immediate transaction that checks the
// batch continues the stored chain, inserts it and commits (fsynced, see the
// package comment).
func (s *AuditStore) Append(ctx context.Context, records []audit.Record) (err error) {
	tx, err := s.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append audit records: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var last *audit.Record
	var seq int64
	var hash string
	head, err := s.stmt(ctx, `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return fmt.Errorf("append audit records: %w", err)
	}
	switch err := tx.StmtContext(ctx, head).QueryRowContext(ctx).Scan(&seq, &hash); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("append audit records: read head: %w", err)
	default:
		last = &audit.Record{Seq: uint64(seq), Hash: hash}
	}
	if err := audit.CheckContinues(last, records); err != nil {
		return err
	}
	args := make([]any, 0, chunkRows(len(records))*columnsPerRecord)
	for rest := records; len(rest) > 0; {
		rows := chunkRows(len(rest))
		chunk := rest[:rows]
		rest = rest[rows:]
		args = args[:0]
		for i := range chunk {
			if args, err = appendRecordArgs(args, &chunk[i]); err != nil {
				return fmt.Errorf("append audit record %d: %w", chunk[i].Seq, err)
			}
		}
		stmt, err := s.stmt(ctx, insertSQLs[rows])
		if err != nil {
			return fmt.Errorf("append audit records: %w", err)
		}
		// A statement prepared on the pool; tx reuses it on its connection.
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("append audit records %d-%d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append audit records: commit: %w", err)
	}
	return nil
}

// insertSQLs are the INSERTs of each chunkRows size.
var insertSQLs = map[int]string{1: insertSQL(1), 4: insertSQL(4), 16: insertSQL(16), 64: insertSQL(64)}

func insertSQL(rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", columnsPerRecord), ",") + ")"
	return "INSERT INTO audit_records (" + auditColumns + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

func appendRecordArgs(args []any, r *audit.Record) ([]any, error) {
	if r.Seq > math.MaxInt64 {
		return args, errors.New("seq too large for the database")
	}
	rules, err := jsonColumn(r.Rules, len(r.Rules) == 0)
	if err != nil {
		return args, err
	}
	masked, err := jsonColumn(r.Masked, len(r.Masked) == 0)
	if err != nil {
		return args, err
	}
	labels, err := jsonColumn(r.Labels, len(r.Labels) == 0)
	if err != nil {
		return args, err
	}
	extra, err := jsonColumn(r.Extra, len(r.Extra) == 0)
	if err != nil {
		return args, err
	}
	checkpoint, err := jsonColumn(r.Checkpoint, r.Checkpoint == nil)
	if err != nil {
		return args, err
	}
	var rawArgs any
	if len(r.Args) > 0 {
		rawArgs = string(r.Args)
	}
	return append(args, int64(r.Seq), r.V, r.Time.UnixNano(), string(r.Kind), r.RequestID, r.DecisionID,
		r.Session, r.Task, r.Principal, r.Method, r.Tool, rawArgs, string(r.Decision), rules, r.Reason,
		r.PolicyVersion, r.ApprovalID, r.CredentialID, r.Upstream, r.LatencyUS, r.Status, masked, labels,
		r.Shadow, extra, checkpoint, r.Prev, r.Hash), nil
}

// Last implements audit.Store.
func (s *AuditStore) Last(ctx context.Context) (audit.Record, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_records ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return audit.Record{}, fmt.Errorf("read last audit record: %w", err)
	}
	records, err := scanRecords(rows, 1)
	if err != nil {
		return audit.Record{}, fmt.Errorf("read last audit record: %w", err)
	}
	if len(records) == 0 {
		return audit.Record{}, audit.ErrNoRecords
	}
	return records[0], nil
}

// Query implements audit.Store.
func (s *AuditStore) Query(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Principal != "" {
		add("principal = ?", f.Principal)
	}
	if f.Tool != "" {
		add("tool = ?", f.Tool)
	}
	if f.Decision != "" {
		add("decision = ?", string(f.Decision))
	}
	if f.Kind != "" {
		add("kind = ?", string(f.Kind))
	}
	if !f.Since.IsZero() {
		add("time_ns >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("time_ns < ?", nanos(f.Until))
	}
	if f.AfterSeq > 0 {
		add("seq > ?", int64(min(f.AfterSeq, math.MaxInt64)))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_records`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Newest {
		q += " ORDER BY seq DESC"
	} else {
		q += " ORDER BY seq ASC"
	}
	q += " LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit records: %w", err)
	}
	records, err := scanRecords(rows, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("query audit records: %w", err)
	}
	return records, nil
}

func scanRecords(rows *sql.Rows, capacity int) ([]audit.Record, error) {
	defer rows.Close()
	out := make([]audit.Record, 0, min(capacity, 1024))
	for rows.Next() {
		var (
			r                                      audit.Record
			seq, timeNS                            int64
			kind, decision                         string
			args, rules, masked, labels, extra, cp sql.NullString
		)
		if err := rows.Scan(&seq, &r.V, &timeNS, &kind, &r.RequestID, &r.DecisionID, &r.Session, &r.Task,
			&r.Principal, &r.Method, &r.Tool, &args, &decision, &rules, &r.Reason, &r.PolicyVersion,
			&r.ApprovalID, &r.CredentialID, &r.Upstream, &r.LatencyUS, &r.Status, &masked, &labels,
			&r.Shadow, &extra, &cp, &r.Prev, &r.Hash); err != nil {
			return nil, err
		}
		if seq < 0 {
			return nil, &audit.CorruptRecordError{Seq: 0, Err: fmt.Errorf("negative seq %d", seq)}
		}
		r.Seq = uint64(seq)
		r.Time = time.Unix(0, timeNS).UTC()
		r.Kind, r.Decision = audit.Kind(kind), audit.Decision(decision)
		if args.Valid {
			r.Args = json.RawMessage(args.String)
		}
		for _, c := range []struct {
			name string
			col  sql.NullString
			dst  any
		}{
			{"rules", rules, &r.Rules}, {"masked", masked, &r.Masked}, {"labels", labels, &r.Labels},
			{"extra", extra, &r.Extra}, {"checkpoint", cp, &r.Checkpoint},
		} {
			if !c.col.Valid {
				continue
			}
			if err := json.Unmarshal([]byte(c.col.String), c.dst); err != nil {
				return nil, &audit.CorruptRecordError{Seq: r.Seq, Err: fmt.Errorf("column %s: %w", c.name, err)}
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutKey implements audit.Store.
func (s *AuditStore) PutKey(ctx context.Context, keyID string, pub ed25519.PublicKey) error {
	if keyID == "" || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("audit key %q: need an id and a %d-byte Ed25519 public key", keyID, ed25519.PublicKeySize)
	}
	return s.db.inTx(ctx, fmt.Sprintf("record audit key %q", keyID), func(tx *sql.Tx) error {
		var stored []byte
		switch err := tx.QueryRowContext(ctx, `SELECT public_key FROM audit_keys WHERE key_id = ?`, keyID).Scan(&stored); {
		case errors.Is(err, sql.ErrNoRows):
			_, err := tx.ExecContext(ctx, `INSERT INTO audit_keys (key_id, public_key, created_ns) VALUES (?, ?, ?)`,
				keyID, []byte(pub), time.Now().UnixNano())
			return err
		case err != nil:
			return err
		case !bytes.Equal(stored, pub):
			return errors.New("already recorded with a different public key")
		}
		return nil
	})
}

// Keys implements audit.Store.
func (s *AuditStore) Keys(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	rows, err := s.db.sql.QueryContext(ctx, `SELECT key_id, public_key FROM audit_keys`)
	if err != nil {
		return nil, fmt.Errorf("read audit keys: %w", err)
	}
	defer rows.Close()
	out := map[string]ed25519.PublicKey{}
	for rows.Next() {
		var id string
		var pub []byte
		if err := rows.Scan(&id, &pub); err != nil {
			return nil, fmt.Errorf("read audit keys: %w", err)
		}
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit key %q: stored key has %d bytes", id, len(pub))
		}
		out[id] = ed25519.PublicKey(pub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit keys: %w", err)
	}
	return out, nil
}
