// Package postgres is Warden's built-in least-privilege PostgreSQL server.
//
// It is an MCP server like any other upstream: Warden reaches it only through
// MCP, in-process over an in-memory transport or as a separate process over
// stdio. Its tools are query (one read-only statement), execute (one write),
// list_tables and describe_table.
//
// The connector never parses SQL. Least privilege comes from PostgreSQL
// itself: every call runs in its own transaction, under SET LOCAL ROLE to a
// read role or a write role, read-only for everything but execute, with a
// transaction-local statement_timeout, through the extended query protocol
// (so PostgreSQL refuses a second statement), and with the task scope as
// transaction-local warden.* settings that row-level security policies can
// read. With a [CredentialVerifier] configured, every call must carry
// Warden's per-call credential and the scope comes from it. The login role the pool connects as must be
// NOINHERIT and hold no privileges of its own (see [Bootstrap] and
// [Preflight]), so a statement that leaves the call's role gains nothing.
package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ImplementationName identifies the connector in the MCP handshake.
const ImplementationName = "warden-postgres"

// server holds what the tool handlers share.
type server struct {
	cfg    Config
	run    runner
	logger *slog.Logger
}

// NewServer returns an MCP server exposing the tools enabled in cfg over
// pool. The pool must connect as the connector's login role (never a
// superuser or a table owner) and must not be shared with other code: the
// connector resets each session with DISCARD ALL after every call.
func NewServer(cfg Config, pool *pgxpool.Pool, logger *slog.Logger) (*mcp.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("postgres connector config: %w", err)
	}
	if pool == nil {
		return nil, errors.New("postgres connector: nil pool")
	}
	if logger == nil {
		return nil, errors.New("postgres connector: nil logger")
	}
	cfg = cfg.WithDefaults()
	s := &server{cfg: cfg, run: runner{cfg: cfg, pool: pool}, logger: logger}

	impl := &mcp.Implementation{Name: ImplementationName, Title: "Warden PostgreSQL connector", Version: "0.1.0"}
	srv := mcp.NewServer(impl, &mcp.ServerOptions{
		Logger:       logger,
		Capabilities: &mcp.ServerCapabilities{},
		Instructions: "Each call runs one SQL statement in its own transaction with least privilege. " +
			"query, list_tables and describe_table are read-only.",
	})
	for _, tool := range s.tools() {
		if cfg.enabled(tool.def.Name) {
			srv.AddTool(tool.def, s.guard(tool.def.Name, tool.handle))
		}
	}
	return srv, nil
}

// toolHandler runs one call under the task scope the guard decided.
type toolHandler func(ctx context.Context, req *mcp.CallToolRequest, scope []scopeSetting) (*Result, error)

type toolEntry struct {
	def    *mcp.Tool
	handle toolHandler
}

func (s *server) tools() []toolEntry {
	yes, no := true, false
	sqlArgs := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"sql": map[string]any{"type": "string", "description": "exactly one SQL statement; use $1, $2, ... for parameters"},
			"params": map[string]any{
				"type":        "array",
				"description": "values for $1, $2, ...; sent as text and typed by PostgreSQL (null is NULL)",
				"items":       map[string]any{"type": []any{"string", "number", "integer", "boolean", "null", "object", "array"}},
			},
		},
		"required":             []any{"sql"},
		"additionalProperties": false,
	}
	noArgs := map[string]any{"type": "object", "properties": map[string]any{}, "additionalProperties": false}
	tableArgs := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"table": map[string]any{"type": "string", "description": "table name, optionally schema-qualified (schema.table)"},
		},
		"required":             []any{"table"},
		"additionalProperties": false,
	}
	return []toolEntry{
		{&mcp.Tool{
			Name:         ToolQuery,
			Description:  "Run one read-only SQL statement and return its rows.",
			InputSchema:  sqlArgs,
			OutputSchema: resultSchema,
			Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no},
		}, s.query},
		{&mcp.Tool{
			Name:         ToolExecute,
			Description:  "Run one SQL statement that writes (INSERT, UPDATE, DELETE) and commit it.",
			InputSchema:  sqlArgs,
			OutputSchema: resultSchema,
			Annotations:  &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &no},
		}, s.execute},
		{&mcp.Tool{
			Name:         ToolListTables,
			Description:  "List the tables and views the read role can access.",
			InputSchema:  noArgs,
			OutputSchema: resultSchema,
			Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no},
		}, s.listTables},
		{&mcp.Tool{
			Name:         ToolDescribeTable,
			Description:  "List a table's columns with their types, nullability and defaults.",
			InputSchema:  tableArgs,
			OutputSchema: resultSchema,
			Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no},
		}, s.describeTable},
	}
}

var resultSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"columns": map[string]any{"type": "array", "items": map[string]any{
			"type":       "object",
			"properties": map[string]any{"name": map[string]any{"type": "string"}, "type": map[string]any{"type": "string"}},
		}},
		"rows":          map[string]any{"type": "array", "items": map[string]any{"type": "array"}},
		"row_count":     map[string]any{"type": "integer"},
		"truncated":     map[string]any{"type": "boolean"},
		"command":       map[string]any{"type": "string"},
		"rows_affected": map[string]any{"type": "integer"},
	},
	"required": []any{"columns", "rows", "row_count", "truncated"},
}

