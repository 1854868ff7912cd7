package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// callGrace is how long past the statement timeout a call may take before
// the connector abandons it (and its connection) on its own.
const callGrace = 5 * time.Second

// Column describes one result column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is the structured result of every tool call.
type Result struct {
	Columns []Column `json:"columns"`
	// Rows holds each row's values in column order. Integers, floats and
	// numerics are JSON numbers, booleans are booleans, json and jsonb are
	// JSON values, NULL is null, and everything else is PostgreSQL's text form.
	Rows [][]any `json:"rows"`
	// RowCount is len(Rows).
	RowCount int `json:"row_count"`
	// Truncated reports that rows were dropped by the row or size cap.
	Truncated bool `json:"truncated"`
	// Command is the command tag of an execute call, e.g. "UPDATE 3".
	Command string `json:"command,omitempty"`
	// RowsAffected is the row count in an execute call's command tag.
	RowsAffected *int64 `json:"rows_affected,omitempty"`
}

// access is the transaction mode and role a call runs with.
type access int

const (
	readOnly access = iota
	readWrite
)

// statement is one call's SQL and its parameters in text form (nil is NULL).
type statement struct {
	sql    string
	params [][]byte
	scope  []scopeSetting
}

// callError is an error whose text is safe to show the caller.
type callError struct {
	msg   string
	cause error
}

func (e *callError) Error() string { return e.msg }
func (e *callError) Unwrap() error { return e.cause }

// runner executes statements, one transaction per call.
type runner struct {
	cfg  Config
	pool *pgxpool.Pool
}

// run executes st in its own transaction: read-only as the read role, or
// read-write as the write role, with the statement timeout and the task
// scope as transaction-local settings. The statement goes through the
// extended query protocol, so PostgreSQL refuses more than one statement.
// Read-only transactions always roll back; read-write ones commit only when
// the statement succeeded. Afterwards the session is reset as DISCARD ALL
// would, so nothing a statement left in the session (settings, role,
// advisory locks, prepared statements, cursors, temporary tables) reaches
// the next call; a connection that cannot be reset is closed.
//
// A call costs two round trips: the transaction set-up and the statement go
// as one batch (PostgreSQL skips the statement if any set-up step fails),
// then the end of the transaction and the reset as one simple query.
func (r *runner) run(ctx context.Context, mode access, st statement) (res *Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StatementTimeout+callGrace)
	defer cancel()

	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, &callError{msg: "database unavailable", cause: err}
	}
	clean := false
	defer func() {
		if !clean {
			// The session's state is unknown: never hand it to another call.
			closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Conn().Close(closeCtx)
			closeCancel()
		}
		conn.Release()
	}()
	pg := conn.Conn().PgConn()

	steps := r.setup(mode, st.scope)
	setupSteps := len(steps)
	batch := &pgconn.Batch{}
	for _, step := range steps {
		batch.ExecParams(step.sql, step.params, nil, nil, nil)
	}
	batch.ExecParams(st.sql, st.params, nil, nil, nil)

	mrr := pg.ExecBatch(ctx, batch)
	var stmtErr error
	done := 0
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		if done < setupSteps {
			if _, err := rr.Close(); err != nil {
				break
			}
			done++
			continue
		}
		res, stmtErr = r.readResult(ctx, conn.Conn().TypeMap(), rr, mode)
		done++
	}
	if err := mrr.Close(); err != nil && stmtErr == nil {
		step := "run the statement"
		if done < setupSteps {
			step = "prepare the transaction"
		}
		stmtErr = wrapDBError(step, err)
	}
	if stmtErr == nil && res == nil {
		stmtErr = &callError{msg: "the statement returned no result"}
	}

	end := "ROLLBACK"
	if mode == readWrite && stmtErr == nil {
		end = "COMMIT"
	}
	if _, err := pg.Exec(ctx, end+"; "+resetSQL).ReadAll(); err != nil {
		if stmtErr != nil {
			return nil, stmtErr
		}
		return nil, wrapDBError(strings.ToLower(end), err)
	}
	clean = pg.TxStatus() == 'I'
	if stmtErr != nil {
		return nil, stmtErr
	}
	return res, nil
}

// resetSQL is DISCARD ALL spelled out: DISCARD ALL itself cannot follow the
// end of the transaction in one query string, these can. A lone COMMIT or
// ROLLBACK from the caller's statement only makes ours a warning.
const resetSQL = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; DEALLOCATE ALL; UNLISTEN *; " +
	"SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES"

type setupStep struct {
	sql    string
	params [][]byte
}

