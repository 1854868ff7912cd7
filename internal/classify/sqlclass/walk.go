package sqlclass

import (
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxReasons bounds Reasons for hostile input with thousands of calls.
const maxReasons = 64

// neutral lists parse-tree node types that do nothing by themselves inside a
// query: names, literals, expressions whose only behaviour is that of their
// children. Any node type not listed and not handled by the walker makes the
// statement not read-only, so a node type added by a newer parser fails
// closed.
var neutral = map[protoreflect.FullName]bool{
	"pg_query.Node": true, "pg_query.RawStmt": true, "pg_query.List": true, "pg_query.String": true, "pg_query.Integer": true,
	"pg_query.Float": true, "pg_query.Boolean": true, "pg_query.BitString": true, "pg_query.A_Const": true,
	"pg_query.Alias": true, "pg_query.ColumnRef": true, "pg_query.A_Star": true, "pg_query.ParamRef": true,
	"pg_query.BoolExpr": true, "pg_query.NullTest": true, "pg_query.BooleanTest": true, "pg_query.TypeCast": true,
	"pg_query.CollateClause": true, "pg_query.A_Indices": true,
	"pg_query.A_Indirection": true, "pg_query.A_ArrayExpr": true, "pg_query.ResTarget": true,
	"pg_query.WindowDef": true, "pg_query.RangeSubselect": true, "pg_query.RangeFunction": true,
	"pg_query.RangeTableFunc": true, "pg_query.RangeTableFuncCol": true, "pg_query.CaseExpr": true,
	"pg_query.CaseWhen": true, "pg_query.CoalesceExpr": true, "pg_query.MinMaxExpr": true,
	"pg_query.SQLValueFunction": true, "pg_query.XmlExpr": true, "pg_query.XmlSerialize": true,
	"pg_query.RowExpr": true, "pg_query.GroupingSet": true, "pg_query.GroupingFunc": true,
	"pg_query.JoinExpr": true, "pg_query.CommonTableExpr": true, "pg_query.CTESearchClause": true,
	"pg_query.CTECycleClause": true, "pg_query.NamedArgExpr": true,
	// A column definition list (json_to_record(...) AS r(a int)) names
	// columns and types; any default or constraint inside is still walked.
	"pg_query.ColumnDef":  true,
	"pg_query.JsonFormat": true, "pg_query.JsonReturning": true, "pg_query.JsonValueExpr": true,
	"pg_query.JsonOutput": true, "pg_query.JsonArgument": true, "pg_query.JsonFuncExpr": true,
	"pg_query.JsonTablePathSpec": true, "pg_query.JsonTable": true, "pg_query.JsonTableColumn": true,
	"pg_query.JsonKeyValue": true, "pg_query.JsonParseExpr": true, "pg_query.JsonScalarExpr": true,
	"pg_query.JsonSerializeExpr": true, "pg_query.JsonObjectConstructor": true,
	"pg_query.JsonArrayConstructor": true, "pg_query.JsonArrayQueryConstructor": true,
	"pg_query.JsonAggConstructor": true, "pg_query.JsonObjectAgg": true, "pg_query.JsonArrayAgg": true,
	"pg_query.JsonIsPredicate": true, "pg_query.JsonBehavior": true,
}

// walker visits one parse tree and fills a Result.
type walker struct {
	cat *catalog
	res *Result

	stmt     int    // 1-based number of the top-level statement being walked
	topKind  string // its kind
	readOnly bool   // whether that statement is still read-only

	// write says that relations met outside a query are acted on (DDL,
	// LOCK, TRUNCATE...) rather than read.
	write bool
	// ctes holds the WITH query names visible at this point; an unqualified
	// relation with one of these names is not a table.
	ctes []string
	seen map[string]bool
}

func newWalker(cat *catalog, res *Result) *walker {
	return &walker{cat: cat, res: res, seen: map[string]bool{}}
}

// statement walks the i-th top-level statement and says whether it is
// read-only.
func (w *walker) statement(i int, raw *pg_query.RawStmt) bool {
	w.stmt = i + 1
	w.readOnly = true
	w.write = false
	w.ctes = w.ctes[:0]
	node := raw.GetStmt()
	if node == nil || node.GetNode() == nil {
		w.topKind = "unknown"
		w.addKind(w.topKind)
		w.deny(noEffect, "is empty")
		return false
	}
	inner := nodeMessage(node)
	w.topKind = kindOf(inner)
	w.addKind(w.topKind)
	w.visit(inner)
	// Only these can be read-only, whatever the walk above found.
	readable := false
	switch s := inner.Interface().(type) {
	case *pg_query.SelectStmt, *pg_query.VariableShowStmt:
		readable = true
	case *pg_query.ExplainStmt:
		_, readable = s.GetQuery().GetNode().(*pg_query.Node_SelectStmt)
	}
	if !readable && w.readOnly {
		w.deny(noEffect, "is not a query")
	}
	return w.readOnly
}

// nodeMessage unwraps a Node (a oneof of every node type) to its content,
// or returns the Node itself when nothing is set.
func nodeMessage(n *pg_query.Node) protoreflect.Message {
	m := n.ProtoReflect()
	if oneofs := m.Descriptor().Oneofs(); oneofs.Len() == 1 {
		if fd := m.WhichOneof(oneofs.Get(0)); fd != nil && fd.Kind() == protoreflect.MessageKind {
			return m.Get(fd).Message()
		}
	}
	return m
}

// kindOf names the kind of a statement node.
func kindOf(m protoreflect.Message) string {
	switch s := m.Interface().(type) {
	case *pg_query.SelectStmt:
		return "select"
	case *pg_query.InsertStmt:
		return "insert"
	case *pg_query.UpdateStmt:
		return "update"
	case *pg_query.DeleteStmt:
		return "delete"
	case *pg_query.MergeStmt:
		return "merge"
	case *pg_query.CopyStmt:
		return "copy"
	case *pg_query.ExplainStmt:
		return "explain"
	case *pg_query.VariableShowStmt:
		return "show"
	case *pg_query.VariableSetStmt:
		if s.Kind == pg_query.VariableSetKind_VAR_RESET || s.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
			return "reset"
		}
		return "set"
	}
	name := string(m.Descriptor().Name())
	if info, ok := statements[name]; ok {
		return statementKind(m.Interface(), info)
	}
	return snakeKind(name)
}