// guard decides the call's task scope (checking its credential when a
// Verifier is configured), turns a handler's result or error into a tool
// result, recovers panics, and logs the outcome. Every failure is a tool error result
// (isError) whose text is safe for the caller; causes go to the log only.
func (s *server) guard(name string, h toolHandler) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (result *mcp.CallToolResult, _ error) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.logger.Error("postgres connector: panic in tool call", "tool", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				result = errorResult("internal error in the connector")
			}
		}()
		scope, err := s.callScope(ctx, name, req)
		var res *Result
		if err == nil {
			res, err = h(ctx, req, scope)
		}
		if err != nil {
			var ce *callError
			msg := "internal error in the connector"
			if errors.As(err, &ce) {
				msg = ce.msg
			}
			s.logger.Warn("postgres connector: tool call failed", "tool", name, "error", err, "duration", time.Since(start))
			return errorResult(msg), nil
		}
		text, err := json.Marshal(res)
		if err != nil {
			s.logger.Error("postgres connector: encode result", "tool", name, "error", err)
			return errorResult("internal error in the connector"), nil
		}
		s.logger.Debug("postgres connector: tool call", "tool", name, "rows", res.RowCount, "truncated", res.Truncated, "duration", time.Since(start))
		return &mcp.CallToolResult{
			Content:           []mcp.Content{&mcp.TextContent{Text: string(text)}},
			StructuredContent: json.RawMessage(text),
		}, nil
	}
}

func errorResult(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

func (s *server) query(ctx context.Context, req *mcp.CallToolRequest, scope []scopeSetting) (*Result, error) {
	st, err := sqlStatement(req, scope)
	if err != nil {
		return nil, err
	}
	return s.run.run(ctx, readOnly, st)
}

func (s *server) execute(ctx context.Context, req *mcp.CallToolRequest, scope []scopeSetting) (*Result, error) {
	st, err := sqlStatement(req, scope)
	if err != nil {
		return nil, err
	}
	return s.run.run(ctx, readWrite, st)
}

const listTablesSQL = `SELECT table_schema AS schema, table_name AS name, table_type AS type
FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2`

func (s *server) listTables(ctx context.Context, req *mcp.CallToolRequest, scope []scopeSetting) (*Result, error) {
	if err := decodeArgs(req, &struct{}{}); err != nil {
		return nil, err
	}
	return s.run.run(ctx, readOnly, statement{sql: listTablesSQL, scope: scope})
}

// describeTableSQL lists only the columns the read role may select, so a
// table it cannot read describes as empty.
const describeTableSQL = `SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
  NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND has_column_privilege(a.attrelid, a.attnum, 'SELECT')
ORDER BY a.attnum`

func (s *server) describeTable(ctx context.Context, req *mcp.CallToolRequest, scope []scopeSetting) (*Result, error) {
	var args struct {
		Table *string `json:"table"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return nil, err
	}
	if args.Table == nil || *args.Table == "" {
		return nil, &callError{msg: `argument "table" is required`}
	}
	if err := checkText("table", *args.Table); err != nil {
		return nil, err
	}
	res, err := s.run.run(ctx, readOnly, statement{sql: describeTableSQL, params: [][]byte{[]byte(*args.Table)}, scope: scope})
	if err != nil {
		return nil, err
	}
	if res.RowCount == 0 {
		return nil, &callError{msg: fmt.Sprintf("table %q not found or not readable", *args.Table)}
	}
	return res, nil
}

// sqlStatement decodes the sql and params arguments into a statement run
// under scope.
func sqlStatement(req *mcp.CallToolRequest, scope []scopeSetting) (statement, error) {
	var args struct {
		SQL    *string           `json:"sql"`
		Params []json.RawMessage `json:"params"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return statement{}, err
	}
	if args.SQL == nil || *args.SQL == "" {
		return statement{}, &callError{msg: `argument "sql" is required`}
	}
	if err := checkText("sql", *args.SQL); err != nil {
		return statement{}, err
	}
	params := make([][]byte, len(args.Params))
	for i, raw := range args.Params {
		p, err := paramText(raw)
		if err != nil {
			return statement{}, &callError{msg: fmt.Sprintf("params[%d]: %v", i, err)}
		}
		params[i] = p
	}
	return statement{sql: *args.SQL, params: params, scope: scope}, nil
}

// decodeArgs decodes the call's arguments into v, refusing unknown fields.
func decodeArgs(req *mcp.CallToolRequest, v any) error {
	raw := req.Params.Arguments
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &callError{msg: "invalid arguments: " + err.Error(), cause: err}
	}
	if dec.More() {
		return &callError{msg: "invalid arguments: trailing data after the arguments object"}
	}
	return nil
}

func checkText(name, s string) error {
	if !utf8.ValidString(s) || bytes.IndexByte([]byte(s), 0) >= 0 {
		return &callError{msg: fmt.Sprintf("argument %q must be valid UTF-8 without NUL characters", name)}
	}
	return nil
}

// paramText turns one JSON parameter into PostgreSQL's text format: strings
// as they are, numbers and booleans as written, objects and arrays as JSON
// text (for json and jsonb parameters), null as NULL.
func paramText(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, errors.New("empty value")
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if err := checkText("params", s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case 't', 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, err
		}
		if b {
			return []byte("true"), nil
		}
		return []byte("false"), nil
	default:
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, err
		}
		return []byte(n.String()), nil
	}
}
