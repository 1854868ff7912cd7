package postgres_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// sqlCase is one line of a SQL corpus: a statement and whether a read-only
// policy must allow or deny it.
type sqlCase struct {
	ID     string `json:"id"`
	SQL    string `json:"sql"`
	Expect string `json:"expect"`
	Why    string `json:"why"`
}

// Paths of the example and of the corpora, from this package's directory.
const (
	exampleDir      = "../../examples/postgres"
	classifierCases = "../../internal/classify/sqlclass/testdata/cases.jsonl"
	sharedCorpus    = "sql-readonly.jsonl"
)

// sharedCorpusPaths are where the shared SQL corpus may be: beside the
// repository's checkout, as CI lays it out, or at the shared directory.
var sharedCorpusPaths = []string{
	filepath.Join("..", "..", "..", "shared", "corpus", sharedCorpus),
	filepath.Join("/work", "shared", "corpus", sharedCorpus),
}

// readCases reads a JSON-lines corpus strictly: unknown fields, duplicate
// ids and expectations other than allow and deny are errors.
func readCases(path string) ([]sqlCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cases []sqlCase
	ids := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c sqlCase
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if c.ID == "" || ids[c.ID] || (c.Expect != "allow" && c.Expect != "deny") {
			return nil, fmt.Errorf("%s:%d: case %q: want a unique id and expect allow or deny", path, line, c.ID)
		}
		ids[c.ID] = true
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return cases, nil
}

// corpus is the SQL the tests send: the shared read-only corpus and the
// classifier's own cases, each case id prefixed with its source.
type corpus struct {
	shared     []sqlCase // sql-readonly.jsonl
	classifier []sqlCase // internal/classify/sqlclass/testdata/cases.jsonl
}

// loadCorpus reads both corpora. The classifier's cases are part of the
// repository and must be there; the shared corpus lives outside it, so its
// absence skips the test with a message saying where it was looked for.
func loadCorpus(t testing.TB) corpus {
	t.Helper()
	var c corpus
	var err error
	if c.classifier, err = readCases(classifierCases); err != nil {
		t.Fatalf("classifier cases: %v", err)
	}
	for _, p := range sharedCorpusPaths {
		c.shared, err = readCases(p)
		if err == nil {
			return c
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("shared corpus: %v", err)
		}
	}
	t.Skipf("shared SQL corpus %s not found (looked in %v)", sharedCorpus, sharedCorpusPaths)
	return c
}

// all returns every case, shared corpus first, ids prefixed by source.
func (c corpus) all() []sqlCase {
	out := make([]sqlCase, 0, len(c.shared)+len(c.classifier))
	for _, x := range c.shared {
		x.ID = "shared/" + x.ID
		out = append(out, x)
	}
	for _, x := range c.classifier {
		x.ID = "sqlclass/" + x.ID
		out = append(out, x)
	}
	return out
}

// denied returns every case a read-only policy must deny.
func (c corpus) denied() []sqlCase {
	var out []sqlCase
	for _, x := range c.all() {
		if x.Expect == "deny" {
			out = append(out, x)
		}
	}
	return out
}
