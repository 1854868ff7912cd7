package credential

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenmcp/warden/pkg/verify"
)

// RFC 8037 appendix A.3: the thumbprint of the appendix A.2 public key.
func TestThumbprintMatchesRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(ed25519.PublicKey(x)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func TestJWKSHandler(t *testing.T) {
	keys, err := NewKeySet(KeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(JWKSHandler(keys, 90*time.Second))
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %s", resp.Status)
	}
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=90" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("published %d keys, want active and next", len(doc.Keys))
	}
	want := keys.PublicKeys()
	for _, k := range doc.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["use"] != "sig" || k["alg"] != "EdDSA" || len(k) != 6 {
			t.Errorf("JWK = %v, want exactly kty OKP, crv Ed25519, x, kid, use sig, alg EdDSA", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || !want[k["kid"]].Equal(ed25519.PublicKey(x)) {
			t.Errorf("JWK %s does not carry the key set's public key", k["kid"])
		}
	}
	if doc.Keys[0]["kid"] != keys.ActiveKeyID() {
		t.Errorf("first JWK is %s, want the active key %s", doc.Keys[0]["kid"], keys.ActiveKeyID())
	}

	post, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %s, want 405", post.Status)
	}
}

func TestLoadOrCreateKeySetPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	clock := newFakeClock()
	opts := KeySetOptions{Now: clock.Now}
	keys, err := LoadOrCreateKeySet(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, keyFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", info.Mode().Perm())
	}
	dirInfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode = %v, want 0700", dirInfo.Mode().Perm())
	}

	minter, err := NewMinter(keys, MinterOptions{Issuer: testIssuer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	beforeRestart, _, err := minter.Mint(testClaims())
	if err != nil {
		t.Fatal(err)
	}
	first := keys.ActiveKeyID()
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}

	// A restart keeps the active key and the retired one.
	reloaded, err := LoadOrCreateKeySet(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if reloaded.ActiveKeyID() != keys.ActiveKeyID() {
		t.Errorf("active key after reload = %s, want %s", reloaded.ActiveKeyID(), keys.ActiveKeyID())
	}
	published := reloaded.PublicKeys()
	if len(published) != 3 {
		t.Errorf("published %d keys after reload, want active, next and retired", len(published))
	}
	v, err := verify.New(verify.Options{Issuer: testIssuer, Audience: "orders", Keys: published, Now: clock.Now},
		verify.NewMemoryReplayCache(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(t.Context(), beforeRestart, verify.Expect{Tool: "get_order", Args: testArgs})
	if err != nil {
		t.Fatalf("credential minted before the restart: %v", err)
	}
	if claims.Subject != "alice" {
		t.Errorf("subject = %q", claims.Subject)
	}
	if _, ok := published[first]; !ok {
		t.Error("retired key lost across the restart")
	}
}

func TestLoadOrCreateKeySetRefusesBadFiles(t *testing.T) {
	valid := func(t *testing.T) (string, []byte) {
		dir := t.TempDir()
		if _, err := LoadOrCreateKeySet(dir, KeySetOptions{}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, keyFileName))
		if err != nil {
			t.Fatal(err)
		}
		return dir, data
	}
	tests := []struct {
		name   string
		mangle func(t *testing.T, dir string, data []byte)
		want   string
	}{
		{"readable by others", func(t *testing.T, dir string, _ []byte) {
			if err := os.Chmod(filepath.Join(dir, keyFileName), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "chmod 600"},
		{"not JSON", func(t *testing.T, dir string, _ []byte) {
			write(t, dir, []byte("not json"))
		}, "decode"},
		{"unknown field", func(t *testing.T, dir string, data []byte) {
			write(t, dir, []byte(strings.Replace(string(data), `"version"`, `"extra": 1, "version"`, 1)))
		}, "unknown field"},
		{"kid does not match", func(t *testing.T, dir string, data []byte) {
			var f keyFile
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			f.Active.Kid = f.Next.Kid
			out, _ := json.Marshal(f)
			write(t, dir, out)
		}, "does not match"},
		{"short seed", func(t *testing.T, dir string, data []byte) {
			var f keyFile
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			f.Next.Seed = f.Next.Seed[:8]
			out, _ := json.Marshal(f)
			write(t, dir, out)
		}, "seed is 8 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, data := valid(t)
			tt.mangle(t, dir, data)
			_, err := LoadOrCreateKeySet(dir, KeySetOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreateKeySet error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func write(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, keyFileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRotateKeepsRetiredKeysForRetain(t *testing.T) {
	clock := newFakeClock()
	keys, err := NewKeySet(KeySetOptions{Retain: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	first := keys.ActiveKeyID()
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if _, ok := keys.PublicKeys()[first]; !ok {
		t.Fatal("retired key dropped before Retain")
	}
	clock.Advance(time.Second)
	if _, ok := keys.PublicKeys()[first]; ok {
		t.Fatal("retired key published at Retain")
	}
	// A later rotation forgets it for good.
	if err := keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if n := len(keys.retired); n != 1 {
		t.Errorf("retired list holds %d keys, want 1", n)
	}
}
