package grant_test

import (
	"go/build"
	"strings"
	"testing"
)

// Grants sit below the pipeline: of Warden they import only the policy
// package's task type, and stores import them, never the reverse.
func TestGrantImportsOnlyPolicy(t *testing.T) {
	allowed := map[string]bool{
		"github.com/wardenmcp/warden/internal/grant":  true,
		"github.com/wardenmcp/warden/internal/policy": true,
	}
	for _, dir := range []string{".", "granttest"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/wardenmcp/warden/") && !allowed[imp] {
				t.Errorf("%s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
