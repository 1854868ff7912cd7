// Package credential mints the per-call credentials Warden attaches to each
// request it forwards upstream, and manages the Ed25519 keys that sign them.
//
// A credential is a JWT (alg EdDSA, typ warden-call+jwt) naming the caller,
// the upstream, the operation and the digest of the exact arguments
// forwarded, valid for seconds and for one use. Upstreams check it with
// pkg/verify against the JWKS this package serves; the wire format is
// verify.Claims, defined there once.
package credential

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wardenmcp/warden/pkg/verify"
)

// DefaultRetain is how long a retired key stays published when
// KeySetOptions.Retain is zero: comfortably more than the default
// credential lifetime plus verifiers' default clock skew.
const DefaultRetain = 2 * time.Minute

// keyFileName is the file in a key directory that holds the key set.
const keyFileName = "credential-keys.json"

// KeySetOptions configure a KeySet.
type KeySetOptions struct {
	// Retain is how long a retired key's public half stays published after
	// Rotate. It must cover the longest credential lifetime plus verifiers'
	// clock skew, or credentials minted just before a rotation fail early.
	// Zero means DefaultRetain.
	Retain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// KeySet holds the active signing key, the next key (published ahead of use
// so verifiers with a cached JWKS already know it when it becomes active),
// and retired keys still published until their credentials have expired.
// It is safe for concurrent use.
type KeySet struct {
	dir    string // empty for an in-memory set
	retain time.Duration
	now    func() time.Time

	mu      sync.RWMutex
	active  *signingKey
	next    *signingKey
	retired []retiredKey
}

type signingKey struct {
	kid     string
	private ed25519.PrivateKey
	public  ed25519.PublicKey
	// header is the encoded JOSE header for this key, built once.
	header string
}

type retiredKey struct {
	kid     string
	public  ed25519.PublicKey
	retired time.Time
}

// NewKeySet returns an in-memory key set with fresh keys; its keys are lost
// when the process exits.
func NewKeySet(opts KeySetOptions) (*KeySet, error) {
	ks := newKeySet("", opts)
	active, err := generateKey()
	if err != nil {
		return nil, err
	}
	next, err := generateKey()
	if err != nil {
		return nil, err
	}
	ks.active, ks.next = active, next
	return ks, nil
}

// LoadOrCreateKeySet loads the key set persisted in dir, or creates and
// persists a new one if dir holds none. The directory is created with mode
// 0700 and the key file is written with mode 0600; a key file readable by
// others is refused.
func LoadOrCreateKeySet(dir string, opts KeySetOptions) (*KeySet, error) {
	if dir == "" {
		return nil, errors.New("credential: key directory is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("credential: create key directory: %w", err)
	}
	ks := newKeySet(dir, opts)
	path := filepath.Join(dir, keyFileName)
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if ks.active, err = generateKey(); err != nil {
			return nil, err
		}
		if ks.next, err = generateKey(); err != nil {
			return nil, err
		}
		if err := ks.persist(ks.active, ks.next, nil); err != nil {
			return nil, err
		}
		return ks, nil
	case err != nil:
		return nil, fmt.Errorf("credential: stat key file: %w", err)
	case info.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("credential: key file %s has mode %v; it must not be accessible to group or others (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credential: read key file: %w", err)
	}
	if err := ks.decode(data); err != nil {
		return nil, fmt.Errorf("credential: key file %s: %w", path, err)
	}
	return ks, nil
}

func newKeySet(dir string, opts KeySetOptions) *KeySet {
	if opts.Retain <= 0 {
		opts.Retain = DefaultRetain
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &KeySet{dir: dir, retain: opts.Retain, now: opts.Now}
}

// Retain reports how long retired keys stay published.
func (ks *KeySet) Retain() time.Duration { return ks.retain }

// ActiveKeyID returns the key id that signs new credentials.
func (ks *KeySet) ActiveKeyID() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active.kid
}

// Rotate makes the next key active, retires the active one (still published
// for Retain) and generates a new next key. Retired keys past Retain are
// dropped. For a persisted set the change is written before it takes
// effect; if writing fails nothing changes.
func (ks *KeySet) Rotate() error {
	fresh, err := generateKey()
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := ks.now()
	retired := append(ks.liveRetired(now), retiredKey{kid: ks.active.kid, public: ks.active.public, retired: now})
	if ks.dir != "" {
		if err := ks.persist(ks.next, fresh, retired); err != nil {
			return err
		}
	}
	ks.active, ks.next, ks.retired = ks.next, fresh, retired
	return nil
}

// PublicKeys returns every published key by id: active, next and retired
// keys within Retain.
func (ks *KeySet) PublicKeys() map[string]ed25519.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	live := ks.liveRetired(ks.now())
	keys := make(map[string]ed25519.PublicKey, 2+len(live))
	keys[ks.active.kid] = ks.active.public
	keys[ks.next.kid] = ks.next.public
	for _, r := range live {
		keys[r.kid] = r.public
	}
	return keys
}

