// Package identity establishes who is calling Warden over HTTP: an API key,
// an OAuth bearer JWT checked against the issuer's JWKS, or an operator-chosen
// anonymous principal. It is the first stage of the request path and knows
// nothing of policy or the protocol: its middleware puts a Principal in the
// request context, refuses everything else with a 401 that points at the
// RFC 9728 Protected Resource Metadata, and serves that document.
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Authentication methods recorded in Principal.Method.
const (
	MethodAPIKey    = "api_key"
	MethodJWT       = "jwt"
	MethodAnonymous = "anonymous"
	MethodLocal     = "local" // the local user of a stdio session
)

// Principal is who is calling.
type Principal struct {
	ID        string         `json:"id" yaml:"id"`
	Roles     []string       `json:"roles,omitempty" yaml:"roles"`
	Tenant    string         `json:"tenant,omitempty" yaml:"tenant"`
	Clearance string         `json:"clearance,omitempty" yaml:"clearance"`
	Claims    map[string]any `json:"claims,omitempty" yaml:"-"`
	Method    string         `json:"method" yaml:"-"` // one of the Method constants
}

// Config is the `identity:` section of Warden's configuration file.
type Config struct {
	// APIKeys are the accepted API keys, by hash; the keys themselves are
	// never written down.
	APIKeys []APIKey `yaml:"api_keys"`
	// JWT accepts OAuth bearer tokens from one issuer. Nil: no JWTs.
	JWT *JWTConfig `yaml:"jwt"`
	// Anonymous is the principal given to requests that carry no
	// credential. Nil: such requests are refused.
	Anonymous *Principal `yaml:"anonymous"`
	// ResourceURL is this server's canonical MCP endpoint URL
	// (e.g. https://warden.example/mcp), published as the "resource" of the
	// Protected Resource Metadata. Empty: derived from each request's
	// scheme, Host and path.
	ResourceURL string `yaml:"resource_url"`
	// AuthorizationServers lists the OAuth authorization servers (issuer
	// URLs) clients may get tokens from. Empty: the JWT issuer, if any.
	AuthorizationServers []string `yaml:"authorization_servers"`
}

// JWTConfig accepts bearer JWTs signed by one issuer's keys.
type JWTConfig struct {
	// Issuer must equal the token's "iss" claim.
	Issuer string `yaml:"issuer"`
	// Audience must be one of the token's "aud" values. Empty: ResourceURL.
	Audience string `yaml:"audience"`
	// JWKSURL is where the issuer publishes its keys (https, or http on a
	// loopback host). Fetched on first use, cached for the response's
	// max-age (between 30s and 24h, 5m when absent), refetched at most once
	// per 30s when a token names an unknown key id.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSFile is a local JWKS document read once at start; set exactly one
	// of JWKSURL and JWKSFile.
	JWKSFile string `yaml:"jwks_file"`
	// ClockSkew is the leeway allowed on exp, nbf and iat. Default 60s;
	// at most 10m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Algorithms are the accepted signature algorithms. Default RS256,
	// ES256, EdDSA. HS* and none are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// SubjectClaim names the claim that becomes Principal.ID. Default "sub".
	SubjectClaim string `yaml:"subject_claim"`
	// RolesClaim names the claim that holds the roles: a list of strings or
	// one space-separated string. Default "roles".
	RolesClaim string `yaml:"roles_claim"`
	// TenantClaim names the claim that becomes Principal.Tenant. Empty: none.
	TenantClaim string `yaml:"tenant_claim"`
	// ClearanceClaim names the claim that becomes Principal.Clearance.
	// Empty: none.
	ClearanceClaim string `yaml:"clearance_claim"`
}

// Defaults and bounds of the JWT settings.
const (
	DefaultClockSkew = 60 * time.Second
	maxClockSkew     = 10 * time.Minute
)

// defaultAlgorithms are accepted when JWTConfig.Algorithms is empty.
var defaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// supportedAlgorithms are the asymmetric algorithms a JWKS key can verify.
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.ResourceURL != "" {
		if err := checkHTTPURL(c.ResourceURL, false); err != nil {
			return fmt.Errorf("identity.resource_url: %w", err)
		}
		if strings.Contains(c.ResourceURL, "?") {
			return fmt.Errorf("identity.resource_url: %q must not carry a query", c.ResourceURL)
		}
	}
	for i, s := range c.AuthorizationServers {
		if err := checkHTTPURL(s, true); err != nil {
			return fmt.Errorf("identity.authorization_servers[%d]: %w", i, err)
		}
	}
	if c.Anonymous != nil && c.Anonymous.ID == "" {
		return errors.New("identity.anonymous: id is required")
	}
	if err := validateAPIKeys(c.APIKeys); err != nil {
		return err
	}
	if c.JWT != nil {
		if err := c.JWT.validate(c.ResourceURL); err != nil {
			return fmt.Errorf("identity.jwt: %w", err)
		}
	}
	return nil
}