// visit judges one node and walks its children.
func (w *walker) visit(m protoreflect.Message) {
	switch n := m.Interface().(type) {
	case *pg_query.Node:
		// A Node is a oneof over every node type: go straight to the one set.
		if inner := nodeMessage(n); inner.Interface() != n {
			w.visit(inner)
		}
	case *pg_query.SelectStmt:
		w.selectStmt(n, m)
	case *pg_query.InsertStmt:
		w.modify("insert", n.WithClause, n.Relation, m)
	case *pg_query.UpdateStmt:
		w.modify("update", n.WithClause, n.Relation, m)
	case *pg_query.DeleteStmt:
		w.modify("delete", n.WithClause, n.Relation, m)
	case *pg_query.MergeStmt:
		w.modify("merge", n.WithClause, n.Relation, m)
	case *pg_query.CopyStmt:
		w.copyStmt(n)
	case *pg_query.ExplainStmt:
		w.explainStmt(n)
	case *pg_query.VariableShowStmt:
		// SHOW reads a setting; the server hides settings the role may not see.
	case *pg_query.VariableSetStmt:
		w.setStmt(n)
	case *pg_query.WithClause:
		w.with(n, func() {})
	case *pg_query.RangeVar:
		w.rangeVar(n)
	case *pg_query.FuncCall:
		w.funcCall(n)
		w.fields(m, "funcname")
	case *pg_query.TypeName:
		w.typeName(n)
		w.fields(m, "names")
	case *pg_query.A_Expr:
		if !isBetween(n.Kind) {
			w.operator(n.Name)
		}
		w.fields(m, "name")
	case *pg_query.SubLink:
		if len(n.OperName) > 0 {
			w.operator(n.OperName)
		}
		w.fields(m, "oper_name")
	case *pg_query.SortBy:
		if len(n.UseOp) > 0 {
			w.operator(n.UseOp)
		}
		w.fields(m, "use_op")
	case *pg_query.RangeTableSample:
		w.tableSample(n)
		w.fields(m, "method")
	case *pg_query.IntoClause:
		name := relationName(n.GetRel())
		w.add(&w.res.TablesWritten, "written", name)
		w.deny(changesSchema, "creates table %s (SELECT INTO)", name)
		w.deny(writesData, "")
	case *pg_query.LockingClause:
		w.deny(locks, "locks rows (%s)", lockStrength(n.Strength))
	default:
		w.other(m)
	}
}

// other handles every node type without a case of its own.
func (w *walker) other(m protoreflect.Message) {
	desc := m.Descriptor()
	if neutral[desc.FullName()] {
		w.fields(m)
		return
	}
	name := desc.Name()
	if info, ok := statements[string(name)]; ok {
		w.utility(m, info)
		return
	}
	if strings.HasSuffix(string(name), "Stmt") {
		kind := snakeKind(string(name))
		w.addKind(kind)
		w.denyAs(kind, noEffect, "is not a recognised statement")
	} else if w.readOnly {
		w.deny(noEffect, "contains %s, which is not known to be read-only", name)
	}
	prev := w.write
	w.write = true
	w.fields(m)
	w.write = prev
}

