package mask

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPure holds the package to its place in the architecture: masking
// imports the standard library, its own subpackages and the JSON string
// layer only, nothing of the pipeline, the protocol library or storage.
func TestPure(t *testing.T) {
	for _, dir := range []string{".", "detect"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
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
				first := strings.Split(p, "/")[0]
				if strings.Contains(first, ".") && !strings.HasPrefix(p, "github.com/wardenmcp/warden/internal/mask/") && p != "github.com/wardenmcp/warden/internal/jsonstr" {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
