package postgres

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/credential"
	"github.com/wardenmcp/warden/internal/testpg"
	"github.com/wardenmcp/warden/pkg/verify"
)

const (
	credIssuer   = "https://warden.test"
	credAudience = "orders-db"
)

// settableClock is a clock the test moves by hand, shared by the minter, the
// key set and the verifier.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// credentialFixture is a connector that requires credentials, with the
// minter Warden would use to issue them.
type credentialFixture struct {
	*fixture
	clock  *settableClock
	keys   *credential.KeySet
	minter *credential.Minter
}

func newCredentialFixture(t *testing.T, tools ...string) *credentialFixture {
	t.Helper()
	clock := &settableClock{now: time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)}
	keys, err := credential.NewKeySet(credential.KeySetOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := credential.NewMinter(keys, credential.MinterOptions{Issuer: credIssuer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Options{
		Issuer:   credIssuer,
		Audience: credAudience,
		KeyFunc: func(context.Context) (map[string]ed25519.PublicKey, error) {
			return keys.PublicKeys(), nil
		},
		Now: clock.Now,
	}, verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{StatementTimeout: noDeadline, Tools: tools, Verifier: v})
	return &credentialFixture{fixture: f, clock: clock, keys: keys, minter: minter}
}

// mint issues a credential for tool with args as the exact argument bytes
// and scope as the task scope (nil for none).
func (f *credentialFixture) mint(t *testing.T, tool, args string, scope map[string]any) string {
	t.Helper()
	token, _, err := f.minter.Mint(credential.Claims{
		Subject: "alice", Audience: credAudience, Task: "grant-1",
		Tool: tool, Op: "tools/call", ArgsDigest: credential.ArgsDigest([]byte(args)), Scope: scope,
	})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// callRaw sends args byte for byte, with meta as the call's _meta.
func (f *credentialFixture) callRaw(t *testing.T, tool, args string, meta mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	res, err := f.client.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: json.RawMessage(args), Meta: meta})
	if err != nil {
		t.Fatalf("CallTool %s %s: protocol error: %v", tool, args, err)
	}
	return res
}

// mustRefuse asserts a credential refusal naming class, and that the refusal
// does not echo the token.
func mustRefuse(t *testing.T, res *mcp.CallToolResult, class, token string) {
	t.Helper()
	msg := mustFail(t, res)
	if !strings.Contains(msg, "Warden credential") || !strings.Contains(msg, class) {
		t.Errorf("refusal %q, want the Warden credential message with %q", msg, class)
	}
	if token != "" && strings.Contains(msg, token) {
		t.Errorf("refusal %q echoes the token", msg)
	}
}

func customerIDs(res Result) []any {
	var out []any
	for _, row := range res.Rows {
		out = append(out, row[0])
	}
	return out
}

const ordersByCustomer = `{"sql":"SELECT customer_id FROM orders ORDER BY id"}`

// TestCredentialScopeConfinesRows: with a Verifier, the scope comes from the
// credential, whether _meta repeats it or not, and keys rotated in after
// the connector started are honoured.
func TestCredentialScopeConfinesRows(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery, ToolListTables)
	scope42 := map[string]any{"customer_id": "42"}

	token := f.mint(t, ToolQuery, ordersByCustomer, scope42)
	got := mustResult(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token}))
	if diff := cmp.Diff([]any{json.Number("42"), json.Number("42")}, customerIDs(got)); diff != "" {
		t.Errorf("credential scoped to 42, no _meta scope, sees (-want +got):\n%s", diff)
	}

	if err := f.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	scope7 := map[string]any{"customer_id": 7}
	token = f.mint(t, ToolQuery, ordersByCustomer, scope7)
	got = mustResult(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token, ScopeMetaKey: scope7}))
	if diff := cmp.Diff([]any{json.Number("7"), json.Number("7"), json.Number("7")}, customerIDs(got)); diff != "" {
		t.Errorf("credential scoped to 7 after a key rotation sees (-want +got):\n%s", diff)
	}

	// A credential without a scope runs unscoped: the policy shows nothing.
	token = f.mint(t, ToolQuery, ordersByCustomer, nil)
	got = mustResult(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token}))
	if got.RowCount != 0 {
		t.Errorf("unscoped credential sees %d orders, want 0", got.RowCount)
	}

	// Every tool needs a credential, not only the SQL ones.
	token = f.mint(t, ToolListTables, `{}`, nil)
	if got := mustResult(t, f.callRaw(t, ToolListTables, `{}`, mcp.Meta{verify.MetaKey: token})); got.RowCount == 0 {
		t.Error("list_tables with a credential listed nothing")
	}
	mustRefuse(t, f.callRaw(t, ToolListTables, `{}`, nil), "no credential presented", "")
}

