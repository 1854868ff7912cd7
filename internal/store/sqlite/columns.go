package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Column conversions shared by the stores.

// jsonColumn encodes v for a nullable JSON text column: NULL when empty.
// It does not escape HTML, so raw JSON values (audit records' Extra, which
// their hashes cover) keep their exact bytes; typed values decode the same
// either way.
func jsonColumn(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON column: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// blob is a JSON value for a nullable BLOB column: NULL when absent.
func blob(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return []byte(v)
}

// nanos is t in Unix nanoseconds: 0 for the zero time, clamped to what
// int64 holds otherwise.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nullNanos is nanos for a nullable column: NULL for the zero time.
func nullNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return nanos(t)
}

// fromNanos reads what nanos and nullNanos store: 0, or the Int64 of a
// NULL sql.NullInt64, is the zero time.
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// rowScanner is a *sql.Row or *sql.Rows, so one scan function reads a
// single row and every row of a query.
type rowScanner = interface{ Scan(dest ...any) error }

// collect scans every row of rows with scan and closes rows. It returns an
// empty slice, not nil, when there are none.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// exists reports whether table has a row with id. table is a constant of
// this package, never input.
func exists(ctx context.Context, q queryer, table, id string) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE id = ?`, id).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}
