package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestUpstreamRedirectsAreNotFollowed: an upstream URL that redirects
// elsewhere does not take Warden's requests, with their headers and
// per-call credentials, to the place it points to.
func TestUpstreamRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := startUpstream(t, newServer("elsewhere", nil), true)
	var redirected atomic.Int64
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)

	startGateway(t, "upstreams:\n"+httpUpstreamYAML("shop", redirector.URL, []string{"*"}))
	if redirected.Load() == 0 {
		t.Fatal("the gateway never contacted its upstream")
	}
	if posts, _ := elsewhere.snapshot(); posts != 0 {
		t.Fatalf("the redirect's target received %d requests; a redirect must not be followed", posts)
	}
}
