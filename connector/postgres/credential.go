package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/pkg/verify"
)

// CredentialVerifier checks the per-call credential Warden attaches to every
// call it forwards; *verify.Verifier satisfies it. It must consume the
// credential (single use) when it accepts it.
type CredentialVerifier interface {
	Verify(ctx context.Context, token string, want verify.Expect) (*verify.Claims, error)
}

// credentialClasses are the verify failures a refused caller may be told
// about, most specific first; anything else is reported as "rejected".
var credentialClasses = []error{
	verify.ErrMissing, verify.ErrMalformed, verify.ErrAlgorithm, verify.ErrType,
	verify.ErrUnknownKey, verify.ErrKeySource, verify.ErrSignature, verify.ErrExpired,
	verify.ErrNotYetValid, verify.ErrLifetime, verify.ErrIssuer, verify.ErrAudience,
	verify.ErrTool, verify.ErrOperation, verify.ErrDigest, verify.ErrReplayed,
	verify.ErrExpectations, verify.ErrClaims,
}

// credentialRefused is the caller's message for a call without a valid
// credential: the failure's class, never the token or the claims.
func credentialRefused(err error) *callError {
	class := "rejected"
	for _, c := range credentialClasses {
		if errors.Is(err, c) {
			class = strings.TrimPrefix(c.Error(), "verify: ")
			break
		}
	}
	return &callError{msg: "missing or invalid Warden credential: " + class, cause: err}
}

// callScope decides the task scope a call runs under. With a Verifier the
// call must carry a valid credential for this tool and these exact argument
// bytes, and the scope is the one the credential vouches for; a _meta scope
// may repeat it but not differ from it. Without a Verifier the _meta scope
// is taken as given.
func (s *server) callScope(ctx context.Context, tool string, req *mcp.CallToolRequest) ([]scopeSetting, error) {
	if s.cfg.Verifier == nil {
		settings, err := scopeSettings(req.Params.Meta)
		if err != nil {
			return nil, &callError{msg: err.Error()}
		}
		return settings, nil
	}
	token, _ := verify.FromMeta(req.Params.Meta)
	args := []byte(req.Params.Arguments)
	if args == nil {
		// No arguments on the wire: the digest is of no bytes, which a
		// credential for any real arguments does not match.
		args = []byte{}
	}
	claims, err := s.cfg.Verifier.Verify(ctx, token, verify.Expect{Tool: tool, Op: "tools/call", Args: args})
	if err != nil {
		refused := credentialRefused(err)
		s.logger.Warn("postgres connector: credential refused", "tool", tool, "error", err)
		return nil, refused
	}
	if given, ok := req.Params.Meta[ScopeMetaKey]; ok && !sameScope(given, claims.Scope) {
		s.logger.Warn("postgres connector: _meta scope differs from the credential's", "tool", tool, "credential", claims.ID)
		return nil, &callError{msg: "the call's _meta scope differs from the scope its Warden credential grants"}
	}
	settings, err := scopeSettings(mcp.Meta{ScopeMetaKey: claims.Scope})
	if err != nil {
		return nil, &callError{msg: "credential scope: " + err.Error()}
	}
	return settings, nil
}

// sameScope reports whether a _meta scope equals the credential's scope,
// comparing their JSON forms (object keys sorted); an empty or null scope
// equals an absent one.
func sameScope(given any, granted map[string]any) bool {
	canonical := func(v any) ([]byte, bool) {
		if v == nil {
			return nil, true
		}
		if m, ok := v.(map[string]any); ok && len(m) == 0 {
			return nil, true
		}
		b, err := json.Marshal(v)
		return b, err == nil
	}
	a, okA := canonical(given)
	var grantedAny any
	if len(granted) > 0 {
		grantedAny = granted
	}
	b, okB := canonical(grantedAny)
	return okA && okB && bytes.Equal(a, b)
}
