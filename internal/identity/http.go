package identity

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// MetadataPath is where the Protected Resource Metadata is served; the
// path-suffixed form appends the resource's path (RFC 9728 section 3.1).
const MetadataPath = "/.well-known/oauth-protected-resource"

// authError is a refused request: the status, OAuth error code and
// description are shown to the caller, the cause only to the log.
type authError struct {
	status int
	code   string // RFC 6750 error code; empty when no credential was sent
	desc   string
	cause  error
}

func (e *authError) Error() string {
	if e.cause != nil {
		return e.desc + ": " + e.cause.Error()
	}
	return e.desc
}

func (e *authError) Unwrap() error { return e.cause }

func invalidToken(desc string, cause error) *authError {
	return &authError{status: http.StatusUnauthorized, code: "invalid_token", desc: desc, cause: cause}
}

func invalidRequest(desc string) *authError {
	return &authError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

// Middleware authenticates each request and passes it on with the
// Principal in its context; a request that cannot be authenticated is
// answered here and goes no further. The credential headers are removed
// from the request next sees, so nothing downstream can forward them.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, logAttrs, err := a.authenticate(r)
		if err != nil {
			a.refuse(w, r, err, logAttrs)
			return
		}
		a.log.Debug("identity: authenticated", append(logAttrs, "principal", p.ID, "method", p.Method)...)
		r = r.WithContext(NewContext(r.Context(), p))
		r.Header = r.Header.Clone()
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		next.ServeHTTP(w, r)
	})
}

// authenticate finds the request's one credential and checks it. A request
// that presents a credential never falls back to the anonymous principal.
// The returned attributes identify an accepted credential for the log
// (key id or jti), never the secret itself.
func (a *Authenticator) authenticate(r *http.Request) (Principal, []any, error) {
	authz := r.Header.Values("Authorization")
	apiKey := r.Header.Values("X-Api-Key")
	switch {
	case len(authz)+len(apiKey) > 1:
		return Principal{}, nil, invalidRequest("send one credential: a single Authorization or X-API-Key header")
	case len(authz) == 1:
		scheme, token, _ := strings.Cut(authz[0], " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return Principal{}, nil, invalidRequest("the Authorization header must use the Bearer scheme")
		}
		token = strings.TrimLeft(token, " ")
		if token == "" || strings.ContainsAny(token, " \t") {
			return Principal{}, nil, invalidRequest("the bearer token is empty or malformed")
		}
		if looksLikeJWT(token) {
			return a.authenticateJWT(r, token)
		}
		return a.authenticateAPIKey(token)
	case len(apiKey) == 1:
		if apiKey[0] == "" {
			return Principal{}, nil, invalidRequest("the X-API-Key header is empty")
		}
		return a.authenticateAPIKey(apiKey[0])
	case a.anonymous != nil:
		return clonePrincipal(*a.anonymous), nil, nil
	default:
		return Principal{}, nil, &authError{status: http.StatusUnauthorized, desc: "authentication required: send a bearer token or an API key"}
	}
}

func (a *Authenticator) authenticateAPIKey(key string) (Principal, []any, error) {
	id, p, ok := a.apiKeys.lookup(key)
	if !ok {
		return Principal{}, nil, invalidToken("API key is not recognized", nil)
	}
	return p, []any{"key_id", id}, nil
}

func (a *Authenticator) authenticateJWT(r *http.Request, token string) (Principal, []any, error) {
	if a.jwt == nil {
		return Principal{}, nil, invalidToken("JWT bearer tokens are not accepted here", nil)
	}
	p, jti, err := a.jwt.verify(r.Context(), token)
	if err != nil {
		return Principal{}, nil, err
	}
	return p, []any{"jti", jti}, nil
}

// looksLikeJWT reports whether token has the JWS compact form: three
// base64url parts, the signature possibly empty (as alg "none" has it), so
// that such tokens are judged, and refused, as JWTs rather than API keys.
func looksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, part := range parts {
		for _, c := range part {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// refuse answers a request that was not authenticated: a Bearer challenge
// pointing at the metadata document, and a short JSON error.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, err error, logAttrs []any) {
	var ae *authError
	if !errors.As(err, &ae) {
		ae = &authError{status: http.StatusInternalServerError, code: "server_error", desc: "authentication failed", cause: err}
	}
	level := slog.LevelInfo
	if ae.code == "" {
		level = slog.LevelDebug // no credential: the normal start of an OAuth flow
	}
	attrs := append(logAttrs, "status", ae.status, "reason", ae.desc, "remote", r.RemoteAddr)
	if ae.cause != nil {
		attrs = append(attrs, "err", ae.cause)
	}
	a.log.Log(r.Context(), level, "identity: request refused", attrs...)

	if ae.status == http.StatusUnauthorized || ae.status == http.StatusBadRequest {
		challenge := `Bearer realm="warden", resource_metadata=` + quote(metadataURL(a.resource(r)))
		if ae.code != "" {
			challenge += `, error=` + quote(ae.code) + `, error_description=` + quote(ae.desc)
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	code := ae.code
	if code == "" {
		code = "unauthorized"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": ae.desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(ae.status)
	_, _ = w.Write(append(body, '\n'))
}

// quote makes s an HTTP quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// resource is this server's resource identifier: the configured URL, or
// the request's origin and path.
func (a *Authenticator) resource(r *http.Request) string {
	if a.cfg.ResourceURL != "" {
		return a.cfg.ResourceURL
	}
	return requestOrigin(r) + strings.TrimSuffix(r.URL.EscapedPath(), "/")
}

// requestOrigin is the scheme and Host the request arrived on. Forwarded
// headers are not trusted; behind a proxy, set resource_url.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// metadataURL is where the metadata of resource is served: the well-known
// path inserted between its host and its path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return MetadataPath
	}
	return u.Scheme + "://" + u.Host + MetadataPath + strings.TrimSuffix(u.EscapedPath(), "/")
}

// protectedResourceMetadata is the RFC 9728 document.
type protectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// MetadataHandler serves the Protected Resource Metadata at MetadataPath
// and at MetadataPath followed by the resource's path (for example
// /.well-known/oauth-protected-resource/mcp). Mount it at both MetadataPath
// and MetadataPath+"/"; other paths below it are not found. It needs no
// credential and allows any origin, as browser clients fetch it before they
// have one.
func (a *Authenticator) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		suffix, ok := strings.CutPrefix(r.URL.EscapedPath(), MetadataPath)
		if !ok || (suffix != "" && !strings.HasPrefix(suffix, "/")) {
			http.NotFound(w, r)
			return
		}
		suffix = strings.TrimSuffix(suffix, "/")
		resource := requestOrigin(r) + suffix
		if a.cfg.ResourceURL != "" {
			// Both the root form and the configured resource's own
			// path-suffixed form describe it; other suffixes name nothing.
			resource = a.cfg.ResourceURL
			if suffix != "" && !strings.HasSuffix(metadataURL(resource), MetadataPath+suffix) {
				http.NotFound(w, r)
				return
			}
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "MCP-Protocol-Version")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(protectedResourceMetadata{
			Resource:               resource,
			AuthorizationServers:   a.cfg.AuthorizationServers,
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "Warden",
		})
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}
