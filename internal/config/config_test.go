package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/config"
)

const upstream = "version: 1\nupstreams:\n  shop: {url: \"http://127.0.0.1:9/mcp\"}\n"

func TestParseRefusesNegativeDurations(t *testing.T) {
	for _, field := range []string{"call_timeout: -1s", "shutdown_timeout: -5s", "credentials: {rotate_every: -1h}"} {
		_, err := config.Parse([]byte(upstream+field+"\n"), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s: err = %v, want a negative-duration error", field, err)
		}
	}
	if _, err := config.Parse([]byte(upstream+"call_timeout: 30s\n"), t.TempDir()); err != nil {
		t.Errorf("call_timeout: 30s: %v", err)
	}
}

func TestParseRequiresTheStdioPrincipalsID(t *testing.T) {
	_, err := config.Parse([]byte(upstream+"stdio_principal: {roles: [admin]}\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "stdio_principal.id is required") {
		t.Errorf("err = %v, want stdio_principal.id is required", err)
	}
	c, err := config.Parse([]byte(upstream+"stdio_principal: {id: alice, roles: [admin]}\n"), t.TempDir())
	if err != nil || c.StdioPrincipal.ID != "alice" {
		t.Errorf("with an id: %v, %+v", err, c.StdioPrincipal)
	}
}

func TestAuditKeyDefaultsBesideTheStore(t *testing.T) {
	dir := t.TempDir()
	c, err := config.Parse([]byte(upstream+"store: data/w.db\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data", "w.audit-key.pem"); c.Audit.KeyFile != want {
		t.Errorf("audit key file %q, want %q (where warden audit verify looks)", c.Audit.KeyFile, want)
	}
}
