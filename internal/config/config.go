// Package config defines Warden's configuration file: its typed form, the
// defaults filled in one place, and the checks run before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/identity"
)

// Config is the whole configuration file. Version 1 is the only version.
type Config struct {
	// Version of the file format; must be 1.
	Version int `yaml:"version"`
	// Listen is the host:port of the MCP endpoint for `warden serve`;
	// MCP is served at http://<listen>/mcp. Default 127.0.0.1:8462.
	Listen string `yaml:"listen"`
	// AllowedOrigins lists the browser Origins accepted on the HTTP
	// listener. A request with an Origin header not in this list is
	// refused. Empty means only requests without an Origin header, or with
	// an Origin whose host equals the request's Host.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHosts lists extra Host header values accepted by the HTTP
	// listener. Loopback hosts are always accepted on a loopback listener;
	// empty means no others (DNS-rebinding protection).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Limits bounds what a client may send.
	Limits Limits `yaml:"limits"`
	// ShutdownTimeout bounds how long in-flight calls may take to finish
	// after SIGINT/SIGTERM. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CallTimeout bounds one relayed request to an upstream. Default 60s.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// DisableFastPath sends every request through the protocol library's
	// server and client. By default Warden's HTTP front serves sessionless
	// (2026-07-28) tool calls itself and posts calls to 2026-07-28
	// upstreams directly, with the same checks and answers and a fraction
	// of the cost; this is the switch to rule that out when diagnosing a
	// client or upstream.
	DisableFastPath bool `yaml:"disable_fast_path"`
	// StateKeyFile holds the key that seals requestState tokens Warden
	// issues. Created (mode 0600) when missing. Default: beside the config
	// file, "warden-state.key".
	StateKeyFile string `yaml:"state_key_file"`
	// Upstreams are the MCP servers behind Warden, by name. The name
	// prefixes their tools: "<name>.<tool>".
	Upstreams map[string]*Upstream `yaml:"upstreams"`

	// Policy is the policy file, or a directory of *.yaml policy files,
	// relative to this file. Empty means no policy: only the upstreams'
	// allow_tools lists decide.
	Policy string `yaml:"policy"`
	// Store is the embedded database file (SQLite) that holds the audit
	// log and Warden's other state. Default "warden.db" beside this file.
	Store string `yaml:"store"`
	// Audit configures the tamper-evident audit log.
	Audit Audit `yaml:"audit"`
	// Catalog is the operator's word on each tool, by exposed name
	// ("shop.refund_order"): its risk and labels. Upstream annotations are
	// only hints; this is the truth policy reads as tool.risk and
	// tool.labels.
	Catalog map[string]CatalogEntry `yaml:"catalog"`
	// StdioPrincipal is the caller of `warden stdio`. Default: the local
	// user, with no roles.
	StdioPrincipal *Principal `yaml:"stdio_principal"`
	// Pinning pins each upstream tool's definition at first sight and
	// quarantines a changed definition until an operator approves it.
	Pinning Pinning `yaml:"pinning"`
	// Approvals configures escalation: how long a call waits for a
	// decision, webhooks, automated approval rules.
	Approvals approval.Config `yaml:"approvals"`
	// AdminListen is the host:port of the admin API (task grants, status).
	// It is a listener of its own, never the MCP endpoint's. Empty means
	// no admin API.
	AdminListen string `yaml:"admin_listen"`
	// Admin holds the admin API's own keys (hashed), which are not MCP
	// identities.
	Admin admin.Config `yaml:"admin"`
	// Credentials configures the short-lived credential Warden mints for
	// each forwarded tool call (a signed JWT in _meta, and the bearer token
	// to HTTP upstreams), published for verification at
	// /.well-known/jwks.json.
	Credentials Credentials `yaml:"credentials"`
	// Identity says how HTTP callers prove who they are: API keys, OAuth
	// bearer JWTs, or an explicitly configured anonymous principal.
	// Without any, every HTTP request is refused.
	Identity identity.Config `yaml:"identity"`

	// dir is the directory of the config file; relative paths resolve here.
	dir string
}

