package verify_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wardenmcp/warden/pkg/verify"
)

// An upstream checks the credential Warden attached to a tools/call request
// before executing it. Here the credential is minted in place of Warden, and
// the key is given statically; a server would set Options.JWKSURL instead.
func Example() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	args := []byte(`{"order_id":"12345"}`) // params.arguments, as received

	token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &verify.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://warden.example.com", Audience: jwt.ClaimStrings{"orders"},
			Subject: "alice", ID: "c1",
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(30 * time.Second)),
		},
		Tool: "get_order", Op: "tools/call", ArgsDigest: verify.ArgsDigest(args),
	})
	token.Header["kid"], token.Header["typ"] = "k1", verify.TokenType
	signed, _ := token.SignedString(priv)
	meta := map[string]any{verify.MetaKey: signed} // params._meta, as received

	v, err := verify.New(verify.Options{
		Issuer:   "https://warden.example.com",
		Audience: "orders",
		Keys:     map[string]ed25519.PublicKey{"k1": pub},
	}, verify.NewMemoryReplayCache(nil))
	if err != nil {
		fmt.Println(err)
		return
	}

	credential, _ := verify.FromMeta(meta)
	claims, err := v.Verify(context.Background(), credential, verify.Expect{Tool: "get_order", Args: args})
	fmt.Println(claims.Subject, err)

	_, err = v.Verify(context.Background(), credential, verify.Expect{Tool: "get_order", Args: args})
	fmt.Println(errors.Is(err, verify.ErrReplayed))
	// Output:
	// alice <nil>
	// true
}