// fields visits every message-typed field of m in declaration order, except
// those named in skip.
func (w *walker) fields(m protoreflect.Message, skip ...protoreflect.Name) {
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if fd.Kind() != protoreflect.MessageKind || slices.Contains(skip, fd.Name()) {
			continue
		}
		switch {
		case fd.IsMap():
			w.deny(noEffect, "contains a %s map, which is not known to be read-only", fd.Name())
		case fd.IsList():
			list := m.Get(fd).List()
			for j := range list.Len() {
				w.visit(list.Get(j).Message())
			}
		case m.Has(fd):
			w.visit(m.Get(fd).Message())
		}
	}
}

func (w *walker) selectStmt(s *pg_query.SelectStmt, m protoreflect.Message) {
	prev := w.write
	w.write = false
	w.with(s.WithClause, func() { w.fields(m, "with_clause") })
	w.write = prev
}

// modify handles INSERT, UPDATE, DELETE and MERGE, at the top level or in
// a WITH query: the target is written, everything else is read.
func (w *walker) modify(kind string, with *pg_query.WithClause, target *pg_query.RangeVar, m protoreflect.Message) {
	w.addKind(kind)
	name := relationName(target)
	w.add(&w.res.TablesWritten, "written", name)
	if kind == w.topKind {
		w.deny(writesData, "writes table %s", name)
	} else {
		w.deny(writesData, "writes table %s with %s", name, label(kind))
	}
	prev := w.write
	w.write = false
	w.with(with, func() { w.fields(m, "with_clause", "relation") })
	w.write = prev
}

// with walks the WITH queries with the names each may see (earlier ones,
// or all of them when RECURSIVE), then rest with all of them visible.
func (w *walker) with(with *pg_query.WithClause, rest func()) {
	if with == nil {
		rest()
		return
	}
	base := len(w.ctes)
	var names []string
	for _, c := range with.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			names = append(names, cte.Ctename)
		}
	}
	for i, c := range with.Ctes {
		w.ctes = w.ctes[:base]
		if with.Recursive {
			w.ctes = append(w.ctes, names...)
		} else {
			w.ctes = append(w.ctes, names[:min(i, len(names))]...)
		}
		w.visit(c.ProtoReflect())
	}
	w.ctes = append(w.ctes[:base], names...)
	rest()
	w.ctes = w.ctes[:base]
}

func (w *walker) rangeVar(rv *pg_query.RangeVar) {
	if rv.Catalogname == "" && rv.Schemaname == "" && slices.Contains(w.ctes, rv.Relname) {
		return // a WITH query, not a table
	}
	name := relationName(rv)
	if w.write {
		w.add(&w.res.TablesWritten, "written", name)
	} else {
		w.add(&w.res.TablesRead, "read", name)
	}
	// pg_catalog comes first in every search path unless placed later on
	// purpose, so an unqualified name here is the catalog's view.
	if rv.Catalogname == "" && (rv.Schemaname == "" || rv.Schemaname == "pg_catalog") && fileViews[rv.Relname] {
		w.deny(touchesFiles, "reads %s, a view over the server's configuration files", name)
	}
}

// fileViews are the catalog views whose rows are read from the server's
// configuration files when queried.
var fileViews = map[string]bool{
	"pg_file_settings":       true,
	"pg_hba_file_rules":      true,
	"pg_ident_file_mappings": true,
}

func (w *walker) copyStmt(s *pg_query.CopyStmt) {
	if s.Relation != nil {
		name := relationName(s.Relation)
		if s.IsFrom {
			w.add(&w.res.TablesWritten, "written", name)
			w.deny(writesData, "writes table %s (COPY FROM)", name)
		} else {
			w.add(&w.res.TablesRead, "read", name)
		}
	}
	switch {
	case s.IsProgram:
		w.deny(executesCode, "runs a program on the server (COPY PROGRAM)")
	case s.Filename != "":
		w.deny(touchesFiles, "reads or writes a server file (COPY with a file name)")
	}
	// COPY (query) TO STDOUT only outputs data, but it is not a query: it
	// switches the connection into the COPY protocol and a client or
	// connector may mishandle it. SELECT does the same job, so COPY is
	// never read-only.
	w.deny(noEffect, "is COPY, which is never treated as read-only (use SELECT)")
	prev := w.write
	w.write = false
	if s.Query != nil {
		w.visit(s.Query.ProtoReflect())
	}
	if s.WhereClause != nil {
		w.visit(s.WhereClause.ProtoReflect())
	}
	w.write = prev
}

