// Package admin is Warden's admin API: an http.Handler served on its own
// listener, apart from the MCP endpoint, with its own keys, so nothing an
// agent can reach changes what agents may do. It issues, lists, revokes and
// derives task grants and reports status. Every change is handed to an
// audit callback before the response says it happened.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
)

// Key is one accepted admin key, known only by its hash.
type Key struct {
	// ID names the key in logs and audit events; it is not secret.
	ID string `yaml:"id" json:"id"`
	// Hash is identity.HashAPIKey of the key: "sha256:" and 64 lower-case
	// hex digits.
	Hash string `yaml:"hash" json:"hash"`
}

// Config is the admin API's part of Warden's configuration (admin.keys).
type Config struct {
	// Keys are the accepted admin keys. They must differ from every MCP
	// API key. Empty: every request is refused.
	Keys []Key `yaml:"keys" json:"keys"`
}

// Validate checks the keys: ids present and unique, hashes well formed and
// unique.
func (c Config) Validate() error {
	ids := map[string]bool{}
	hashes := map[string]string{}
	for i, k := range c.Keys {
		where := fmt.Sprintf("admin.keys[%d]", i)
		if k.ID == "" {
			return fmt.Errorf("%s: id is required", where)
		}
		where += " (" + k.ID + ")"
		if ids[k.ID] {
			return fmt.Errorf("%s: id appears twice", where)
		}
		ids[k.ID] = true
		if _, err := identity.ParseAPIKeyHash(k.Hash); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if other, ok := hashes[k.Hash]; ok {
			return fmt.Errorf("%s: same key hash as %s", where, other)
		}
		hashes[k.Hash] = k.ID
	}
	return nil
}

// Event describes one change made through the admin API, for the audit log.
type Event struct {
	// Action is ActionCreate, ActionRevoke or ActionDerive.
	Action string `json:"action"`
	// Actor is who asked: the admin key id, or "grant:<id>" for a grant
	// holder deriving from its own grant.
	Actor string `json:"actor"`
	// Remote is the client's address as the listener saw it.
	Remote string `json:"remote"`
	// Grant is the grant as the change leaves it (never its secret).
	Grant grant.Grant `json:"grant"`
	// Approval is the approval request as the decision leaves it, for
	// the approval actions; nil otherwise.
	Approval *approval.Request `json:"approval,omitempty"`
}

// Actions recorded in Event.Action.
const (
	ActionCreate = "grant.create"
	ActionRevoke = "grant.revoke"
	ActionDerive = "grant.derive"
	// ActionApprove and ActionDeny are an approver's decision on an
	// approval request.
	ActionApprove = "approval.approve"
	ActionDeny    = "approval.deny"
)

// Options are what the admin API needs from the rest of Warden.
type Options struct {
	// Grants keeps the grants. Required.
	Grants grant.Store
	// Audit records a change; when it fails the request fails. Required.
	Audit func(ctx context.Context, e Event) error
	// Logger receives internal errors. Required.
	Logger *slog.Logger
	// Status reports what GET /v1/status returns (policy version and the
	// like). Nil: an empty object.
	Status func(ctx context.Context) (map[string]any, error)
	// MCPKeys are the MCP endpoint's API keys. Presenting one here is
	// answered 403, and New refuses an admin key equal to one.
	MCPKeys []identity.APIKey
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Approvals lets approvers list and decide approval requests (the
	// /v1/approvals endpoints and the /console pages). Nil: those
	// endpoints answer 404.
	Approvals Approvals
}

// Handler serves the admin API.
type Handler struct {
	keys   []adminKey
	mcp    [][]byte // digests of the MCP keys
	grants grant.Store
	audit  func(context.Context, Event) error
	logger *slog.Logger
	status func(context.Context) (map[string]any, error)
	now    func() time.Time
	mux    *http.ServeMux
	appr   *approvalRoutes
}

type adminKey struct {
	id     string
	digest []byte
}

// New returns the admin API handler for cfg.
func New(cfg Config, opts Options) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	switch {
	case opts.Grants == nil:
		return nil, errors.New("admin API: no grant store")
	case opts.Audit == nil:
		return nil, errors.New("admin API: no audit callback")
	case opts.Logger == nil:
		return nil, errors.New("admin API: nil logger")
	}
	h := &Handler{
		grants: opts.Grants,
		audit:  opts.Audit,
		logger: opts.Logger,
		status: opts.Status,
		now:    opts.Now,
	}
	if h.now == nil {
		h.now = time.Now
	}
	mcpHashes := map[string]string{}
	for _, k := range opts.MCPKeys {
		d, err := identity.ParseAPIKeyHash(k.Hash)
		if err != nil {
			return nil, fmt.Errorf("admin API: MCP key %s: %w", k.ID, err)
		}
		h.mcp = append(h.mcp, d)
		mcpHashes[k.Hash] = k.ID
	}
	for _, k := range cfg.Keys {
		if other, ok := mcpHashes[k.Hash]; ok {
			return nil, fmt.Errorf("admin API: admin key %s is also the MCP key %s; admin keys must be kept apart", k.ID, other)
		}
		d, _ := identity.ParseAPIKeyHash(k.Hash) // validated above
		h.keys = append(h.keys, adminKey{id: k.ID, digest: d})
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/grants", h.adminOnly(h.createGrant))
	mux.Handle("GET /v1/grants", h.adminOnly(h.listGrants))
	mux.Handle("GET /v1/grants/{id}", h.adminOnly(h.getGrant))
	mux.Handle("POST /v1/grants/{id}/revoke", h.adminOnly(h.revokeGrant))
	mux.HandleFunc("POST /v1/grants/{id}/derive", h.deriveGrant)
	mux.Handle("GET /v1/status", h.adminOnly(h.getStatus))
	if err := h.registerApprovals(mux, opts.Approvals); err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such admin endpoint")
	})
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// adminOnly admits requests bearing an admin key: 401 without a valid one,
// 403 for a credential that is valid elsewhere (an MCP key, a grant token).
func (h *Handler) adminOnly(next func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := bearer(r)
		if !ok {
			unauthorized(w, "an admin key is required (Authorization: Bearer KEY)")
			return
		}
		actor, _ := h.adminKeyID(presented)
		sum := sha256.Sum256([]byte(presented))
		mcp := 0
		for _, d := range h.mcp {
			mcp |= subtle.ConstantTimeCompare(sum[:], d)
		}
		switch {
		case actor != "":
			next(w, r, actor)
		case mcp == 1:
			writeError(w, http.StatusForbidden, "an MCP key cannot use the admin API; use an admin key")
		case strings.HasPrefix(presented, grant.TokenPrefix):
			writeError(w, http.StatusForbidden, "a task grant token can only derive from its own grant")
		default:
			unauthorized(w, "invalid admin key")
		}
	})
}

// bearer returns the request's bearer credential.
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="warden-admin"`)
	writeError(w, http.StatusUnauthorized, msg)
}
