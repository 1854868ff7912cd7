package audit

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := KeyPathFor(filepath.Join(dir, "warden.db"))
	if path != filepath.Join(dir, "warden.audit-key.pem") {
		t.Fatalf("KeyPathFor = %s", path)
	}
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || !again.Equal(key) {
		t.Fatalf("reloading the key gave a different key (%v)", err)
	}
	pub, err := ReadPublicKey(path)
	if err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("ReadPublicKey of the private key file: %v", err)
	}
	pemPub, err := EncodePublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(pubPath, pemPub, 0o644); err != nil {
		t.Fatal(err)
	}
	if pub, err := ReadPublicKey(pubPath); err != nil || !pub.Equal(key.Public()) {
		t.Fatalf("ReadPublicKey of the public key file: %v", err)
	}
	if len(KeyID(pub)) != 16 {
		t.Fatalf("KeyID = %q", KeyID(pub))
	}
}

func TestLoadOrCreateKeyRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.pem")
	if _, err := LoadOrCreateKey(open); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(open); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key was accepted: %v", err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(garbage); err == nil {
		t.Fatal("a garbage key file was accepted")
	}
	if _, err := LoadOrCreateKey(filepath.Join(dir, "no", "such", "dir", "k.pem")); err == nil {
		t.Fatal("a key was created in a missing directory")
	}
}
