package verify

import (
	"crypto/sha256"
	"encoding/base64"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the contents of a Warden credential.
type Claims struct {
	// Registered claims: iss (Warden), aud (the upstream), sub (the
	// principal id), jti (unique per credential), iat, nbf and exp.
	jwt.RegisteredClaims

	// Task is the task grant id the call belongs to; empty when none.
	Task string `json:"task,omitempty"`
	// Tool names the operation as the upstream receives it.
	Tool string `json:"tool"`
	// ArgsDigest is ArgsDigest of the exact arguments Warden forwarded.
	ArgsDigest string `json:"args_sha256"`
	// Scope holds the task grant's scope values (for example order_id).
	Scope map[string]any `json:"scope,omitempty"`
	// Op is the MCP method, for example "tools/call".
	Op string `json:"op"`
}

// ArgsDigest returns the base64url (unpadded) SHA-256 of canonical, the
// exact bytes of the arguments as Warden forwards them. For tools/call that
// is the JSON value of params.arguments, byte for byte.
func ArgsDigest(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
