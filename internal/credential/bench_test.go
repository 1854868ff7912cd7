package credential

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/wardenmcp/warden/pkg/verify"
)

// BenchmarkMintAndVerify is the per-call credential cost: mint, then
// verify with an in-memory replay cache, as an upstream would.
func BenchmarkMintAndVerify(b *testing.B) {
	keys, err := NewKeySet(KeySetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	minter, err := NewMinter(keys, MinterOptions{Issuer: testIssuer})
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(verify.Options{Issuer: testIssuer, Audience: "orders", Keys: keys.PublicKeys()},
		verify.NewMemoryReplayCache(nil))
	if err != nil {
		b.Fatal(err)
	}
	claims := testClaims()
	expect := verify.Expect{Tool: claims.Tool, Args: testArgs}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		token, _, err := minter.Mint(claims)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(ctx, token, expect); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMint(b *testing.B) {
	keys, err := NewKeySet(KeySetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	minter, err := NewMinter(keys, MinterOptions{Issuer: testIssuer, Lifetime: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	claims := testClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := minter.Mint(claims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519SignVerify is the floor under BenchmarkMintAndVerify: the
// signature alone, without any token encoding or checks.
func BenchmarkEd25519SignVerify(b *testing.B) {
	keys, err := NewKeySet(KeySetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	key := keys.signer()
	msg := make([]byte, 400)
	for b.Loop() {
		if !ed25519.Verify(key.public, msg, ed25519.Sign(key.private, msg)) {
			b.Fatal("signature did not verify")
		}
	}
}
