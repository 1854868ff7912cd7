package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/credential"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/pkg/verify"
)

// TestPerCallCredential: every forwarded tool call carries a credential the
// upstream can verify with pkg/verify against Warden's JWKS endpoint — in
// _meta and as the HTTP bearer token — bound to the upstream, the tool and
// the exact argument bytes, and good once.
func TestPerCallCredential(t *testing.T) {
	ctx := testContext(t)
	type seen struct {
		meta   string
		bearer string
		args   []byte
	}
	var mu sync.Mutex
	var got []seen
	up := newServer("shop", nil)
	up.AddTool(&mcp.Tool{Name: "refund", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			tok, _ := verify.FromMeta(req.Params.Meta)
			var bearer string
			if req.Extra != nil {
				bearer = strings.TrimPrefix(req.Extra.Header.Get("Authorization"), "Bearer ")
			}
			mu.Lock()
			got = append(got, seen{meta: tok, bearer: bearer, args: append([]byte(nil), req.Params.Arguments...)})
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
		})
	u := startUpstream(t, up, false)

	cfg, err := config.Parse([]byte("upstreams:\n"+httpUpstreamYAML("shop", u.URL, []string{"*"})), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := credential.NewKeySet(credential.KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := credential.NewMinter(keys, credential.MinterOptions{Issuer: "warden-test"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Config: cfg, Logger: testLogger(t), Sealer: testSealer(t),
		Credentials: minter, JWKS: credential.JWKSHandler(keys, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Close(cctx)
	})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)

	for _, rev := range []string{revSessions, revStateless} {
		cs := connectHTTP(t, srv.URL+"/mcp", rev, nil)
		if txt := callText(ctx, t, cs, "shop.refund", map[string]any{"order_id": "12345", "amount": 1.5e1}); txt != "ok" {
			t.Fatalf("%s: call result %q", rev, txt)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("upstream saw %d calls, want 2", len(got))
	}
	v, err := verify.New(verify.Options{Issuer: "warden-test", Audience: "shop", JWKSURL: srv.URL + gateway.JWKSPath, HTTPClient: http.DefaultClient},
		verify.NewMemoryReplayCache(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range got {
		if s.meta == "" || s.meta != s.bearer {
			t.Fatalf("call %d: credential in _meta %q and bearer %q, want the same token in both", i, s.meta, s.bearer)
		}
		claims, err := v.Verify(ctx, s.meta, verify.Expect{Tool: "refund", Op: "tools/call", Args: s.args})
		if err != nil {
			t.Fatalf("call %d: credential does not verify for the bytes the upstream received (%s): %v", i, s.args, err)
		}
		if claims.Subject != "anonymous" {
			t.Errorf("call %d: subject %q, want the caller", i, claims.Subject)
		}
		if _, err := v.Verify(ctx, s.meta, verify.Expect{Tool: "refund", Op: "tools/call", Args: s.args}); err == nil {
			t.Errorf("call %d: a credential verified twice; it must be single use", i)
		}
	}
	// A credential for these bytes is worthless for other arguments.
	other := []byte(`{"amount":10000,"order_id":"12345"}`)
	if _, err := v.Verify(ctx, got[0].meta, verify.Expect{Tool: "refund", Op: "tools/call", Args: other}); err == nil {
		t.Error("a credential verified for arguments other than those it was minted for")
	}
}
