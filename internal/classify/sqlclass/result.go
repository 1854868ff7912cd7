package sqlclass

// Result is what the classifier says about one SQL text, which may hold
// several statements. The booleans are independent facts; ReadOnly is the
// verdict a read-only policy uses, and Reasons explains every way the text
// fails to be read-only.
//
// Table and function names are the parser's normal form: unquoted
// identifiers folded to lower case, quoted ones kept as written, qualified
// exactly as written (no search_path resolution: "accounts" and
// "public.accounts" are different entries), parts joined with ".". An
// identifier that is not plain lower case ([a-z_][a-z0-9_$]*) is written
// double-quoted, with embedded quotes doubled, so "a.b" and a.b stay apart.
type Result struct {
	// Statements is the number of statements in the text.
	Statements int `json:"statements"`
	// Kinds lists the kinds of statement found, in order of first
	// appearance, each once: the top-level statements, and statements nested
	// in them other than plain SELECT subqueries (a data-modifying WITH
	// query, the statement under EXPLAIN or PREPARE).
	Kinds []string `json:"kinds"`

	WritesData          bool `json:"writes_data"`          // INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, SELECT INTO, nextval, NOTIFY...
	ChangesSchema       bool `json:"changes_schema"`       // DDL: CREATE, ALTER, DROP, COMMENT...
	ChangesPrivileges   bool `json:"changes_privileges"`   // GRANT, REVOKE, roles, policies, SET ROLE
	ChangesSettings     bool `json:"changes_settings"`     // SET, RESET, set_config(), ALTER SYSTEM, server control functions
	ControlsTransaction bool `json:"controls_transaction"` // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, SET TRANSACTION
	Locks               bool `json:"locks"`                // FOR UPDATE/SHARE, LOCK TABLE, advisory locks
	ExecutesCode        bool `json:"executes_code"`        // DO, CALL, PREPARE/EXECUTE, unknown functions or operators, COPY PROGRAM
	TouchesFiles        bool `json:"touches_files"`        // server file functions, large objects, COPY to or from a file
	OtherConnections    bool `json:"other_connections"`    // dblink, foreign servers, terminating or cancelling other sessions
	// Delays is set when the text calls pg_sleep and its kind. Sleeping
	// changes no data, but it holds a connection and its snapshot, and a
	// conditional sleep reads data out by timing: not read-only.
	Delays bool `json:"delays"`

	TablesRead    []string `json:"tables_read"`
	TablesWritten []string `json:"tables_written"` // targets of writes, DDL, LOCK, VACUUM...
	Functions     []string `json:"functions"`

	// Unparseable is set when the text is not valid PostgreSQL (or is
	// refused before parsing: NUL bytes, invalid UTF-8, too long); Error
	// then holds the reason.
	Unparseable bool   `json:"unparseable"`
	Error       string `json:"error"`

	// ReadOnly is true only when the text parses, has at least one
	// statement, and every statement only reads data with no side effect.
	ReadOnly bool     `json:"read_only"`
	Reasons  []string `json:"reasons"`
}

// Map returns the result as a map keyed by the JSON field names, for
// expression languages: lists are []any of strings, counts int64.
func (r *Result) Map() map[string]any {
	return map[string]any{
		"statements":           int64(r.Statements),
		"kinds":                anyList(r.Kinds),
		"writes_data":          r.WritesData,
		"changes_schema":       r.ChangesSchema,
		"changes_privileges":   r.ChangesPrivileges,
		"changes_settings":     r.ChangesSettings,
		"controls_transaction": r.ControlsTransaction,
		"locks":                r.Locks,
		"executes_code":        r.ExecutesCode,
		"touches_files":        r.TouchesFiles,
		"other_connections":    r.OtherConnections,
		"delays":               r.Delays,
		"tables_read":          anyList(r.TablesRead),
		"tables_written":       anyList(r.TablesWritten),
		"functions":            anyList(r.Functions),
		"unparseable":          r.Unparseable,
		"error":                r.Error,
		"read_only":            r.ReadOnly,
		"reasons":              anyList(r.Reasons),
	}
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func newResult() *Result {
	return &Result{
		Kinds:         []string{},
		TablesRead:    []string{},
		TablesWritten: []string{},
		Functions:     []string{},
		Reasons:       []string{},
	}
}

// effect is one of the side-effect booleans of a Result.
type effect int

const (
	noEffect effect = iota
	writesData
	changesSchema
	changesPrivileges
	changesSettings
	controlsTransaction
	locks
	executesCode
	touchesFiles
	otherConnections
	delays
)

// flag returns the Result field an effect sets, or nil for noEffect.
func (r *Result) flag(e effect) *bool {
	switch e {
	case writesData:
		return &r.WritesData
	case changesSchema:
		return &r.ChangesSchema
	case changesPrivileges:
		return &r.ChangesPrivileges
	case changesSettings:
		return &r.ChangesSettings
	case controlsTransaction:
		return &r.ControlsTransaction
	case locks:
		return &r.Locks
	case executesCode:
		return &r.ExecutesCode
	case touchesFiles:
		return &r.TouchesFiles
	case otherConnections:
		return &r.OtherConnections
	case delays:
		return &r.Delays
	}
	return nil
}

func (e effect) String() string {
	switch e {
	case writesData:
		return "writes data"
	case changesSchema:
		return "changes the schema"
	case changesPrivileges:
		return "changes privileges"
	case changesSettings:
		return "changes settings"
	case controlsTransaction:
		return "controls the transaction"
	case locks:
		return "takes locks"
	case executesCode:
		return "executes code"
	case touchesFiles:
		return "touches server files"
	case otherConnections:
		return "acts on other connections"
	case delays:
		return "delays the session"
	}
	return "has side effects"
}
