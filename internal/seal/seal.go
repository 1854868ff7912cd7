// Package seal seals and opens tokens that only Warden itself reads: the
// requestState it hands clients across input-required round trips, and
// approval tokens. Tokens are PASETO v4.local (XChaCha20 + BLAKE2b,
// authenticated encryption), so clients can neither read nor alter them.
//
// Each token is bound to a purpose: the purpose is the PASETO implicit
// assertion, and a token sealed for one purpose cannot be opened for
// another. Each carries an expiry checked against an injected clock.
package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"aidanwoods.dev/go-paseto"
)

// KeySize is the length of a sealing key in bytes.
const KeySize = 32

// maxPurposeLen bounds the purpose name, which travels in the clear footer.
const maxPurposeLen = 64

// implicitPrefix separates Warden's implicit assertions from any other use
// of the same key.
const implicitPrefix = "io.wardenmcp/seal/v1:"

// Errors returned by Open, each wrapped with detail. Compare with errors.Is.
var (
	ErrMalformed = errors.New("seal: token is malformed or truncated")
	ErrWrongKey  = errors.New("seal: token was sealed with another key")
	ErrPurpose   = errors.New("seal: token was sealed for another purpose")
	ErrInvalid   = errors.New("seal: token failed authentication (tampered)")
	ErrExpired   = errors.New("seal: token has expired")
)

// Options configure a Sealer.
type Options struct {
	// Previous are keys that still open tokens but no longer seal them,
	// kept while tokens sealed before a key change are outstanding.
	Previous [][]byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sealer seals and opens tokens with one current key. It is safe for
// concurrent use.
type Sealer struct {
	current sealingKey
	keys    map[string]paseto.V4SymmetricKey // by key id, current included
	now     func() time.Time
}

type sealingKey struct {
	id  string
	key paseto.V4SymmetricKey
}

// footer is the authenticated, unencrypted part of a token: enough to
// pick the key and reject a token sealed for another purpose with a clear
// error before decrypting.
type footer struct {
	Kid     string `json:"kid"`
	Purpose string `json:"purpose"`
}

// New returns a Sealer using key (KeySize bytes) to seal and open.
func New(key []byte, opts Options) (*Sealer, error) {
	current, err := newSealingKey(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{current: current, keys: map[string]paseto.V4SymmetricKey{current.id: current.key}, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for i, prev := range opts.Previous {
		k, err := newSealingKey(prev)
		if err != nil {
			return nil, fmt.Errorf("seal: previous key %d: %w", i, err)
		}
		s.keys[k.id] = k.key
	}
	return s, nil
}

// LoadOrCreate returns a Sealer whose key is kept hex-encoded in the file at
// path, creating the file (mode 0600, directory 0700) with a fresh key if it
// does not exist. A key file accessible to group or others is refused.
func LoadOrCreate(path string, opts Options) (*Sealer, error) {
	if path == "" {
		return nil, errors.New("seal: key file path is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("seal: create key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("seal: generate key: %w", err)
	}
	// O_EXCL: of two processes starting at once, one creates, both load.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("seal: write key file: %w", err)
		}
		return New(key, opts)
	case !errors.Is(err, os.ErrExist):
		return nil, fmt.Errorf("seal: create key file: %w", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("seal: stat key file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("seal: key file %s has mode %v; it must not be accessible to group or others (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: read key file: %w", err)
	}
	key, err = hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s is not hex: %w", path, err)
	}
	s, err := New(key, opts)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %s: %w", path, err)
	}
	return s, nil
}

func newSealingKey(raw []byte) (sealingKey, error) {
	if len(raw) != KeySize {
		return sealingKey{}, fmt.Errorf("seal: key is %d bytes, want %d", len(raw), KeySize)
	}
	key, err := paseto.V4SymmetricKeyFromBytes(raw)
	if err != nil {
		return sealingKey{}, fmt.Errorf("seal: %w", err)
	}
	// The id is a hash of the key under a fixed label: it names the key
	// without revealing anything useful about it.
	sum := sha256.Sum256(append([]byte("io.wardenmcp/seal/key-id:"), raw...))
	return sealingKey{id: base64.RawURLEncoding.EncodeToString(sum[:9]), key: key}, nil
}

func checkPurpose(purpose string) error {
	if purpose == "" || len(purpose) > maxPurposeLen {
		return fmt.Errorf("seal: purpose must be 1 to %d bytes", maxPurposeLen)
	}
	for _, r := range purpose {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("seal: purpose %q must be printable ASCII without spaces", purpose)
		}
	}
	return nil
}

// Seal encrypts payload for purpose, valid for ttl.
func (s *Sealer) Seal(purpose string, payload []byte, ttl time.Duration) (string, error) {
	if err := checkPurpose(purpose); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("seal: ttl must be positive, got %s", ttl)
	}
	now := s.now()
	token := paseto.NewToken()
	if err := token.Set("data", payload); err != nil {
		return "", fmt.Errorf("seal: encode payload: %w", err)
	}
	token.SetString("iat", now.UTC().Format(time.RFC3339Nano))
	token.SetString("exp", now.Add(ttl).UTC().Format(time.RFC3339Nano))
	foot, err := json.Marshal(footer{Kid: s.current.id, Purpose: purpose})
	if err != nil {
		return "", fmt.Errorf("seal: encode footer: %w", err)
	}
	token.SetFooter(foot)
	return token.V4Encrypt(s.current.key, []byte(implicitPrefix+purpose)), nil
}

// SealJSON is Seal for the JSON encoding of v.
func (s *Sealer) SealJSON(purpose string, v any, ttl time.Duration) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal: encode %T: %w", v, err)
	}
	return s.Seal(purpose, payload, ttl)
}

// Open authenticates and decrypts a token sealed for purpose and returns its
// payload. The error wraps ErrMalformed, ErrWrongKey, ErrPurpose, ErrInvalid
// or ErrExpired.
func (s *Sealer) Open(purpose string, token string) ([]byte, error) {
	if err := checkPurpose(purpose); err != nil {
		return nil, err
	}
	// The footer is read before authentication only to choose a key and
	// give a precise error; authentication below covers it.
	rawFooter, err := paseto.NewParserWithoutExpiryCheck().UnsafeParseFooter(paseto.V4Local, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var foot footer
	dec := json.NewDecoder(bytes.NewReader(rawFooter))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&foot); err != nil || foot.Kid == "" {
		return nil, fmt.Errorf("%w: footer is not a seal footer", ErrMalformed)
	}
	key, ok := s.keys[foot.Kid]
	if !ok {
		return nil, fmt.Errorf("%w: key id %q", ErrWrongKey, foot.Kid)
	}
	if foot.Purpose != purpose {
		return nil, fmt.Errorf("%w: sealed for %q, opened for %q", ErrPurpose, foot.Purpose, purpose)
	}
	parsed, err := paseto.NewParserWithoutExpiryCheck().ParseV4Local(key, token, []byte(implicitPrefix+purpose))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	exp, err := parsed.GetTime("exp")
	if err != nil {
		return nil, fmt.Errorf("%w: no expiry: %v", ErrMalformed, err)
	}
	if now := s.now(); !now.Before(exp) {
		return nil, fmt.Errorf("%w: at %s", ErrExpired, exp.Format(time.RFC3339))
	}
	var payload []byte
	if err := parsed.Get("data", &payload); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	return payload, nil
}

// OpenJSON is Open followed by decoding the payload into v.
func (s *Sealer) OpenJSON(purpose string, token string, v any) error {
	payload, err := s.Open(purpose, token)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("seal: decode payload into %T: %w", v, err)
	}
	return nil
}
