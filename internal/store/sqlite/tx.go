package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// inTx runs f in an immediate transaction (the connection string asks for
// immediate locking), committing when f returns nil; what names the work
// in errors.
func (d *DB) inTx(ctx context.Context, what string, f func(*sql.Tx) error) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
