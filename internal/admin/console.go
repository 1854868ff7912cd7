package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenmcp/warden/internal/approval"
)

//go:embed console/*.html
var consoleFiles embed.FS

// Console session settings.
const (
	sessionCookie   = "warden_console"
	sessionLifetime = 8 * time.Hour
	consolePath     = "/console"
)

// console is the approvers' web page: server-rendered HTML, no scripts.
// Logging in with an admin key sets a session cookie (an HMAC-signed key
// id and expiry, never the key); every form carries a CSRF token derived
// from the session, and cross-origin POSTs are refused outright.
type console struct {
	h      *Handler
	secret []byte // signs sessions; new at every start, so sessions end with the process
	tmpl   *template.Template
	cop    *http.CrossOriginProtection
}

func newConsole(h *Handler) (*console, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	tmpl, err := template.New("console").Funcs(template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format(time.RFC3339)
		},
	}).ParseFS(consoleFiles, "console/*.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	return &console{h: h, secret: secret, tmpl: tmpl, cop: http.NewCrossOriginProtection()}, nil
}

func (c *console) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+consolePath+"/login", c.loginPage)
	mux.Handle("POST "+consolePath+"/login", c.cop.Handler(http.HandlerFunc(c.login)))
	mux.Handle("POST "+consolePath+"/logout", c.cop.Handler(c.session(c.logout)))
	mux.Handle("GET "+consolePath+"/approvals", c.session(c.list))
	mux.Handle("GET "+consolePath+"/approvals/{id}", c.session(c.detail))
	mux.Handle("POST "+consolePath+"/approvals/{id}/approve", c.cop.Handler(c.session(c.decider(true))))
	mux.Handle("POST "+consolePath+"/approvals/{id}/deny", c.cop.Handler(c.session(c.decider(false))))
	mux.HandleFunc("GET "+consolePath+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, consolePath+"/approvals", http.StatusSeeOther)
	})
}

// page is what every template gets.
type page struct {
	Actor    string
	CSRF     string
	Error    string
	State    string
	Requests []approval.Request
	Request  approval.Request
	Args     string
	States   []string
}

func (c *console) render(w http.ResponseWriter, code int, name string, p page) {
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		c.h.logger.Error("console: render", "template", name, "err", err)
		http.Error(w, "internal error; see the Warden log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// No scripts, no framing, forms only to this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login.html", page{})
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	key := strings.TrimSpace(r.PostFormValue("key"))
	actor, ok := c.h.adminKeyID(key)
	if !ok {
		c.render(w, http.StatusUnauthorized, "login.html", page{Error: "That is not an admin key."})
		return
	}
	value := c.sign(actor, c.h.now().Add(sessionLifetime))
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: consolePath, MaxAge: int(sessionLifetime.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, consolePath+"/approvals", http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request, _ string, _ string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: consolePath, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, consolePath+"/login", http.StatusSeeOther)
}

func (c *console) list(w http.ResponseWriter, r *http.Request, actor, csrf string) {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = string(approval.StatePending)
	}
	f := approval.Filter{}
	if state != "all" {
		f.State = approval.State(state)
	}
	p := page{Actor: actor, CSRF: csrf, State: state, States: []string{"pending", "approved", "denied", "expired", "used", "all"}}
	rs, err := c.h.appr.approvals.List(r.Context(), f)
	if err != nil {
		if errors.Is(err, approval.ErrInvalid) {
			p.Error = "Unknown state."
			c.render(w, http.StatusBadRequest, "list.html", p)
			return
		}
		c.internalError(w, r, err)
		return
	}
	p.Requests = rs
	c.render(w, http.StatusOK, "list.html", p)
}

func (c *console) detail(w http.ResponseWriter, r *http.Request, actor, csrf string) {
	c.showDetail(w, r, actor, csrf, http.StatusOK, "")
}

func (c *console) showDetail(w http.ResponseWriter, r *http.Request, actor, csrf string, code int, msg string) {
	req, err := c.h.appr.approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		if errors.Is(err, approval.ErrUnknown) {
			c.render(w, http.StatusNotFound, "list.html", page{Actor: actor, CSRF: csrf, Error: "No such approval request."})
			return
		}
		c.internalError(w, r, err)
		return
	}
	p := page{Actor: actor, CSRF: csrf, Request: req, Error: msg, Args: "(none)"}
	if len(req.Args) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, req.Args, "", "  ") == nil {
			p.Args = buf.String()
		} else {
			p.Args = string(req.Args)
		}
	}
	c.render(w, code, "detail.html", p)
}

func (c *console) decider(approve bool) func(http.ResponseWriter, *http.Request, string, string) {
	return func(w http.ResponseWriter, r *http.Request, actor, csrf string) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrf)) != 1 {
			http.Error(w, "the form is stale or did not come from this console; reload the page", http.StatusForbidden)
			return
		}
		id := r.PathValue("id")
		_, err := c.h.decide(r, actor, id, approve, r.PostForm.Get("comment"))
		switch {
		case err == nil:
			http.Redirect(w, r, consolePath+"/approvals/"+url.PathEscape(id), http.StatusSeeOther)
		case errors.Is(err, approval.ErrNotPending):
			c.showDetail(w, r, actor, csrf, http.StatusConflict, "This request is no longer pending.")
		case errors.Is(err, approval.ErrInvalid):
			c.showDetail(w, r, actor, csrf, http.StatusBadRequest, "The comment is too long.")
		case errors.Is(err, approval.ErrUnknown):
			c.render(w, http.StatusNotFound, "list.html", page{Actor: actor, CSRF: csrf, Error: "No such approval request."})
		default:
			c.internalError(w, r, err)
		}
	}
}

func (c *console) internalError(w http.ResponseWriter, r *http.Request, err error) {
	c.h.logger.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	c.render(w, http.StatusInternalServerError, "list.html", page{Error: "Internal error; see the Warden log."})
}

// session admits requests with a valid session cookie whose key is still
// configured, and passes the key id and the session's CSRF token; others
// are sent to the login page (GET) or refused (POST).
func (c *console) session(next func(w http.ResponseWriter, r *http.Request, actor, csrf string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		actor, ok := "", false
		if err == nil {
			actor, ok = c.verify(ck.Value)
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, consolePath+"/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in to the console first", http.StatusUnauthorized)
			return
		}
		next(w, r, actor, c.csrfToken(ck.Value))
	})
}

// sign returns a session value: the key id, the expiry and their HMAC.
func (c *console) sign(actor string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(actor)) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + c.mac("session", payload)
}

// verify checks a session value and returns its key id.
func (c *console) verify(value string) (string, bool) {
	payload, sig, ok := cutLast(value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(c.mac("session", payload))) {
		return "", false
	}
	enc, exp, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !c.h.now().Before(time.Unix(expires, 0)) {
		return "", false
	}
	actor, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	// A key removed from the configuration ends its sessions.
	for _, k := range c.h.keys {
		if k.id == string(actor) {
			return k.id, true
		}
	}
	return "", false
}

func (c *console) csrfToken(session string) string { return c.mac("csrf", session) }

func (c *console) mac(purpose, s string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// adminKeyID returns the id of the admin key presented, comparing with
// every key in constant time.
func (h *Handler) adminKeyID(presented string) (string, bool) {
	if presented == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(presented))
	id := ""
	for _, k := range h.keys {
		if subtle.ConstantTimeCompare(sum[:], k.digest) == 1 {
			id = k.id
		}
	}
	return id, id != ""
}
