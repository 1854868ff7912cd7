package sqlclass

import (
	"encoding/json"
	"testing"
)

// FuzzClassify checks that classification never panics, that every verdict
// is explained, and that a read-only verdict only ever covers plain SELECT,
// SHOW, or EXPLAIN of a plain SELECT (re-checked on a fresh parse).
func FuzzClassify(f *testing.F) {
	for _, path := range corpora {
		for _, c := range loadCases(f, path) {
			f.Add(c.SQL)
		}
	}
	f.Fuzz(func(t *testing.T, sql string) {
		r := Classify(sql)
		if r.ReadOnly == (len(r.Reasons) > 0) {
			t.Fatalf("ReadOnly %v with reasons %q", r.ReadOnly, r.Reasons)
		}
		if r.Unparseable && (r.ReadOnly || r.Error == "") {
			t.Fatalf("unparseable result must be denied with an error: %+v", r)
		}
		checkInvariant(t, sql, r)
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		if m := r.Map(); m["read_only"] != r.ReadOnly {
			t.Fatalf("Map read_only %v, result %v", m["read_only"], r.ReadOnly)
		}
	})
}
