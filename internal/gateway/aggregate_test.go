package gateway_test

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/gateway"
)

// TestAggregation puts two HTTP upstreams behind one endpoint: tools are
// namespaced, the allow-list hides and refuses what it does not name, and
// a refused call never reaches the upstream.
func TestAggregation(t *testing.T) {
	var aEcho, bEcho, bSecret atomic.Int64
	a := newServer("a", nil)
	addEcho(a, "echo", "a", &aEcho)
	b := newServer("b", nil)
	addEcho(b, "echo", "b", &bEcho)
	addEcho(b, "secret", "b-secret", &bSecret)
	upA := startUpstream(t, a, false)
	upB := startUpstream(t, b, false)

	g := startGateway(t, "upstreams:\n"+
		httpUpstreamYAML("a", upA.URL, []string{"*"})+
		httpUpstreamYAML("b", upB.URL, []string{"echo"}))
	endpoint := serveHTTP(t, g)

	for _, rev := range []string{revSessions, revStateless} {
		t.Run(rev, func(t *testing.T) {
			ctx := testContext(t)
			cs := connectHTTP(t, endpoint, rev, nil)
			if got := cs.InitializeResult().ProtocolVersion; got != rev {
				t.Fatalf("negotiated %s, want %s", got, rev)
			}

			names := listToolNames(ctx, t, cs)
			slices.Sort(names)
			if diff := cmp.Diff([]string{"a.echo", "b.echo"}, names); diff != "" {
				t.Errorf("tools/list (-want +got):\n%s", diff)
			}

			beforeA, beforeB := aEcho.Load(), bEcho.Load()
			if got := callText(ctx, t, cs, "a.echo", map[string]any{"text": "hi"}); got != "a:hi" {
				t.Errorf("a.echo = %q, want %q", got, "a:hi")
			}
			if got := callText(ctx, t, cs, "b.echo", map[string]any{"text": "hi"}); got != "b:hi" {
				t.Errorf("b.echo = %q, want %q", got, "b:hi")
			}
			if aEcho.Load() != beforeA+1 || bEcho.Load() != beforeB+1 {
				t.Errorf("upstream calls: a.echo %d→%d, b.echo %d→%d; want one each", beforeA, aEcho.Load(), beforeB, bEcho.Load())
			}

			msg := toolErrorText(ctx, t, cs, "b.secret", map[string]any{"text": "x"})
			if !strings.Contains(msg, "allow-list") {
				t.Errorf("b.secret denial %q does not name the rule allow-list", msg)
			}
			if n := bSecret.Load(); n != 0 {
				t.Errorf("upstream b received %d calls to secret, want 0", n)
			}

			// An unknown tool is refused before any upstream is asked, with
			// a message naming it.
			msg = toolErrorText(ctx, t, cs, "c.nothing", map[string]any{})
			if !strings.Contains(msg, `no tool named "c.nothing"`) {
				t.Errorf("unknown tool error %q does not say the tool does not exist", msg)
			}
			// Upstream names are not callable without their prefix.
			msg = toolErrorText(ctx, t, cs, "echo", map[string]any{"text": "x"})
			if !strings.Contains(msg, `no tool named "echo"`) {
				t.Errorf("unprefixed call error %q does not say the tool does not exist", msg)
			}
		})
	}
}

// TestAggregationUnprefixed exposes one upstream's tools under their own
// names beside another's namespaced ones.
func TestAggregationUnprefixed(t *testing.T) {
	a := newServer("a", nil)
	addEcho(a, "echo", "a", nil)
	addEcho(a, "shout", "A", nil)
	b := newServer("b", nil)
	addEcho(b, "echo", "b", nil)
	upA := startUpstream(t, a, false)
	upB := startUpstream(t, b, false)

	g := startGateway(t, "upstreams:\n"+
		httpUpstreamYAML("a", upA.URL, []string{"*"}, "unprefixed: true")+
		httpUpstreamYAML("b", upB.URL, []string{"*"}))
	cs := connectHTTP(t, serveHTTP(t, g), revSessions, nil)
	ctx := testContext(t)

	names := listToolNames(ctx, t, cs)
	slices.Sort(names)
	if diff := cmp.Diff([]string{"b.echo", "echo", "shout"}, names); diff != "" {
		t.Errorf("tools/list (-want +got):\n%s", diff)
	}
	if got := callText(ctx, t, cs, "echo", map[string]any{"text": "x"}); got != "a:x" {
		t.Errorf("echo = %q, want a's answer", got)
	}
	if got := callText(ctx, t, cs, "b.echo", map[string]any{"text": "x"}); got != "b:x" {
		t.Errorf("b.echo = %q, want b's answer", got)
	}
	msg := toolErrorText(ctx, t, cs, "a.echo", map[string]any{"text": "x"})
	if !strings.Contains(msg, "no tool named") {
		t.Errorf("a.echo on an unprefixed upstream: %q, want an unknown-tool error", msg)
	}
}

// TestAggregationCollision refuses to start when two upstreams would
// expose the same tool name, and says which two.
func TestAggregationCollision(t *testing.T) {
	// Unprefixed upstream a offers "b.echo", which is also what b's echo
	// is exposed as.
	a := newServer("a", nil)
	addEcho(a, "b.echo", "a", nil)
	b := newServer("b", nil)
	addEcho(b, "echo", "b", nil)
	upA := startUpstream(t, a, false)
	upB := startUpstream(t, b, false)

	g := newGateway(t, "upstreams:\n"+
		httpUpstreamYAML("alpha", upA.URL, []string{"*"}, "unprefixed: true")+
		httpUpstreamYAML("b", upB.URL, []string{"*"}))
	err := g.Start(testContext(t))
	if err == nil {
		t.Fatal("Start succeeded with two upstreams offering tool b.echo")
	}
	for _, want := range []string{"b.echo", "upstream alpha", "upstream b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not mention %q", err, want)
		}
	}
}

// TestNewRefusesMissingCollaborators checks that a gateway is not built
// without its configuration or sealer.
func TestNewRefusesMissingCollaborators(t *testing.T) {
	cfg, err := config.Parse([]byte("upstreams: {}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.New(gateway.Options{Sealer: testSealer(t)}); err == nil {
		t.Error("New without a configuration succeeded")
	}
	if _, err := gateway.New(gateway.Options{Config: cfg}); err == nil {
		t.Error("New without a sealer succeeded")
	}
}