// setup is what runs before the statement: open the transaction, set the
// timeout and the scope, then take the role. The settings are made while
// still the login role, so set_config can be revoked from the read and
// write roles (BootstrapOptions.HardenScope) and a statement cannot rewrite
// its own scope. The role is a validated identifier; every value is a
// parameter. The SELECT also means a query has run before the caller's
// statement, so SET TRANSACTION READ WRITE can no longer take effect.
func (r *runner) setup(mode access, scope []scopeSetting) []setupStep {
	begin, role := "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY", r.cfg.ReadRole
	if mode == readWrite {
		begin, role = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE", r.cfg.WriteRole
	}
	var b strings.Builder
	b.WriteString("SELECT pg_catalog.set_config('statement_timeout', $1, true)")
	params := [][]byte{[]byte(strconv.FormatInt(r.cfg.StatementTimeout.Milliseconds(), 10))}
	for _, s := range scope {
		fmt.Fprintf(&b, ", pg_catalog.set_config($%d, $%d, true)", len(params)+1, len(params)+2)
		params = append(params, []byte(s.name), []byte(s.value))
	}
	return []setupStep{
		{sql: begin},
		{sql: b.String(), params: params},
		{sql: "SET LOCAL ROLE " + pgx.Identifier{role}.Sanitize()},
	}
}

// readResult reads a statement's result up to the row and size caps. A
// truncated result is drained by closing the reader; the statement timeout
// bounds how long that takes.
func (r *runner) readResult(ctx context.Context, types *pgtype.Map, rr *pgconn.ResultReader, mode access) (*Result, error) {
	res := &Result{Columns: []Column{}, Rows: [][]any{}}
	fields := rr.FieldDescriptions()
	for _, f := range fields {
		res.Columns = append(res.Columns, Column{Name: f.Name, Type: typeName(types, f.DataTypeOID)})
	}
	size := 0
	for rr.NextRow() {
		if len(res.Rows) == r.cfg.MaxRows {
			res.Truncated = true
			break
		}
		values := rr.Values()
		rowSize := 2
		for _, v := range values {
			rowSize += len(v) + 3
		}
		if size+rowSize > r.cfg.MaxResultBytes {
			res.Truncated = true
			break
		}
		size += rowSize
		row := make([]any, len(values))
		for i, v := range values {
			row[i] = jsonValue(fields[i].DataTypeOID, v)
		}
		res.Rows = append(res.Rows, row)
	}
	tag, err := rr.Close()
	if err != nil {
		if ctx.Err() != nil {
			return nil, &callError{msg: "the call exceeded its time limit", cause: err}
		}
		return nil, wrapDBError("run the statement", err)
	}
	res.RowCount = len(res.Rows)
	if mode == readWrite {
		res.Command = tag.String()
		n := tag.RowsAffected()
		res.RowsAffected = &n
	}
	return res, nil
}

func typeName(types *pgtype.Map, oid uint32) string {
	if t, ok := types.TypeForOID(oid); ok {
		return t.Name
	}
	return "oid:" + strconv.FormatUint(uint64(oid), 10)
}

// jsonValue turns a value in PostgreSQL's text format into its JSON form.
func jsonValue(oid uint32, text []byte) any {
	if text == nil {
		return nil
	}
	switch oid {
	case pgtype.BoolOID:
		return string(text) == "t"
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID,
		pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID:
		// NaN and the infinities have no JSON number form.
		if n := json.Number(text); json.Valid(text) {
			return n
		}
	case pgtype.JSONOID, pgtype.JSONBOID:
		if json.Valid(text) {
			return json.RawMessage(text)
		}
	}
	return string(text)
}

// wrapDBError gives err a caller-safe text: PostgreSQL's own errors keep
// their SQLSTATE and message; anything else (a broken connection, which
// could name hosts or users) is reported generically.
func wrapDBError(step string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := "SQLSTATE " + pgErr.Code + ": " + pgErr.Message
		if pgErr.Detail != "" {
			msg += "\nDETAIL: " + pgErr.Detail
		}
		if pgErr.Hint != "" {
			msg += "\nHINT: " + pgErr.Hint
		}
		if pgErr.Code == "42601" && strings.Contains(pgErr.Message, "multiple commands") {
			msg += "\nHINT: send exactly one SQL statement per call"
		}
		return &callError{msg: msg, cause: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &callError{msg: "the call was canceled or exceeded its time limit", cause: err}
	}
	return &callError{msg: fmt.Sprintf("database error while trying to %s", step), cause: err}
}
