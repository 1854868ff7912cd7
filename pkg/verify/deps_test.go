package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies holds the package's promise to upstream authors: it
// stands alone, importing the standard library and the JWT library only.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/wardenmcp/warden/pkg/verify": true,
		"github.com/golang-jwt/jwt/v5":           true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/") || strings.HasSuffix(pkg, "/internal") {
			t.Errorf("pkg/verify depends on internal package %s", pkg)
		} else if !allowed[pkg] {
			t.Errorf("pkg/verify depends on %s; upstream authors would inherit it", pkg)
		}
	}
}
