package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/wire"
)

// GrantRequest is the body of POST /v1/grants and POST /v1/grants/{id}/derive.
type GrantRequest struct {
	// Principal is who may present the grant. Deriving: omit it (or repeat
	// the parent's).
	Principal string `json:"principal,omitempty"`
	// Tools are names or globs. Deriving: absent inherits the parent's,
	// [] covers none.
	Tools []string `json:"tools"`
	// Scope is what policy reads as task.scope.
	Scope map[string]string `json:"scope,omitempty"`
	// Budget is the most calls; 0 or absent is unlimited (deriving: the
	// parent's remaining calls).
	Budget int64 `json:"budget,omitempty"`
	// Rate is calls per minute; 0 or absent is unlimited (deriving: the
	// parent's rate).
	Rate int64 `json:"rate,omitempty"`
	// TTL is how long the grant lives, as a Go duration ("1h30m"). Give
	// TTL or ExpiresAt; creating needs one, deriving inherits the parent's
	// expiry without either.
	TTL string `json:"ttl,omitempty"`
	// ExpiresAt is when the grant expires (RFC 3339).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Labels are added to the grant (deriving: to the parent's).
	Labels []string `json:"labels,omitempty"`
}

// GrantResponse answers a request about one grant. Token is set only when
// the grant was just made; it is never shown again.
type GrantResponse struct {
	Grant grant.Grant `json:"grant"`
	Token string      `json:"token,omitempty"`
}

