package identity

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHashAPIKey(t *testing.T) {
	// SHA-256 of "abc" (FIPS 180-2 test vector).
	want := "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashAPIKey("abc"); got != want {
		t.Errorf("HashAPIKey(abc) = %s, want %s", got, want)
	}
	if _, err := ParseAPIKeyHash(HashAPIKey("any key")); err != nil {
		t.Errorf("HashAPIKey output does not validate: %v", err)
	}
}

func TestAPIKeys(t *testing.T) {
	cfg := Config{APIKeys: []APIKey{
		{ID: "ci", Hash: HashAPIKey("ci-key-0123456789"), Principal: Principal{ID: "ci-bot", Roles: []string{"deployer"}, Tenant: "acme"}},
		{ID: "ops", Hash: HashAPIKey("ops-key-abcdef"), Principal: Principal{ID: "ops", Clearance: "secret"}},
	}}
	w := newWarden(t, cfg, Options{})
	wantCI := Principal{ID: "ci-bot", Roles: []string{"deployer"}, Tenant: "acme", Method: MethodAPIKey}

	t.Run("bearer", func(t *testing.T) {
		got := w.call(t, bearer("ci-key-0123456789")).principal(t)
		if diff := cmp.Diff(wantCI, got); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	})
	t.Run("X-API-Key", func(t *testing.T) {
		got := w.call(t, http.Header{"X-Api-Key": {"ops-key-abcdef"}}).principal(t)
		if diff := cmp.Diff(Principal{ID: "ops", Clearance: "secret", Method: MethodAPIKey}, got); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		w.call(t, bearer("ci-key-0123456788")).wantRefused(t, http.StatusUnauthorized,
			challengeFor(w, "invalid_token", "API key is not recognized"), "invalid_token", "API key is not recognized")
		w.call(t, http.Header{"X-Api-Key": {"nope"}}).wantRefused(t, http.StatusUnauthorized,
			challengeFor(w, "invalid_token", "API key is not recognized"), "invalid_token", "API key is not recognized")
	})
	t.Run("missing", func(t *testing.T) {
		desc := "authentication required: send a bearer token or an API key"
		w.call(t, nil).wantRefused(t, http.StatusUnauthorized, challengeFor(w, "", ""), "unauthorized", desc)
	})
	t.Run("two credentials", func(t *testing.T) {
		desc := "send one credential: a single Authorization or X-API-Key header"
		h := http.Header{"Authorization": {"Bearer ci-key-0123456789"}, "X-Api-Key": {"ops-key-abcdef"}}
		w.call(t, h).wantRefused(t, http.StatusBadRequest, challengeFor(w, "invalid_request", desc), "invalid_request", desc)
	})
	t.Run("basic scheme", func(t *testing.T) {
		desc := "the Authorization header must use the Bearer scheme"
		h := http.Header{"Authorization": {"Basic Y2k6Y2kta2V5"}}
		w.call(t, h).wantRefused(t, http.StatusBadRequest, challengeFor(w, "invalid_request", desc), "invalid_request", desc)
	})
	t.Run("principal is not shared between requests", func(t *testing.T) {
		a := w.auth
		_, p, ok := a.apiKeys.lookup("ci-key-0123456789")
		if !ok {
			t.Fatal("lookup failed")
		}
		p.Roles[0] = "admin"
		if got := w.call(t, bearer("ci-key-0123456789")).principal(t); got.Roles[0] != "deployer" {
			t.Errorf("roles = %v after a caller changed its copy", got.Roles)
		}
	})
}

func TestAnonymous(t *testing.T) {
	cfg := Config{
		APIKeys:   []APIKey{{ID: "ci", Hash: HashAPIKey("ci-key"), Principal: Principal{ID: "ci-bot"}}},
		Anonymous: &Principal{ID: "guest", Roles: []string{"visitor"}},
	}
	w := newWarden(t, cfg, Options{})
	got := w.call(t, nil).principal(t)
	if diff := cmp.Diff(Principal{ID: "guest", Roles: []string{"visitor"}, Method: MethodAnonymous}, got); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	// A bad credential is refused, never downgraded to anonymous.
	w.call(t, bearer("wrong")).wantRefused(t, http.StatusUnauthorized,
		challengeFor(w, "invalid_token", "API key is not recognized"), "invalid_token", "API key is not recognized")
	if got := w.call(t, bearer("ci-key")).principal(t); got.ID != "ci-bot" {
		t.Errorf("with a key: principal %q, want ci-bot", got.ID)
	}
}

// jwtFixture is an issuer with RSA, EC and Ed25519 keys behind a JWKS
// endpoint, and a Warden that trusts it.
