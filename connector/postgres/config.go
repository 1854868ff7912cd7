package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Tool names served by the connector.
const (
	ToolQuery         = "query"
	ToolExecute       = "execute"
	ToolListTables    = "list_tables"
	ToolDescribeTable = "describe_table"
)

// allTools lists every tool the connector knows, in the order they are listed.
var allTools = []string{ToolQuery, ToolExecute, ToolListTables, ToolDescribeTable}

// Defaults filled in by [Config.WithDefaults].
const (
	DefaultReadRole         = "warden_reader"
	DefaultWriteRole        = "warden_writer"
	DefaultStatementTimeout = 5 * time.Second
	DefaultMaxRows          = 1000
	DefaultMaxResultBytes   = 1 << 20
)

// Config is the connector's configuration. The zero value, after
// [Config.WithDefaults], serves the read-only tools as warden_reader.
type Config struct {
	// ReadRole is the role every query, list_tables and describe_table call
	// runs as (SET LOCAL ROLE). Empty means "warden_reader".
	ReadRole string
	// WriteRole is the role every execute call runs as. Empty means
	// "warden_writer".
	WriteRole string
	// StatementTimeout bounds each call's statement (SET LOCAL
	// statement_timeout). Zero means 5s; it must be at least 1ms.
	StatementTimeout time.Duration
	// MaxRows is how many rows a call returns at most; further rows are
	// dropped and the result is marked truncated. Zero means 1000.
	MaxRows int
	// MaxResultBytes bounds the size of the returned values in bytes
	// (approximately their text form); rows past it are dropped and the
	// result is marked truncated. Zero means 1 MiB.
	MaxResultBytes int
	// Tools names the tools to serve. Empty means the read-only tools
	// (query, list_tables, describe_table): execute must be named to be served.
	Tools []string
	// Verifier, when set, checks the Warden credential every call must
	// carry in _meta (for this tool and these exact argument bytes) and
	// the call runs under the scope the credential grants. Nil takes the
	// _meta scope as given: only for a connector that nothing but Warden
	// can reach, in the same process.
	Verifier CredentialVerifier
}

// identifierPattern is what the connector accepts as a role, schema or table
// name, or a scope key: lower-case unquoted PostgreSQL identifiers.
var identifierPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.ReadRole == "" {
		c.ReadRole = DefaultReadRole
	}
	if c.WriteRole == "" {
		c.WriteRole = DefaultWriteRole
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = DefaultMaxResultBytes
	}
	if len(c.Tools) == 0 {
		c.Tools = []string{ToolQuery, ToolListTables, ToolDescribeTable}
	}
	return c
}

// Validate reports the first problem with c, after defaults are applied.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	for _, r := range []struct{ field, value string }{{"read role", c.ReadRole}, {"write role", c.WriteRole}} {
		if !identifierPattern.MatchString(r.value) {
			errs = append(errs, fmt.Errorf("%s %q: want a lower-case identifier ([a-z_][a-z0-9_]*)", r.field, r.value))
		}
	}
	if c.ReadRole == c.WriteRole {
		errs = append(errs, fmt.Errorf("read role and write role are both %q: reads must not run with write privileges", c.ReadRole))
	}
	if c.StatementTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("statement timeout %s: want at least 1ms", c.StatementTimeout))
	}
	if c.MaxRows < 1 {
		errs = append(errs, fmt.Errorf("max rows %d: want at least 1", c.MaxRows))
	}
	if c.MaxResultBytes < 1 {
		errs = append(errs, fmt.Errorf("max result bytes %d: want at least 1", c.MaxResultBytes))
	}
	seen := map[string]bool{}
	for _, t := range c.Tools {
		if !slices.Contains(allTools, t) {
			errs = append(errs, fmt.Errorf("unknown tool %q (known: %v)", t, allTools))
		}
		if seen[t] {
			errs = append(errs, fmt.Errorf("tool %q listed twice", t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

func (c Config) enabled(tool string) bool {
	return slices.Contains(c.Tools, tool)
}
