// Package sqlclass classifies PostgreSQL text for policy: which statements
// it holds, whether any of them writes, changes schema, privileges or
// settings, controls the transaction, takes locks, runs code, touches server
// files or other connections, which tables and functions it uses, and
// whether it is read-only.
//
// The text is parsed by the real PostgreSQL parser (pg_query) and the whole
// parse tree is walked. Judgement is by allow-list: only SELECT, SHOW and
// EXPLAIN without ANALYZE of a SELECT can be read-only; every node type,
// function, operator and sampling method must be known read-only, and
// anything unknown, unparseable or unexpected makes the text not read-only.
//
// Known limits, covered by the second layer (a read-only role and
// transaction at the database): the classifier sees text, not the database,
// so it cannot see what a view, a rule, row-level security, a domain check,
// a cast function or a trigger runs, nor a function called through
// attribute notation (t.f meaning f(t)), nor a user function in the
// search_path that overloads a built-in name with other argument types.
// Built-in names are judged by name: an extension's overload of a built-in
// operator symbol is taken as the built-in. The allow-list comes from
// PostgreSQL 15 while the parser knows PostgreSQL 17 syntax, so functions
// newer than 15 (system_user, for one) are unknown and not read-only.
//
// The text is lexed as the server does with standard_conforming_strings on
// and client_encoding UTF8 (the defaults). A plain string literal with a
// backslash before a quote, the one place where standard_conforming_strings
// moves a string's end, is refused; a connection executing classified text
// should still keep both settings.
//
// pg_sleep and its kin are reported in Delays and are not read-only; SHOW
// is read-only.
// COPY is never read-only, not even COPY (SELECT ...) TO STDOUT.
package sqlclass

import (
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MaxInputBytes is the longest text classified; longer text is refused as
// unparseable.
const MaxInputBytes = 1 << 20

// Classifier classifies SQL text. The request path depends on this
// interface, not on the parser.
type Classifier interface {
	Classify(sql string) *Result
}

// Parser is the Classifier backed by the PostgreSQL parser.
type Parser struct{}

var _ Classifier = Parser{}

// Classify implements Classifier.
func (Parser) Classify(sql string) *Result { return Classify(sql) }

// Classify parses sql and classifies every statement in it. It never
// panics: an internal failure yields a result that is not read-only.
func Classify(sql string) (res *Result) {
	defer func() {
		if p := recover(); p != nil {
			res = newResult()
			res.Error = fmt.Sprintf("internal classifier error: %v", p)
			res.Reasons = append(res.Reasons, "the classifier failed on this text")
		}
	}()
	res = newResult()
	if msg := refuse(sql); msg != "" {
		return unparseable(res, msg)
	}
	cat, err := loadCatalog()
	if err != nil {
		res.Error = err.Error()
		res.Reasons = append(res.Reasons, "the classifier's allow-list did not load")
		return res
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return unparseable(res, err.Error())
	}
	res.Statements = len(tree.Stmts)
	if res.Statements == 0 {
		res.Reasons = append(res.Reasons, "the text holds no statement")
		return res
	}
	w := newWalker(cat, res)
	readOnly := true
	for i, raw := range tree.Stmts {
		if !w.statement(i, raw) {
			readOnly = false
		}
	}
	switch ambiguous, err := ambiguousString(sql); {
	case err != nil:
		res.Reasons = append(res.Reasons, "the text cannot be scanned: "+err.Error())
	case ambiguous:
		res.Reasons = append(res.Reasons, "a string literal has a backslash before a quote, "+
			"which reads differently when standard_conforming_strings is off (use E'' or dollar quoting)")
	}
	res.ReadOnly = readOnly && len(res.Reasons) == 0
	return res
}

// refuse rejects text the parser and the server might read differently:
// the parser stops at a NUL byte, and invalid UTF-8 depends on the
// connection's encoding.
func refuse(sql string) string {
	switch {
	case len(sql) > MaxInputBytes:
		return fmt.Sprintf("text is longer than %d bytes", MaxInputBytes)
	case strings.IndexByte(sql, 0) >= 0:
		return "text contains a NUL byte"
	case !utf8.ValidString(sql):
		return "text is not valid UTF-8"
	}
	return ""
}

func unparseable(res *Result, msg string) *Result {
	res.Unparseable = true
	res.Error = msg
	res.Reasons = append(res.Reasons, "the text cannot be parsed: "+msg)
	return res
}