func TestCallWithoutCredentialIsRefused(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery)
	// A _meta scope alone does not stand in for a credential.
	mustRefuse(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{ScopeMetaKey: map[string]any{"customer_id": "42"}}),
		"no credential presented", "")
	mustRefuse(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: "not-a-jwt"}), "malformed", "")
}

// TestChangedArgumentsAreRefused: a credential covers the exact argument
// bytes it was minted for and the tool it names; a write under a
// credential for other arguments changes nothing.
func TestChangedArgumentsAreRefused(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery, ToolExecute)
	before := testpg.Snapshot(t, f.admin)
	scope := map[string]any{"customer_id": "42"}

	minted := `{"sql":"UPDATE orders SET total = 1 WHERE id = 1"}`
	sent := `{"sql":"UPDATE orders SET total = 0"}`
	token := f.mint(t, ToolExecute, minted, scope)
	mustRefuse(t, f.callRaw(t, ToolExecute, sent, mcp.Meta{verify.MetaKey: token}), "arguments do not match", token)

	// Same statement, another parameter: refused.
	token = f.mint(t, ToolQuery, `{"params":[42],"sql":"SELECT * FROM customers WHERE id = $1"}`, scope)
	mustRefuse(t, f.callRaw(t, ToolQuery, `{"params":[7],"sql":"SELECT * FROM customers WHERE id = $1"}`, mcp.Meta{verify.MetaKey: token}),
		"arguments do not match", token)

	// A credential for query does not run execute.
	token = f.mint(t, ToolQuery, sent, scope)
	mustRefuse(t, f.callRaw(t, ToolExecute, sent, mcp.Meta{verify.MetaKey: token}), "another tool", token)

	if diff := cmp.Diff(before, testpg.Snapshot(t, f.admin)); diff != "" {
		t.Errorf("refused calls changed the database (-before +after):\n%s", diff)
	}
}

func TestReplayedCredentialIsRefused(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery)
	token := f.mint(t, ToolQuery, ordersByCustomer, map[string]any{"customer_id": "42"})
	meta := mcp.Meta{verify.MetaKey: token}
	mustResult(t, f.callRaw(t, ToolQuery, ordersByCustomer, meta))
	mustRefuse(t, f.callRaw(t, ToolQuery, ordersByCustomer, meta), "already been used", token)
}

// TestMetaScopeMustMatchCredential: _meta may repeat the credential's scope
// but not widen, narrow or replace it.
func TestMetaScopeMustMatchCredential(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery)
	for name, tc := range map[string]struct {
		granted, given map[string]any
	}{
		"other customer":         {map[string]any{"customer_id": "42"}, map[string]any{"customer_id": "7"}},
		"number for string":      {map[string]any{"customer_id": "42"}, map[string]any{"customer_id": 42}},
		"extra key":              {map[string]any{"customer_id": "42"}, map[string]any{"customer_id": "42", "region": "eu"}},
		"scope without a grant":  {nil, map[string]any{"customer_id": "7"}},
		"empty instead of grant": {map[string]any{"customer_id": "42"}, map[string]any{}},
	} {
		t.Run(name, func(t *testing.T) {
			token := f.mint(t, ToolQuery, ordersByCustomer, tc.granted)
			msg := mustFail(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token, ScopeMetaKey: tc.given}))
			if !strings.Contains(msg, "differs from the scope its Warden credential grants") {
				t.Errorf("refusal %q, want the scope mismatch message", msg)
			}
		})
	}
	// A _meta scope that is not an object at all is refused too.
	token := f.mint(t, ToolQuery, ordersByCustomer, map[string]any{"customer_id": "42"})
	mustFail(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token, ScopeMetaKey: "42"}))
}

func TestExpiredCredentialIsRefused(t *testing.T) {
	f := newCredentialFixture(t, ToolQuery)
	token := f.mint(t, ToolQuery, ordersByCustomer, map[string]any{"customer_id": "42"})
	f.clock.Advance(f.minter.Lifetime() + verify.DefaultLeeway + time.Second)
	mustRefuse(t, f.callRaw(t, ToolQuery, ordersByCustomer, mcp.Meta{verify.MetaKey: token}), "expired", token)
}
