package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

// demoRow is one line of the demo's table.
type demoRow struct {
	Call, Outcome, Detail string
}

var demoRowRE = regexp.MustCompile(`^(\d+)\s+(\S+)\s+.*?\s{2,}(ALLOWED|DENIED)\s+(.*)$`)

func parseDemoRows(t *testing.T, out string) []demoRow {
	t.Helper()
	var rows []demoRow
	for _, line := range strings.Split(out, "\n") {
		m := demoRowRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != len(rows)+1 {
			t.Fatalf("row %q out of order", line)
		}
		rows = append(rows, demoRow{m[2], m[3], m[4]})
	}
	return rows
}

// TestDemoOutcomes pins what the scripted agent is allowed and denied, and
// by which rule: a change in the policy, the validation of arguments, the
// wire checks or the audit log shows here.
func TestDemoOutcomes(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runDemo(context.Background(), &out, dir); err != nil {
		t.Fatalf("runDemo: %v\n%s", err, out.String())
	}
	text := out.String()
	rows := parseDemoRows(t, text)
	want := []struct {
		call, outcome, detailPrefix string
	}{
		{"tools/list", "ALLOWED", "5 of 6 tools visible; hidden by policy: shop.send_email"},
		{"shop.get_order", "ALLOWED", "order 12345: mechanical keyboard, 129.90, delivered"},
		{"shop.refund_order", "ALLOWED", "refunded 15.00 on order 12345"},
		{"shop.refund_order", "DENIED", "large-refunds-need-a-lead: pending approval "},
		{"shop.refund_order", "DENIED", "refunds-over-limit: automated refunds are limited to 100.00"},
		{"shop.refund_order", "DENIED", "refund-needs-reason: a refund needs a reason of at least 5 characters"},
		{"shop.refund_order", "DENIED", "input: arguments: "},
		{"shop.refund_order", "DENIED", "input: arguments: "},
		{"shop.refund_order", "DENIED", `malformed request: duplicate object key "amount"`},
		{"shop.delete_order", "DENIED", "destructive-needs-a-yes: requires confirmation by the user"},
		{"shop.send_email", "DENIED", `role: no role of the caller grants tool "shop.send_email"`},
		{"shop.drop_all_orders", "DENIED", `unknown-tool: no tool named "shop.drop_all_orders"`},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), text)
	}
	for i, w := range want {
		r := rows[i]
		if r.Call != w.call || r.Outcome != w.outcome || !strings.HasPrefix(r.Detail, w.detailPrefix) {
			t.Errorf("step %d = %s %s %q, want %s %s %q…", i+1, r.Call, r.Outcome, r.Detail, w.call, w.outcome, w.detailPrefix)
		}
	}
	// The argument errors name what is wrong.
	if !strings.Contains(rows[6].Detail, "/amount") || !strings.Contains(rows[7].Detail, `"notify"`) {
		t.Errorf("argument errors do not name the argument: %q, %q", rows[6].Detail, rows[7].Detail)
	}
	for _, line := range []string{
		"The shop received 2 tool calls (get_order, refund_order); the denied calls never reached it.",
		"12 calls: 3 allowed, 9 denied; audit: ",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("output lacks %q:\n%s", line, text)
		}
	}
	if !regexp.MustCompile(`(?m)^12 calls: 3 allowed, 9 denied; audit: \d+ records, chain verified$`).MatchString(text) {
		t.Errorf("summary line missing or wrong:\n%s", text)
	}
	checkDemoAudit(t, filepath.Join(dir, "warden.db"))
}

// checkDemoAudit reads the decisions back from the audit database: every
// call is there with the rules behind it, under the demo's principal, the
// one refused at the wire too.
func checkDemoAudit(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sqlite.OpenReadOnly(dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Audit().Query(context.Background(), audit.Filter{Kind: audit.KindDecision, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	type decision struct {
		Principal, Tool string
		Decision        audit.Decision
		Rules           string
	}
	var got []decision
	for _, r := range recs {
		got = append(got, decision{r.Principal, r.Tool, r.Decision, strings.Join(r.Rules, ",")})
	}
	p := demoPrincipal
	want := []decision{
		{p, "", audit.DecisionAllow, "list-filtered"},
		{p, "shop.get_order", audit.DecisionAllow, "reads-are-allowed"},
		{p, "shop.refund_order", audit.DecisionAllow, "small-refunds-are-allowed"},
		{p, "shop.refund_order", audit.DecisionApprove, "large-refunds-need-a-lead"},
		{p, "shop.refund_order", audit.DecisionDeny, "refunds-over-limit"},
		{p, "shop.refund_order", audit.DecisionDeny, "refund-needs-reason"},
		{p, "shop.refund_order", audit.DecisionDeny, "input"},
		{p, "shop.refund_order", audit.DecisionDeny, "input"},
		{p, "", audit.DecisionDeny, "wire"}, // the duplicate key, refused before the pipeline
		{p, "shop.delete_order", audit.DecisionConfirm, "destructive-needs-a-yes"},
		{p, "shop.send_email", audit.DecisionDeny, "role"},
		{p, "shop.drop_all_orders", audit.DecisionDeny, "unknown-tool"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit decisions (-want +got):\n%s", diff)
	}
}

// TestDemoCommandKeep runs `warden demo --keep DIR` and checks that the
// files it promises are there and readable by `warden audit verify`.
func TestDemoCommandKeep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kept")
	cmd := newDemoCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"--keep", dir})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("demo --keep: %v\n%s", err, out.String())
	}
	for _, f := range []string{"warden.yaml", "policy.yaml", "warden.db", "warden.audit-key.pem", "warden.log", "state.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("kept file: %v", err)
		}
	}
	if !strings.Contains(out.String(), "kept "+dir) {
		t.Errorf("output does not say where the files are:\n%s", out.String())
	}
	var verify bytes.Buffer
	if err := runAuditVerify(context.Background(), &verify, io.Discard, filepath.Join(dir, "warden.db"), "", false); err != nil {
		t.Errorf("audit verify on the kept database: %v\n%s", err, verify.String())
	}
	if !strings.Contains(verify.String(), "signatures checked against key") {
		t.Errorf("audit verify did not find the audit key beside the database:\n%s", verify.String())
	}
}

// TestDemoCommandRemovesItsFiles checks that without --keep nothing is
// left behind.
func TestDemoCommandRemovesItsFiles(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	cmd := newDemoCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(nil)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`(?m)^  files\s+(\S+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output names no working directory:\n%s", out.String())
	}
	if !strings.HasPrefix(m[1], os.Getenv("TMPDIR")) {
		t.Errorf("working directory %s is not a temporary directory", m[1])
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("working directory %s left behind (stat: %v)", m[1], err)
	}
}
