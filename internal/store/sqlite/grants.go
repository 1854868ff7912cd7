package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wardenmcp/warden/internal/grant"
)

// GrantStore is the grant.Store kept in the database's grants table. Every
// change runs in one immediate transaction, so Consume's check and charge
// are atomic across processes sharing the file, and the rate limiter's
// state is a column: limits survive a restart.
type GrantStore struct {
	db *DB
}

var _ grant.Store = (*GrantStore)(nil)

// Grants returns the database's grant store.
func (d *DB) Grants() *GrantStore { return &GrantStore{db: d} }

const grantColumns = `id, principal, tools, scope, budget, rate, expires_ns, created_ns, revoked_ns,
	parent, depth, labels, used, secret_hash, rate_tat_ns`

// Create implements grant.Store.
func (s *GrantStore) Create(ctx context.Context, g grant.Grant) error {
	if err := grant.CheckStorable(g); err != nil {
		return err
	}
	g = grant.Normalize(g)
	tools, err := json.Marshal(g.Tools)
	if err != nil {
		return fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	scope, err := jsonColumn(g.Scope, len(g.Scope) == 0)
	if err != nil {
		return fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	labels, err := jsonColumn(g.Labels, len(g.Labels) == 0)
	if err != nil {
		return fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	return s.db.inTx(ctx, "create grant "+g.ID, func(tx *sql.Tx) error {
		switch found, err := exists(ctx, tx, "grants", g.ID); {
		case err != nil:
			return err
		case found:
			return grant.ErrExists
		}
		var parent any
		if g.Parent != "" {
			switch found, err := exists(ctx, tx, "grants", g.Parent); {
			case err != nil:
				return err
			case !found:
				return fmt.Errorf("parent %s: %w", g.Parent, grant.ErrUnknown)
			}
			parent = g.Parent
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			g.ID, g.Principal, string(tools), scope, g.Budget, g.Rate, nanos(g.ExpiresAt), nanos(g.CreatedAt),
			nullNanos(g.RevokedAt), parent, g.Depth, labels, g.Used, g.SecretHash, nanos(g.RateTAT))
		return err
	})
}

// Get implements grant.Store.
func (s *GrantStore) Get(ctx context.Context, id string) (grant.Grant, error) {
	g, err := getGrant(ctx, s.db.sql, id)
	if err != nil {
		return grant.Grant{}, fmt.Errorf("read grant %q: %w", id, err)
	}
	return g, nil
}

// List implements grant.Store.
func (s *GrantStore) List(ctx context.Context, f grant.ListFilter) ([]grant.Grant, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, err
	}
	q, args := `SELECT `+grantColumns+` FROM grants`, []any{}
	if f.Principal != "" {
		q += ` WHERE principal = ?`
		args = append(args, f.Principal)
	}
	q += ` ORDER BY rowid LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	out, err := collect(rows, scanGrant)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return out, nil
}

// Revoke implements grant.Store.
func (s *GrantStore) Revoke(ctx context.Context, id string, now time.Time) (grant.Grant, error) {
	var out grant.Grant
	err := s.db.inTx(ctx, "revoke grant "+id, func(tx *sql.Tx) error {
		g, err := getGrant(ctx, tx, id)
		if err != nil {
			return err
		}
		if g.RevokedAt.IsZero() {
			g.RevokedAt = grant.Timestamp(now)
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_ns = ? WHERE id = ?`, nanos(g.RevokedAt), id); err != nil {
				return err
			}
		}
		out = g
		return nil
	})
	return out, err
}

// Consume implements grant.Store.
func (s *GrantStore) Consume(ctx context.Context, id string, now time.Time) (grant.Grant, error) {
	var out grant.Grant
	err := s.db.inTx(ctx, "consume grant "+id, func(tx *sql.Tx) error {
		chain, err := getChain(ctx, tx, id)
		if err != nil {
			return err
		}
		leaf, updated, err := grant.ConsumeChain(chain, now)
		if err != nil {
			return err
		}
		for _, g := range updated {
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET used = ?, rate_tat_ns = ? WHERE id = ?`,
				g.Used, nanos(g.RateTAT), g.ID); err != nil {
				return err
			}
		}
		out = leaf
		return nil
	})
	return out, err
}

// AddLabels implements grant.Store.
func (s *GrantStore) AddLabels(ctx context.Context, id string, labels ...string) (grant.Grant, error) {
	var out grant.Grant
	err := s.db.inTx(ctx, "label grant "+id, func(tx *sql.Tx) error {
		chain, err := getChain(ctx, tx, id)
		if err != nil {
			return err
		}
		for i, g := range chain {
			g, err := grant.WithLabels(g, labels)
			if err != nil {
				return err
			}
			if i == 0 {
				out = g
			}
			col, err := jsonColumn(g.Labels, len(g.Labels) == 0)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE grants SET labels = ? WHERE id = ?`, col, g.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getGrant(ctx context.Context, q queryer, id string) (grant.Grant, error) {
	g, err := scanGrant(q.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return grant.Grant{}, grant.ErrUnknown
	}
	return g, err
}

// getChain reads id's grant and its ancestors, leaf first.
func getChain(ctx context.Context, q queryer, id string) ([]grant.Grant, error) {
	var chain []grant.Grant
	for next := id; next != "" && len(chain) <= grant.MaxDepth; {
		g, err := getGrant(ctx, q, next)
		if err != nil {
			return nil, fmt.Errorf("grant %q: %w", next, err)
		}
		chain = append(chain, g)
		next = g.Parent
	}
	return chain, nil
}

func scanGrant(row rowScanner) (grant.Grant, error) {
	var (
		g                         grant.Grant
		tools                     string
		scope, labels, parent     sql.NullString
		expires, created, rateTAT int64
		revoked                   sql.NullInt64
	)
	if err := row.Scan(&g.ID, &g.Principal, &tools, &scope, &g.Budget, &g.Rate, &expires, &created, &revoked,
		&parent, &g.Depth, &labels, &g.Used, &g.SecretHash, &rateTAT); err != nil {
		return grant.Grant{}, err
	}
	if err := json.Unmarshal([]byte(tools), &g.Tools); err != nil {
		return grant.Grant{}, fmt.Errorf("grant %s: column tools: %w", g.ID, err)
	}
	if scope.Valid {
		if err := json.Unmarshal([]byte(scope.String), &g.Scope); err != nil {
			return grant.Grant{}, fmt.Errorf("grant %s: column scope: %w", g.ID, err)
		}
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &g.Labels); err != nil {
			return grant.Grant{}, fmt.Errorf("grant %s: column labels: %w", g.ID, err)
		}
	}
	g.Parent = parent.String
	g.ExpiresAt, g.CreatedAt, g.RateTAT = fromNanos(expires), fromNanos(created), fromNanos(rateTAT)
	g.RevokedAt = fromNanos(revoked.Int64)
	return grant.Normalize(g), nil
}