func (w *walker) explainStmt(s *pg_query.ExplainStmt) {
	for _, o := range s.Options {
		// Any ANALYZE option counts, whatever its value: EXPLAIN (ANALYZE
		// false) is rare and not worth reading values for.
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") {
			w.deny(noEffect, "runs the statement it explains (EXPLAIN ANALYZE)")
		}
	}
	if s.Query == nil {
		return
	}
	if _, ok := s.Query.GetNode().(*pg_query.Node_SelectStmt); !ok {
		// Without ANALYZE nothing runs, but the conservative answer keeps
		// the inner statement's effects and is never read-only.
		w.deny(noEffect, "explains %s; EXPLAIN of anything but SELECT is not read-only, even without ANALYZE",
			label(kindOf(nodeMessage(s.Query))))
	}
	w.visit(s.Query.ProtoReflect())
}

func (w *walker) setStmt(s *pg_query.VariableSetStmt) {
	name := strings.ToLower(s.Name)
	switch {
	case name == "transaction" || name == "session characteristics" || strings.HasPrefix(name, "transaction_"):
		w.deny(controlsTransaction, "changes transaction characteristics")
	case name == "role" || name == "session_authorization" || name == "session authorization":
		w.deny(changesPrivileges, "changes the current role")
	}
	if name == "" {
		w.deny(changesSettings, "changes settings")
	} else {
		w.deny(changesSettings, "changes setting %s", name)
	}
}

// utility handles statements judged by their type alone (DDL, privileges,
// transaction control...), walking their content for tables and functions.
func (w *walker) utility(m protoreflect.Message, info statementInfo) {
	kind := statementKind(m.Interface(), info)
	w.addKind(kind)
	if len(info.effects) == 0 {
		w.denyAs(kind, noEffect, "%s", info.note)
	}
	var texts []string
	for _, e := range info.effects {
		texts = append(texts, e.String())
	}
	for i, e := range info.effects {
		if i == 0 {
			w.denyAs(kind, e, "%s", strings.Join(texts, " and "))
		} else {
			w.deny(e, "")
		}
	}
	if drop, ok := m.Interface().(*pg_query.DropStmt); ok {
		w.dropped(drop)
	}
	prev := w.write
	w.write = true
	w.fields(m)
	w.write = prev
}

// dropped records the relations a DROP names; they are lists of names,
// not relation nodes.
func (w *walker) dropped(s *pg_query.DropStmt) {
	switch s.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_FOREIGN_TABLE,
		pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX:
	default:
		return
	}
	for _, o := range s.Objects {
		if parts, ok := stringParts(o.GetList().GetItems()); ok && len(parts) > 0 {
			w.add(&w.res.TablesWritten, "written", joinName(parts))
		}
	}
}

// funcCall judges a function call against the allow-list: only a built-in
// (unqualified or in pg_catalog) known read-only passes.
func (w *walker) funcCall(fc *pg_query.FuncCall) {
	parts, ok := stringParts(fc.Funcname)
	if !ok || len(parts) == 0 {
		w.deny(executesCode, "calls a function whose name cannot be read")
		return
	}
	name := joinName(parts)
	w.add(&w.res.Functions, "function", name)
	base := parts[len(parts)-1]
	builtin := ""
	if isBuiltinSchema(parts) {
		builtin = w.cat.functions[base]
	}
	if builtin == "read" {
		return // the generator already kept pattern matches off the allow-list
	}
	if builtin != "" && base == "ts_rewrite" && len(fc.Args) == 3 {
		return // only the two-argument form runs the query text it is given
	}
	// Patterns apply in any schema: public.dblink_exec is still dblink.
	class := w.cat.sideEffect(base)
	if class != "" {
		e := classEffect(class)
		w.deny(e, "calls %s, which %s", name, e)
	}
	switch {
	case builtin == "":
		w.deny(executesCode, "calls %s, which is not a known read-only built-in function", name)
	case !readOnlyClass(builtin) && class == "":
		e := classEffect(builtin)
		w.deny(e, "calls %s, which %s", name, e)
	}
}

// typeName judges a type named in a cast, a column definition list or
// anywhere else: converting a value to a type the database defines runs
// that type's input, and a domain's CHECK, which may call any function.
func (w *walker) typeName(t *pg_query.TypeName) {
	parts, ok := stringParts(t.Names)
	if !ok || len(parts) == 0 {
		w.deny(executesCode, "uses a type whose name cannot be read")
		return
	}
	if isBuiltinSchema(parts) && w.cat.types[parts[len(parts)-1]] {
		return
	}
	w.deny(executesCode, "uses type %s, which is not a built-in type (its input, or a domain's CHECK, may run code)", joinName(parts))
}