// JWKS returns the published keys as a JWK set, active key first.
func (ks *KeySet) JWKS() verify.JWKSet {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	set := verify.JWKSet{Keys: []verify.JWK{publicJWK(ks.active.kid, ks.active.public), publicJWK(ks.next.kid, ks.next.public)}}
	for _, r := range ks.liveRetired(ks.now()) {
		set.Keys = append(set.Keys, publicJWK(r.kid, r.public))
	}
	return set
}

// signer returns the active key for minting.
func (ks *KeySet) signer() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active
}

// liveRetired returns the retired keys still within Retain at now; the
// caller holds ks.mu.
func (ks *KeySet) liveRetired(now time.Time) []retiredKey {
	var live []retiredKey
	for _, r := range ks.retired {
		if now.Before(r.retired.Add(ks.retain)) {
			live = append(live, r)
		}
	}
	return live
}

func publicJWK(kid string, pub ed25519.PublicKey) verify.JWK {
	return verify.JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Use: "sig", Alg: verify.Algorithm}
}

func generateKey() (*signingKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("credential: generate key: %w", err)
	}
	return newSigningKey(pub, priv)
}

func newSigningKey(pub ed25519.PublicKey, priv ed25519.PrivateKey) (*signingKey, error) {
	kid := thumbprint(pub)
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{verify.Algorithm, kid, verify.TokenType})
	if err != nil {
		return nil, fmt.Errorf("credential: encode header: %w", err)
	}
	return &signingKey{kid: kid, private: priv, public: pub, header: base64.RawURLEncoding.EncodeToString(header)}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 key, used as its
// key id: stable, and derived from the key so a file cannot mislabel one.
func thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// keyFile is the persisted form of a key set.
type keyFile struct {
	Version int             `json:"version"`
	Active  keyFileSecret   `json:"active"`
	Next    keyFileSecret   `json:"next"`
	Retired []keyFilePublic `json:"retired,omitempty"`
}

type keyFileSecret struct {
	Kid  string `json:"kid"`
	Seed []byte `json:"seed"`
}

type keyFilePublic struct {
	Kid     string    `json:"kid"`
	Public  []byte    `json:"public"`
	Retired time.Time `json:"retired"`
}

func (ks *KeySet) persist(active, next *signingKey, retired []retiredKey) error {
	file := keyFile{
		Version: 1,
		Active:  keyFileSecret{Kid: active.kid, Seed: active.private.Seed()},
		Next:    keyFileSecret{Kid: next.kid, Seed: next.private.Seed()},
	}
	for _, r := range retired {
		file.Retired = append(file.Retired, keyFilePublic{Kid: r.kid, Public: r.public, Retired: r.retired})
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return fmt.Errorf("credential: encode key file: %w", err)
	}
	tmp, err := os.CreateTemp(ks.dir, keyFileName+".*")
	if err != nil {
		return fmt.Errorf("credential: write key file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("credential: write key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("credential: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("credential: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("credential: write key file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(ks.dir, keyFileName)); err != nil {
		return fmt.Errorf("credential: write key file: %w", err)
	}
	return nil
}

func (ks *KeySet) decode(data []byte) error {
	var file keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if file.Version != 1 {
		return fmt.Errorf("unsupported version %d", file.Version)
	}
	active, err := secretFromFile(file.Active)
	if err != nil {
		return fmt.Errorf("active key: %w", err)
	}
	next, err := secretFromFile(file.Next)
	if err != nil {
		return fmt.Errorf("next key: %w", err)
	}
	var retired []retiredKey
	for _, r := range file.Retired {
		if len(r.Public) != ed25519.PublicKeySize || thumbprint(r.Public) != r.Kid {
			return fmt.Errorf("retired key %q does not match its key id", r.Kid)
		}
		retired = append(retired, retiredKey{kid: r.Kid, public: r.Public, retired: r.Retired})
	}
	ks.active, ks.next, ks.retired = active, next, retired
	return nil
}

func secretFromFile(s keyFileSecret) (*signingKey, error) {
	if len(s.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("seed is %d bytes, want %d", len(s.Seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(s.Seed)
	key, err := newSigningKey(priv.Public().(ed25519.PublicKey), priv)
	if err != nil {
		return nil, err
	}
	if key.kid != s.Kid {
		return nil, fmt.Errorf("key id %q does not match the key", s.Kid)
	}
	return key, nil
}
