package admin_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
)

// chromiumPath is where the Debian chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// browserTools returns the Node binary and the node_modules directory
// scripts/npm-deps.sh installs, skipping the test when the browser or
// either of them is missing.
func browserTools(t *testing.T) (node, modules string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no browser at %s (scripts/setup.sh installs it): %v", chromiumPath, err)
	}
	cache := os.Getenv("WARDEN_CACHE")
	if cache == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(root, ".cache")
	}
	modules = filepath.Join(cache, "npm", "node_modules")
	node = filepath.Join(modules, ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		t.Skipf("no Node at %s (scripts/npm-deps.sh installs it): %v", node, err)
	}
	if _, err := os.Stat(filepath.Join(modules, "playwright-core", "package.json")); err != nil {
		t.Skipf("playwright-core is not installed in %s (scripts/npm-deps.sh installs it): %v", modules, err)
	}
	return node, modules
}

// TestConsoleApproveInBrowser drives the console with a real browser: the
// login form, the session cookie, the CSRF token and the redirects all go
// through Chromium rather than a hand-built client.
func TestConsoleApproveInBrowser(t *testing.T) {
	node, modules := browserTools(t)
	s := newApprovalServer(t)
	r := s.escalate(t, "digest-a")
	const comment = "checked the order in the browser"
	shot := filepath.Join(t.TempDir(), "approved.png")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "approve.mjs"),
		s.url, r.ID, "shop.refund_order", `"order_id": "12345"`, comment)
	cmd.Env = append(os.Environ(),
		"NODE_PATH="+modules,
		"WARDEN_ADMIN_KEY="+adminKey,
		"WARDEN_SCREENSHOT="+shot,
	)
	// The browser may hold the output pipes after Node is killed.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the browser run did not finish within 60 s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("approve.mjs: %v\n%s", err, out)
	}

	got, err := s.broker.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != approval.StateApproved || got.DecidedBy != "ops" || got.Comment != comment {
		t.Fatalf("after approving in the browser: state %s, decided by %q, comment %q", got.State, got.DecidedBy, got.Comment)
	}
	if ev := s.audited(); len(ev) != 1 || ev[0].Action != admin.ActionApprove || ev[0].Actor != "ops" {
		t.Fatalf("audit = %+v", ev)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
}
