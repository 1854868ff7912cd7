package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DefaultTokenTTL is how long a masking token resolves when TokenOptions
// sets no TTL.
const DefaultTokenTTL = 24 * time.Hour

// TokenOptions configures a TokenStore.
type TokenOptions struct {
	// TTL is how long a token resolves after it is issued. Zero means
	// DefaultTokenTTL.
	TTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// TokenStore keeps the reversible tokens that masking puts in results
// (table mask_tokens): the value a token replaced, the principal and task
// it was issued to, and when it expires. A token resolves only for the
// same principal and task, and only until it expires.
type TokenStore struct {
	db  *DB
	ttl time.Duration
	now func() time.Time
}

var errNoPrincipal = errors.New("token store: a token must be issued to a principal")

// NewTokenStore returns the database's token store.
func NewTokenStore(db *DB, opts TokenOptions) (*TokenStore, error) {
	if db == nil {
		return nil, errors.New("token store: nil database")
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("token store: negative TTL %s", opts.TTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &TokenStore{db: db, ttl: opts.TTL, now: opts.Now}, nil
}

// Put makes the store a masking token sink, and always fails: a token has
// no owner without PutToken, which the gateway calls instead. A failing
// sink makes the masker redact the value.
func (s *TokenStore) Put(token, class, value string) error { return errNoPrincipal }

// PutToken records that token replaced value (of class) in a result given
// to principal within task. A token is recorded once: reusing one fails.
func (s *TokenStore) PutToken(ctx context.Context, token, class, value, principal, task string) error {
	if principal == "" {
		return errNoPrincipal
	}
	if token == "" || class == "" {
		return errors.New("token store: empty token or class")
	}
	now := s.now()
	_, err := s.db.sql.ExecContext(ctx,
		`INSERT INTO mask_tokens (token, class, value, task, principal, created_ns, expires_ns) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		token, class, value, task, principal, now.UnixNano(), now.Add(s.ttl).UnixNano())
	if err != nil {
		return fmt.Errorf("token store: record token: %w", err)
	}
	return nil
}

// Resolve returns the value a token replaced, if the token was issued to
// principal within task and has not expired; ok is false otherwise (an
// unknown token, another principal's or task's, an expired one), without
// saying which.
func (s *TokenStore) Resolve(ctx context.Context, token, principal, task string) (value string, ok bool, err error) {
	if principal == "" {
		return "", false, nil
	}
	err = s.db.sql.QueryRowContext(ctx,
		`SELECT value FROM mask_tokens WHERE token = ? AND principal = ? AND task = ? AND expires_ns > ?`,
		token, principal, task, s.now().UnixNano()).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("token store: resolve token: %w", err)
	}
	return value, true, nil
}

// DeleteExpired removes expired tokens and reports how many.
func (s *TokenStore) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.sql.ExecContext(ctx, `DELETE FROM mask_tokens WHERE expires_ns <= ?`, s.now().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("token store: delete expired tokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("token store: delete expired tokens: %w", err)
	}
	return n, nil
}
