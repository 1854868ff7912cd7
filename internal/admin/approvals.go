package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/wardenmcp/warden/internal/approval"
)

// Approvals is what the admin API needs to let approvers act;
// *approval.Broker is one. Decisions go through it, not the store, so a
// call held waiting for the request wakes at once.
type Approvals interface {
	List(ctx context.Context, f approval.Filter) ([]approval.Request, error)
	Get(ctx context.Context, id string) (approval.Request, error)
	Decide(ctx context.Context, id string, approve bool, by, comment string) (approval.Request, error)
}

// ApprovalResponse answers a request about one approval request.
type ApprovalResponse struct {
	Approval approval.Request `json:"approval"`
}

// ApprovalListResponse answers GET /v1/approvals.
type ApprovalListResponse struct {
	Approvals []approval.Request `json:"approvals"`
}

// DecisionRequest is the body of POST /v1/approvals/{id}/approve and
// /deny. The body may be empty: no comment.
type DecisionRequest struct {
	Comment string `json:"comment,omitempty"`
}

// approvalRoutes holds what the approval endpoints and the console share.
type approvalRoutes struct {
	approvals Approvals
	console   *console
}

// registerApprovals adds the approval endpoints and the console to mux.
// Without approvals they answer 404 like any unknown path.
func (h *Handler) registerApprovals(mux *http.ServeMux, a Approvals) error {
	if a == nil {
		return nil
	}
	c, err := newConsole(h)
	if err != nil {
		return err
	}
	h.appr = &approvalRoutes{approvals: a, console: c}
	mux.Handle("GET /v1/approvals", h.adminOnly(h.listApprovals))
	mux.Handle("GET /v1/approvals/{id}", h.adminOnly(h.getApproval))
	mux.Handle("POST /v1/approvals/{id}/approve", h.adminOnly(func(w http.ResponseWriter, r *http.Request, actor string) {
		h.decideApproval(w, r, actor, true)
	}))
	mux.Handle("POST /v1/approvals/{id}/deny", h.adminOnly(func(w http.ResponseWriter, r *http.Request, actor string) {
		h.decideApproval(w, r, actor, false)
	}))
	c.register(mux)
	return nil
}

func (h *Handler) listApprovals(w http.ResponseWriter, r *http.Request, _ string) {
	f, err := approvalFilter(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rs, err := h.appr.approvals.List(r.Context(), f)
	if err != nil {
		h.approvalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ApprovalListResponse{Approvals: rs})
}

// approvalFilter reads ?state=&principal=&limit=.
func approvalFilter(r *http.Request) (approval.Filter, error) {
	q := r.URL.Query()
	f := approval.Filter{State: approval.State(q.Get("state")), Principal: q.Get("principal")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return f, errors.New("limit must be a number")
		}
		f.Limit = n
	}
	return f.Normalize()
}

func (h *Handler) getApproval(w http.ResponseWriter, r *http.Request, _ string) {
	req, err := h.appr.approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		h.approvalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ApprovalResponse{Approval: req})
}

func (h *Handler) decideApproval(w http.ResponseWriter, r *http.Request, actor string, approve bool) {
	var body DecisionRequest
	if !decodeOptionalBody(w, r, &body) {
		return
	}
	req, err := h.decide(r, actor, r.PathValue("id"), approve, body.Comment)
	if err != nil {
		h.approvalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ApprovalResponse{Approval: req})
}

// decide records an approver's decision. It is audited before it is made:
// when the record cannot be written nothing is decided, so no approval is
// ever usable without its audit record.
func (h *Handler) decide(r *http.Request, actor, id string, approve bool, comment string) (approval.Request, error) {
	ctx := r.Context()
	if len(comment) > approval.MaxComment {
		return approval.Request{}, fmt.Errorf("%w: comment over %d bytes", approval.ErrInvalid, approval.MaxComment)
	}
	current, err := h.appr.approvals.Get(ctx, id)
	if err != nil {
		return approval.Request{}, err
	}
	if current.State != approval.StatePending {
		return approval.Request{}, fmt.Errorf("request %s is %s: %w", id, current.State, approval.ErrNotPending)
	}
	action := ActionDeny
	if approve {
		action = ActionApprove
	}
	intended := approval.Decided(current, approve, actor, comment, h.now())
	if err := h.audit(ctx, Event{Action: action, Actor: actor, Remote: r.RemoteAddr, Approval: &intended}); err != nil {
		return approval.Request{}, fmt.Errorf("audit %s of %s (not decided): %w", action, id, err)
	}
	return h.appr.approvals.Decide(ctx, id, approve, actor, comment)
}

// approvalError answers an approval package error with its caller-safe
// message.
func (h *Handler) approvalError(w http.ResponseWriter, r *http.Request, err error) {
	var code int
	switch {
	case errors.Is(err, approval.ErrUnknown):
		code = http.StatusNotFound
	case errors.Is(err, approval.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, approval.ErrNotPending), errors.Is(err, approval.ErrNotUsable):
		code = http.StatusConflict
	default:
		h.internalError(w, r, err)
		return
	}
	writeError(w, code, err.Error())
}

// decodeOptionalBody is decodeBody for a body that may be empty.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody))
		return false
	}
	if len(body) == 0 {
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decodeBody(w, r, v)
}
