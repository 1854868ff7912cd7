package identity

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPure holds the package to its place in the architecture: identity
// imports the standard library, the JWT library and the YAML decoder only,
// nothing of the pipeline, policy, the protocol library or storage.
func TestPure(t *testing.T) {
	allowed := []string{"github.com/golang-jwt/jwt/v5", "go.yaml.in/yaml/v3"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.Contains(strings.Split(p, "/")[0], ".") && !slices.Contains(allowed, p) {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
