package audit_test

import (
	"go/build"
	"strings"
	"testing"
)

// The audit log sits below the pipeline: it imports no other part of Warden,
// and storage back ends import it, never the reverse.
func TestAuditImportsNothingOfWarden(t *testing.T) {
	for _, dir := range []string{".", "audittest"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/wardenmcp/warden/") && imp != "github.com/wardenmcp/warden/internal/audit" {
				t.Errorf("%s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