// operator judges an operator name (possibly schema-qualified) against the
// allow-list: a user-defined operator runs user code.
func (w *walker) operator(names []*pg_query.Node) {
	parts, ok := stringParts(names)
	if ok && len(parts) > 0 && isBuiltinSchema(parts) && w.cat.operators[parts[len(parts)-1]] {
		return
	}
	op := "?"
	if ok && len(parts) == 1 {
		op = parts[0]
	} else if ok && len(parts) > 1 {
		op = "OPERATOR(" + joinName(parts[:len(parts)-1]) + "." + parts[len(parts)-1] + ")"
	}
	w.deny(executesCode, "uses operator %s, which is not a known read-only built-in operator", op)
}

// tableSample allows only the built-in sampling methods; others are
// extension or user functions.
func (w *walker) tableSample(s *pg_query.RangeTableSample) {
	parts, ok := stringParts(s.Method)
	if ok && len(parts) > 0 && isBuiltinSchema(parts) {
		if m := parts[len(parts)-1]; m == "system" || m == "bernoulli" {
			return
		}
	}
	method := "?"
	if ok {
		method = joinName(parts)
	}
	w.deny(executesCode, "samples with method %s, which is not a built-in sampling method", method)
}

// deny records that the current statement is not read-only: it sets the
// effect's flag and adds a reason unless format is empty.
func (w *walker) deny(e effect, format string, args ...any) {
	w.denyAs(w.topKind, e, format, args...)
}

// denyAs is deny for a statement of the given kind, which may be nested in
// the top-level one.
func (w *walker) denyAs(kind string, e effect, format string, args ...any) {
	w.readOnly = false
	if f := w.res.flag(e); f != nil {
		*f = true
	}
	if format == "" {
		return
	}
	what := fmt.Sprintf(format, args...)
	reason := fmt.Sprintf("statement %d (%s) %s", w.stmt, label(w.topKind), what)
	if kind != w.topKind {
		reason = fmt.Sprintf("statement %d (%s) contains %s, which %s", w.stmt, label(w.topKind), label(kind), what)
	}
	if w.seen["reason\x00"+reason] {
		return
	}
	w.seen["reason\x00"+reason] = true
	switch {
	case len(w.res.Reasons) < maxReasons:
		w.res.Reasons = append(w.res.Reasons, reason)
	case len(w.res.Reasons) == maxReasons:
		w.res.Reasons = append(w.res.Reasons, "further reasons left out")
	}
}

func (w *walker) addKind(kind string) {
	w.add(&w.res.Kinds, "kind", kind)
}

// add appends value to list once; key names the list for deduplication.
func (w *walker) add(list *[]string, key, value string) {
	k := key + "\x00" + value
	if w.seen[k] {
		return
	}
	w.seen[k] = true
	*list = append(*list, value)
}

func isBetween(k pg_query.A_Expr_Kind) bool {
	switch k {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return true
	}
	return false
}

// isBuiltinSchema says whether a qualified name resolves among the
// built-ins: unqualified, or qualified with pg_catalog.
func isBuiltinSchema(parts []string) bool {
	return len(parts) == 1 || len(parts) == 2 && parts[0] == "pg_catalog"
}

func lockStrength(s pg_query.LockClauseStrength) string {
	switch s {
	case pg_query.LockClauseStrength_LCS_FORKEYSHARE:
		return "FOR KEY SHARE"
	case pg_query.LockClauseStrength_LCS_FORSHARE:
		return "FOR SHARE"
	case pg_query.LockClauseStrength_LCS_FORNOKEYUPDATE:
		return "FOR NO KEY UPDATE"
	case pg_query.LockClauseStrength_LCS_FORUPDATE:
		return "FOR UPDATE"
	}
	return "row lock"
}

// stringParts reads a name list (String nodes); ok is false when any part
// is something else.
func stringParts(nodes []*pg_query.Node) ([]string, bool) {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		s, ok := n.GetNode().(*pg_query.Node_String_)
		if !ok {
			return nil, false
		}
		parts = append(parts, s.String_.Sval)
	}
	return parts, true
}

func relationName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return "?"
	}
	var parts []string
	for _, p := range []string{rv.Catalogname, rv.Schemaname, rv.Relname} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return joinName(parts)
}

// joinName writes a qualified name in the normal form described on Result.
func joinName(parts []string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = quoteIdent(p)
	}
	return strings.Join(quoted, ".")
}

func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '$'):
		default:
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