func (j *JWTConfig) validate(resourceURL string) error {
	if j.Issuer == "" {
		return errors.New("issuer is required")
	}
	if j.Audience == "" && resourceURL == "" {
		return errors.New("audience is required (or set identity.resource_url)")
	}
	switch {
	case j.JWKSURL != "" && j.JWKSFile != "":
		return errors.New("set one of jwks_url and jwks_file, not both")
	case j.JWKSURL != "":
		if err := checkHTTPURL(j.JWKSURL, true); err != nil {
			return fmt.Errorf("jwks_url: %w", err)
		}
	case j.JWKSFile == "":
		return errors.New("jwks_url or jwks_file is required")
	}
	if j.ClockSkew < 0 || j.ClockSkew > maxClockSkew {
		return fmt.Errorf("clock_skew %s is outside 0..%s", j.ClockSkew, maxClockSkew)
	}
	for _, alg := range j.Algorithms {
		if strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS") {
			return fmt.Errorf("algorithm %q is not allowed: only asymmetric algorithms verify against a JWKS", alg)
		}
		if !slices.Contains(supportedAlgorithms, alg) {
			return fmt.Errorf("algorithm %q is not supported (supported: %s)", alg, strings.Join(supportedAlgorithms, ", "))
		}
	}
	return nil
}

// checkHTTPURL accepts an absolute https URL, or http on a loopback host;
// tokenFacing URLs (keys, authorization servers) may not have a fragment
// or credentials either.
func checkHTTPURL(raw string, tokenFacing bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && tokenFacing && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q must use https (http only on a loopback host)", raw)
	}
	if u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry a fragment or user info", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// withDefaults returns a copy with the defaults filled in.
func (c Config) withDefaults() Config {
	if c.JWT != nil {
		j := *c.JWT
		if j.Audience == "" {
			j.Audience = c.ResourceURL
		}
		if j.ClockSkew == 0 {
			j.ClockSkew = DefaultClockSkew
		}
		if len(j.Algorithms) == 0 {
			j.Algorithms = slices.Clone(defaultAlgorithms)
		}
		if j.SubjectClaim == "" {
			j.SubjectClaim = "sub"
		}
		if j.RolesClaim == "" {
			j.RolesClaim = "roles"
		}
		c.JWT = &j
		if len(c.AuthorizationServers) == 0 {
			c.AuthorizationServers = []string{j.Issuer}
		}
	}
	return c
}

// Options are the Authenticator's collaborators.
type Options struct {
	// Logger receives authentication outcomes; never tokens or keys.
	// Nil: discard.
	Logger *slog.Logger
	// Now is the clock for token times and key caching. Nil: time.Now.
	Now func() time.Time
	// HTTPClient fetches the JWKS. Nil: a client with a 10s timeout.
	HTTPClient *http.Client
}

// Authenticator identifies callers of the HTTP listener.
type Authenticator struct {
	cfg       Config
	log       *slog.Logger
	apiKeys   apiKeyTable
	jwt       *jwtVerifier // nil when JWTs are not accepted
	anonymous *Principal
}

// New checks cfg and builds an Authenticator. A jwks_file is read now; a
// jwks_url is fetched when the first token arrives.
func New(cfg Config, opts Options) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &Authenticator{cfg: cfg, log: opts.Logger, apiKeys: newAPIKeyTable(cfg.APIKeys)}
	if cfg.JWT != nil {
		v, err := newJWTVerifier(*cfg.JWT, opts)
		if err != nil {
			return nil, fmt.Errorf("identity.jwt: %w", err)
		}
		a.jwt = v
	}
	if cfg.Anonymous != nil {
		p := clonePrincipal(*cfg.Anonymous)
		p.Method = MethodAnonymous
		a.anonymous = &p
	}
	if len(cfg.APIKeys) == 0 && cfg.JWT == nil && cfg.Anonymous == nil {
		a.log.Warn("identity: no api_keys, jwt or anonymous principal configured; every HTTP request will be refused")
	}
	return a, nil
}

type contextKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, contextKey{}, p)
}

// FromContext returns the Principal the middleware (or NewContext) put in
// ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(contextKey{}).(Principal)
	return p, ok
}

// clonePrincipal copies p so that no request shares the configured slices.
func clonePrincipal(p Principal) Principal {
	p.Roles = slices.Clone(p.Roles)
	return p
}