// ListResponse answers GET /v1/grants.
type ListResponse struct {
	Grants []grant.Grant `json:"grants"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// spec turns the request into a grant.Spec at now.
func (req GrantRequest) spec(now time.Time) (grant.Spec, error) {
	s := grant.Spec{
		Principal: req.Principal,
		Tools:     req.Tools,
		Scope:     req.Scope,
		Budget:    req.Budget,
		Rate:      req.Rate,
		ExpiresAt: req.ExpiresAt,
		Labels:    req.Labels,
	}
	if req.TTL != "" {
		if !req.ExpiresAt.IsZero() {
			return grant.Spec{}, errors.New("give ttl or expires_at, not both")
		}
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return grant.Spec{}, fmt.Errorf("ttl %q is not a positive duration such as 30m or 2h", req.TTL)
		}
		s.ExpiresAt = now.Add(ttl)
	}
	return s, nil
}

func (h *Handler) createGrant(w http.ResponseWriter, r *http.Request, actor string) {
	var req GrantRequest
	if !decodeBody(w, r, &req) {
		return
	}
	now := h.now()
	spec, err := req.spec(now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	g, token, err := grant.Issue(spec, now)
	if err != nil {
		h.grantError(w, r, err)
		return
	}
	h.store(w, r, Event{Action: ActionCreate, Actor: actor, Remote: r.RemoteAddr, Grant: g}, token)
}

func (h *Handler) deriveGrant(w http.ResponseWriter, r *http.Request) {
	token, ok := bearer(r)
	if !ok {
		unauthorized(w, "deriving needs the parent grant's token (Authorization: Bearer wg_...)")
		return
	}
	id, secret, err := grant.ParseToken(token)
	if err != nil {
		unauthorized(w, "invalid task grant token")
		return
	}
	parent, err := h.grants.Get(r.Context(), id)
	if err == nil {
		err = grant.VerifySecret(parent, secret)
	}
	if err != nil {
		if !errors.Is(err, grant.ErrUnknown) {
			h.internalError(w, r, err)
			return
		}
		unauthorized(w, "invalid task grant token")
		return
	}
	if r.PathValue("id") != parent.ID {
		writeError(w, http.StatusForbidden, "a task grant token can only derive from its own grant")
		return
	}
	var req GrantRequest
	if !decodeBody(w, r, &req) {
		return
	}
	now := h.now()
	spec, err := req.spec(now)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	child, childToken, err := grant.Derive(parent, spec, now)
	if err != nil {
		h.grantError(w, r, err)
		return
	}
	h.store(w, r, Event{Action: ActionDerive, Actor: "grant:" + parent.ID, Remote: r.RemoteAddr, Grant: child}, childToken)
}

// store keeps a new grant, audits it and answers with its token. A grant
// whose audit record cannot be written is revoked before its token was
// ever shown, so no unaudited grant is usable.
func (h *Handler) store(w http.ResponseWriter, r *http.Request, e Event, token string) {
	ctx := r.Context()
	if err := h.grants.Create(ctx, e.Grant); err != nil {
		h.grantError(w, r, err)
		return
	}
	stored, err := h.grants.Get(ctx, e.Grant.ID)
	if err != nil {
		h.internalError(w, r, err)
		return
	}
	e.Grant = stored
	if err := h.audit(ctx, e); err != nil {
		if _, rerr := h.grants.Revoke(context.WithoutCancel(ctx), stored.ID, h.now()); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoke the unaudited grant: %w", rerr))
		}
		h.internalError(w, r, fmt.Errorf("audit %s of grant %s: %w", e.Action, stored.ID, err))
		return
	}
	writeJSON(w, http.StatusCreated, GrantResponse{Grant: stored, Token: token})
}

func (h *Handler) listGrants(w http.ResponseWriter, r *http.Request, _ string) {
	f := grant.ListFilter{Principal: r.URL.Query().Get("principal")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit must be a number")
			return
		}
		f.Limit = n
	}
	gs, err := h.grants.List(r.Context(), f)
	if err != nil {
		h.grantError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ListResponse{Grants: gs})
}

func (h *Handler) getGrant(w http.ResponseWriter, r *http.Request, _ string) {
	g, err := h.grants.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.grantError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, GrantResponse{Grant: g})
}

// revokeGrant revokes first and audits after: a revocation takes effect
// even when the audit log is failing (the request still fails, so the
// operator knows the record is missing).
func (h *Handler) revokeGrant(w http.ResponseWriter, r *http.Request, actor string) {
	g, err := h.grants.Revoke(r.Context(), r.PathValue("id"), h.now())
	if err != nil {
		h.grantError(w, r, err)
		return
	}
	if err := h.audit(r.Context(), Event{Action: ActionRevoke, Actor: actor, Remote: r.RemoteAddr, Grant: g}); err != nil {
		h.internalError(w, r, fmt.Errorf("audit revocation of grant %s (revoked): %w", g.ID, err))
		return
	}
	writeJSON(w, http.StatusOK, GrantResponse{Grant: g})
}

func (h *Handler) getStatus(w http.ResponseWriter, r *http.Request, _ string) {
	status := map[string]any{}
	if h.status != nil {
		s, err := h.status(r.Context())
		if err != nil {
			h.internalError(w, r, fmt.Errorf("status: %w", err))
			return
		}
		if s != nil {
			status = s
		}
	}
	writeJSON(w, http.StatusOK, status)
}

// grantError answers a grant package error with its caller-safe message.
func (h *Handler) grantError(w http.ResponseWriter, r *http.Request, err error) {
	var code int
	switch {
	case errors.Is(err, grant.ErrUnknown):
		code = http.StatusNotFound
	case errors.Is(err, grant.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, grant.ErrExists):
		code = http.StatusConflict
	case errors.Is(err, grant.ErrWider), errors.Is(err, grant.ErrRevoked), errors.Is(err, grant.ErrExpired),
		errors.Is(err, grant.ErrBudget), errors.Is(err, grant.ErrNotCovered), errors.Is(err, grant.ErrRate):
		code = http.StatusForbidden
	default:
		h.internalError(w, r, err)
		return
	}
	// The detail (which field, which limit) helps the trusted caller; the
	// wrapped text holds no secret.
	writeError(w, code, err.Error())
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.ErrorContext(r.Context(), "admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; see the Warden log")
}

// decodeBody reads one strict JSON object into v: no duplicate or
// case-folded keys, no unknown fields, nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody))
		return false
	}
	if err := wire.Check(body, 8); err != nil {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // the status is sent; a failed write has no one to tell
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}
