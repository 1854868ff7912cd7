package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardenmcp/warden/internal/approval"
)

// ApprovalStore is the approval.Store kept in the database's approvals
// table. Decide and MarkUsed read and write in one immediate transaction,
// so a request is decided once and used once across every process sharing
// the file.
type ApprovalStore struct {
	db *DB
}

var _ approval.Store = (*ApprovalStore)(nil)

// Approvals returns the database's approval store.
func (d *DB) Approvals() *ApprovalStore { return &ApprovalStore{db: d} }

const approvalColumns = `id, principal, task, tool, upstream, args, args_digest, policy_version, rules, reason,
	approvers, state, created_ns, expires_ns, decided_ns, decided_by, comment, used_ns, owner`

// Create implements approval.Store.
func (s *ApprovalStore) Create(ctx context.Context, r approval.Request) error {
	if err := approval.Check(r); err != nil {
		return err
	}
	r = approval.Normalize(r)
	rules, err := jsonColumn(r.Rules, len(r.Rules) == 0)
	if err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	approvers, err := jsonColumn(r.Approvers, len(r.Approvers) == 0)
	if err != nil {
		return fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	return s.db.inTx(ctx, "create approval "+r.ID, func(tx *sql.Tx) error {
		switch found, err := exists(ctx, tx, "approvals", r.ID); {
		case err != nil:
			return err
		case found:
			return approval.ErrExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO approvals (`+approvalColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.Principal, r.Task, r.Tool, r.Upstream, blob(r.Args), r.ArgsDigest, r.PolicyVersion, rules, r.Reason,
			approvers, string(r.State), nanos(r.CreatedAt), nanos(r.ExpiresAt), nullNanos(r.DecidedAt), r.DecidedBy,
			r.Comment, nullNanos(r.UsedAt), r.Owner)
		return err
	})
}

// Get implements approval.Store.
func (s *ApprovalStore) Get(ctx context.Context, id string) (approval.Request, error) {
	r, err := getApproval(ctx, s.db.sql, id)
	if err != nil {
		return approval.Request{}, fmt.Errorf("read approval %q: %w", id, err)
	}
	return r, nil
}

// List implements approval.Store.
func (s *ApprovalStore) List(ctx context.Context, f approval.Filter) ([]approval.Request, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, err
	}
	q, args := `SELECT `+approvalColumns+` FROM approvals WHERE 1=1`, []any{}
	if f.Principal != "" {
		q += ` AND principal = ?`
		args = append(args, f.Principal)
	}
	if f.State != "" {
		// Pending past its expiry reads as expired.
		switch {
		case f.Now.IsZero():
			q += ` AND state = ?`
			args = append(args, string(f.State))
		case f.State == approval.StatePending:
			q += ` AND state = 'pending' AND expires_ns > ?`
			args = append(args, nanos(f.Now))
		case f.State == approval.StateExpired:
			q += ` AND (state = 'expired' OR (state = 'pending' AND expires_ns <= ?))`
			args = append(args, nanos(f.Now))
		default:
			q += ` AND state = ?`
			args = append(args, string(f.State))
		}
	}
	q += ` ORDER BY created_ns DESC, rowid DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	out, err := collect(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return out, nil
}

// Decide implements approval.Store.
func (s *ApprovalStore) Decide(ctx context.Context, id string, approve bool, by, comment string, now time.Time) (approval.Request, error) {
	var out approval.Request
	err := s.db.inTx(ctx, "decide approval "+id, func(tx *sql.Tx) error {
		r, err := getApproval(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := approval.CheckDecision(r, by, comment, now); err != nil {
			return err
		}
		r = approval.Decided(r, approve, by, comment, now)
		if _, err := tx.ExecContext(ctx, `UPDATE approvals SET state = ?, decided_ns = ?, decided_by = ?, comment = ? WHERE id = ?`,
			string(r.State), nanos(r.DecidedAt), r.DecidedBy, r.Comment, id); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// FindPending implements approval.Store.
func (s *ApprovalStore) FindPending(ctx context.Context, b approval.Binding, now time.Time) (approval.Request, error) {
	return s.find(ctx, b, `state = 'pending' AND expires_ns > ?`, nanos(now))
}

// FindUsable implements approval.Store.
func (s *ApprovalStore) FindUsable(ctx context.Context, b approval.Binding, now time.Time) (approval.Request, error) {
	return s.find(ctx, b, `state = 'approved' AND expires_ns > ?`, nanos(now))
}

func (s *ApprovalStore) find(ctx context.Context, b approval.Binding, cond string, args ...any) (approval.Request, error) {
	q := `SELECT ` + approvalColumns + ` FROM approvals
		WHERE principal = ? AND owner = ? AND task = ? AND tool = ? AND args_digest = ? AND policy_version = ? AND ` + cond +
		` ORDER BY created_ns DESC, rowid DESC LIMIT 1`
	r, err := scanApproval(s.db.sql.QueryRowContext(ctx, q,
		append([]any{b.Principal, b.Owner, b.Task, b.Tool, b.ArgsDigest, b.PolicyVersion}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return approval.Request{}, fmt.Errorf("find approval for %s: %w", b.Tool, approval.ErrUnknown)
	}
	if err != nil {
		return approval.Request{}, fmt.Errorf("find approval for %s: %w", b.Tool, err)
	}
	return r, nil
}

// MarkUsed implements approval.Store.
func (s *ApprovalStore) MarkUsed(ctx context.Context, id string, now time.Time) (approval.Request, error) {
	var out approval.Request
	err := s.db.inTx(ctx, "use approval "+id, func(tx *sql.Tx) error {
		r, err := getApproval(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := approval.CheckUsable(r, now); err != nil {
			return err
		}
		r.State, r.UsedAt = approval.StateUsed, approval.Timestamp(now)
		// The state condition makes the update itself the single-use
		// check, whatever isolation the transaction gets.
		res, err := tx.ExecContext(ctx, `UPDATE approvals SET state = 'used', used_ns = ? WHERE id = ? AND state = 'approved'`,
			nanos(r.UsedAt), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("request %s: %w", id, approval.ErrNotUsable)
		}
		out = r
		return nil
	})
	return out, err
}

func getApproval(ctx context.Context, q queryer, id string) (approval.Request, error) {
	r, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return approval.Request{}, approval.ErrUnknown
	}
	return r, err
}

func scanApproval(row rowScanner) (approval.Request, error) {
	var (
		r                 approval.Request
		args              []byte
		rules, approvers  sql.NullString
		state             string
		created, expires  int64
		decided, usedNano sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.Principal, &r.Task, &r.Tool, &r.Upstream, &args, &r.ArgsDigest, &r.PolicyVersion,
		&rules, &r.Reason, &approvers, &state, &created, &expires, &decided, &r.DecidedBy, &r.Comment, &usedNano, &r.Owner); err != nil {
		return approval.Request{}, err
	}
	if len(args) > 0 {
		r.Args = json.RawMessage(args)
	}
	if rules.Valid {
		if err := json.Unmarshal([]byte(rules.String), &r.Rules); err != nil {
			return approval.Request{}, fmt.Errorf("approval %s: column rules: %w", r.ID, err)
		}
	}
	if approvers.Valid {
		if err := json.Unmarshal([]byte(approvers.String), &r.Approvers); err != nil {
			return approval.Request{}, fmt.Errorf("approval %s: column approvers: %w", r.ID, err)
		}
	}
	r.State = approval.State(state)
	r.CreatedAt, r.ExpiresAt = fromNanos(created), fromNanos(expires)
	r.DecidedAt, r.UsedAt = fromNanos(decided.Int64), fromNanos(usedNano.Int64)
	return approval.Normalize(r), nil
}