// Audit configures the audit log.
type Audit struct {
	// Disabled turns the audit log off. It is on by default.
	Disabled bool `yaml:"disabled"`
	// KeyFile holds the Ed25519 key that signs checkpoints; created (0600)
	// when missing. Default: beside the store, as `warden audit verify`
	// expects it (warden.db → warden.audit-key.pem).
	KeyFile string `yaml:"key_file"`
	// CheckpointEvery is how many records lie between signed checkpoints.
	// 0 means 1000.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval is the longest time between checkpoints while
	// records are written. 0 means one minute.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

// Pinning configures tool-definition pinning. It is on by default.
type Pinning struct {
	// Disabled turns pinning off: changed definitions are served at once.
	Disabled bool `yaml:"disabled"`
	// QuarantineFindings also quarantines a tool seen for the first time
	// whose description scan finds likely injected instructions.
	QuarantineFindings bool `yaml:"quarantine_findings"`
}

// Credentials configures per-call credentials.
type Credentials struct {
	// Disabled turns them off; calls then carry no credential.
	Disabled bool `yaml:"disabled"`
	// Issuer is the "iss" of every credential. Default "warden".
	Issuer string `yaml:"issuer"`
	// Lifetime of a credential. Default 30s; at most 5m.
	Lifetime time.Duration `yaml:"lifetime"`
	// KeyDir holds the signing keys (created 0700 when missing). Default:
	// the store file's name + ".keys".
	KeyDir string `yaml:"key_dir"`
	// RotateEvery is how often the signing key is replaced; the next key
	// is published before it signs, and retired keys stay published until
	// their credentials have expired. Default 24h.
	RotateEvery time.Duration `yaml:"rotate_every"`
}

// CatalogEntry is the operator's description of one tool.
type CatalogEntry struct {
	// Risk is one of read, write, destructive, egress.
	Risk string `yaml:"risk"`
	// Labels are free-form tags rules can test.
	Labels []string `yaml:"labels"`
	// TenantField names the field that holds an item's tenant in the
	// tool's results ("tenant_id"); items of another tenant than the
	// caller's are removed. Empty: results are not filtered by tenant.
	TenantField string `yaml:"tenant_field"`
}

// Principal names a caller and what it holds.
type Principal struct {
	ID        string   `yaml:"id"`
	Roles     []string `yaml:"roles"`
	Tenant    string   `yaml:"tenant"`
	Clearance string   `yaml:"clearance"`
}

// Limits bound the size and shape of client messages.
type Limits struct {
	// MaxMessageBytes is the largest JSON-RPC message accepted, in bytes.
	// Default 4 MiB.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// MaxDepth is the deepest nesting of JSON arrays and objects accepted
	// in a message. Default 64.
	MaxDepth int `yaml:"max_depth"`
}

// Upstream is one MCP server behind Warden: either URL (Streamable HTTP) or
// Command (stdio) is set, never both.
type Upstream struct {
	// URL of the server's Streamable HTTP endpoint.
	URL string `yaml:"url"`
	// HeadersFromEnv maps an HTTP header name to the environment variable
	// that holds its value, so that secrets never appear in this file.
	HeadersFromEnv map[string]string `yaml:"headers_from_env"`

	// Command and its arguments for a stdio server.
	Command []string `yaml:"command"`
	// Env adds variables to the command's environment. A value "$NAME"
	// is taken from Warden's own environment.
	Env map[string]string `yaml:"env"`
	// Dir is the command's working directory (relative to the config file).
	Dir string `yaml:"dir"`

	// Postgres makes this upstream Warden's built-in PostgreSQL connector.
	Postgres *Postgres `yaml:"postgres"`

	// AllowTools lists the upstream's tool names (unprefixed) that may be
	// called. Empty means none; "*" must be written to allow all.
	AllowTools []string `yaml:"allow_tools"`
	// Unprefixed exposes this upstream's tools, prompts under their own
	// names instead of "<name>.<tool>". At most one upstream may set it.
	Unprefixed bool `yaml:"unprefixed"`
	// ConnectTimeout bounds connecting and the first listing. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Postgres configures the built-in PostgreSQL connector: each call runs in
// its own transaction as a least-privilege role (see `warden db bootstrap`).
type Postgres struct {
	// DSNEnv names the environment variable holding the connection string,
	// which never appears in this file. Required.
	DSNEnv string `yaml:"dsn_env"`
	// ReadRole runs query, list_tables and describe_table. Default
	// warden_reader.
	ReadRole string `yaml:"read_role"`
	// WriteRole runs execute. Default warden_writer.
	WriteRole string `yaml:"write_role"`
	// StatementTimeout bounds each statement. Default 5s.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// MaxRows bounds the rows a call returns. Default 1000.
	MaxRows int `yaml:"max_rows"`
	// MaxResultBytes bounds a result's size. Default 1 MiB.
	MaxResultBytes int `yaml:"max_result_bytes"`
	// Tools the connector serves. Default the read-only ones: query,
	// list_tables, describe_table; execute must be named.
	Tools []string `yaml:"tools"`
}

// upstreamName is what an upstream may be called: it becomes a tool prefix.
var upstreamName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Load reads, defaults and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes configuration text strictly (unknown fields are errors),
// fills in defaults and validates it. dir resolves relative paths.
func Parse(data []byte, dir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	c.dir = dir
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Version == 0 {
		c.Version = 1
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8462"
	}
	if c.Limits.MaxMessageBytes == 0 {
		c.Limits.MaxMessageBytes = 4 << 20
	}
	if c.Limits.MaxDepth == 0 {
		c.Limits.MaxDepth = 64
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 60 * time.Second
	}
	if c.StateKeyFile == "" {
		c.StateKeyFile = "warden-state.key"
	}
	c.StateKeyFile = c.Resolve(c.StateKeyFile)
	if c.Store == "" {
		c.Store = "warden.db"
	}
	c.Store = c.Resolve(c.Store)
	if c.Credentials.Issuer == "" {
		c.Credentials.Issuer = "warden"
	}
	if c.Credentials.RotateEvery == 0 {
		c.Credentials.RotateEvery = 24 * time.Hour
	}
	if c.Credentials.KeyDir == "" {
		c.Credentials.KeyDir = c.Store + ".keys"
	}
	c.Credentials.KeyDir = c.Resolve(c.Credentials.KeyDir)
	if c.Audit.KeyFile == "" {
		c.Audit.KeyFile = audit.KeyPathFor(c.Store)
	}
	c.Audit.KeyFile = c.Resolve(c.Audit.KeyFile)
	if c.Policy != "" {
		c.Policy = c.Resolve(c.Policy)
	}
	if j := c.Identity.JWT; j != nil && j.JWKSFile != "" {
		j.JWKSFile = c.Resolve(j.JWKSFile)
	}
	for _, u := range c.Upstreams {
		if u == nil {
			continue
		}
		if u.ConnectTimeout == 0 {
			u.ConnectTimeout = 10 * time.Second
		}
		if u.Dir != "" {
			u.Dir = c.Resolve(u.Dir)
		}
	}
}

// Resolve makes a path relative to the config file's directory absolute.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

func (c *Config) validate() error {
	var errs []error
	if c.Version != 1 {
		errs = append(errs, fmt.Errorf("version %d is not supported (want 1)", c.Version))
	}
	if c.Limits.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("limits.max_message_bytes %d is below the minimum of 1024", c.Limits.MaxMessageBytes))
	}
	if c.Limits.MaxDepth < 4 || c.Limits.MaxDepth > 1000 {
		errs = append(errs, fmt.Errorf("limits.max_depth %d is outside 4..1000", c.Limits.MaxDepth))
	}
	if c.AdminListen != "" {
		if err := c.Admin.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	c.Approvals = c.Approvals.WithDefaults()
	if err := c.Approvals.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Identity.Validate(); err != nil {
		errs = append(errs, err)
	}
	negative := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	negative("shutdown_timeout", c.ShutdownTimeout)
	negative("call_timeout", c.CallTimeout)
	negative("audit.checkpoint_interval", c.Audit.CheckpointInterval)
	negative("credentials.lifetime", c.Credentials.Lifetime)
	negative("credentials.rotate_every", c.Credentials.RotateEvery)
	if c.StdioPrincipal != nil && c.StdioPrincipal.ID == "" {
		errs = append(errs, errors.New("stdio_principal.id is required"))
	}
	unprefixed := 0
	for _, name := range c.UpstreamNames() {
		u := c.Upstreams[name]
		where := fmt.Sprintf("upstreams.%s", name)
		if !upstreamName.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: name must match %s", where, upstreamName))
		}
		if u == nil {
			errs = append(errs, fmt.Errorf("%s: empty", where))
			continue
		}
		kinds := 0
		for _, set := range []bool{u.URL != "", len(u.Command) > 0, u.Postgres != nil} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds > 1:
			errs = append(errs, fmt.Errorf("%s: set only one of url, command and postgres", where))
		case kinds == 0:
			errs = append(errs, fmt.Errorf("%s: set url (Streamable HTTP), command (stdio) or postgres (built-in connector)", where))
		case u.Postgres != nil && u.Postgres.DSNEnv == "":
			errs = append(errs, fmt.Errorf("%s.postgres.dsn_env: name the environment variable that holds the connection string", where))
		case u.URL != "" && !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://"):
			errs = append(errs, fmt.Errorf("%s: url must be http:// or https://", where))
		}
		for h, env := range u.HeadersFromEnv {
			if env == "" {
				errs = append(errs, fmt.Errorf("%s.headers_from_env.%s: names no environment variable", where, h))
			}
		}
		negative(where+".connect_timeout", u.ConnectTimeout)
		if u.Postgres != nil {
			negative(where+".postgres.statement_timeout", u.Postgres.StatementTimeout)
		}
		if slices.Contains(u.AllowTools, "") {
			errs = append(errs, fmt.Errorf("%s.allow_tools: empty tool name", where))
		}
		if u.Unprefixed {
			unprefixed++
		}
	}
	for name, e := range c.Catalog {
		switch e.Risk {
		case "", "read", "write", "destructive", "egress":
		default:
			errs = append(errs, fmt.Errorf("catalog.%s.risk %q is not one of read, write, destructive, egress", name, e.Risk))
		}
	}
	if unprefixed > 1 {
		errs = append(errs, errors.New("at most one upstream may set unprefixed: true"))
	}
	return errors.Join(errs...)
}

// UpstreamNames returns the upstream names in a stable order.
func (c *Config) UpstreamNames() []string {
	names := make([]string, 0, len(c.Upstreams))
	for n := range c.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Allows reports whether the upstream's allow-list admits tool (unprefixed).
func (u *Upstream) Allows(tool string) bool {
	for _, a := range u.AllowTools {
		if a == "*" || a == tool {
			return true
		}
	}
	return false
}
