package sqlclass

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ambiguousString reports whether sql holds a plain string literal with a
// backslash right before a quote. The parser reads such a literal as the
// server does with standard_conforming_strings on; a server with it off
// reads the backslash as escaping the quote, so the string ends elsewhere
// and text the parser saw inside a string can run as SQL:
//
//	SELECT 'a\' , ' ; DELETE FROM t; --'
//
// Escape strings (E'...'), dollar quoting and comments read the same
// either way.
func ambiguousString(sql string) (bool, error) {
	if !strings.Contains(sql, `\'`) {
		return false, nil // the common case costs one search
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return false, err
	}
	for _, tok := range scan.Tokens {
		if tok.Token != pg_query.Token_SCONST || tok.Start < 0 || int(tok.End) > len(sql) || tok.Start > tok.End {
			continue
		}
		raw := sql[tok.Start:tok.End]
		if raw == "" || raw[0] == 'e' || raw[0] == 'E' || raw[0] == '$' {
			continue
		}
		if strings.Contains(raw, `\'`) {
			return true, nil
		}
	}
	return false, nil
}
