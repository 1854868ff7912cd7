package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256 of
// the body under the webhook's secret; the body carries the same
// timestamp, so a receiver checking the signature also knows the
// timestamp is genuine and can refuse stale replays.
const (
	HeaderSignature = "X-Warden-Signature"
	HeaderTimestamp = "X-Warden-Timestamp"
)

// Sign returns the X-Warden-Signature value for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether sig is body's signature under secret,
// in constant time.
func VerifySignature(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Webhook is a receiver with its signing key resolved.
type Webhook struct {
	URL    string
	Secret []byte
}

// ResolveWebhooks reads each webhook's secret from the environment through
// getenv; a missing secret is an error, never an unsigned webhook.
func ResolveWebhooks(cfgs []WebhookConfig, getenv func(string) string) ([]Webhook, error) {
	out := make([]Webhook, 0, len(cfgs))
	for i, c := range cfgs {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("approvals.webhooks[%d]: url %q: need an http or https URL", i, c.URL)
		}
		if c.SecretEnv == "" {
			return nil, fmt.Errorf("approvals.webhooks[%d]: secret_env is required", i)
		}
		secret := getenv(c.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("approvals.webhooks[%d]: the environment variable %s holding the signing key is empty or unset", i, c.SecretEnv)
		}
		out = append(out, Webhook{URL: c.URL, Secret: []byte(secret)})
	}
	return out, nil
}

// NotifierOptions tune delivery.
type NotifierOptions struct {
	// Client sends the POSTs. Nil: a client with a 10 s timeout.
	Client *http.Client
	// Attempts is the most deliveries per webhook and request. Zero: 5.
	Attempts int
	// Backoff is the wait before the second attempt, doubled after each
	// failure. Zero: 1 s.
	Backoff time.Duration
	// ConsoleURL is the admin listener's external base URL; notifications
	// link to ConsoleURL/console/approvals/<id>. Empty: no link.
	ConsoleURL string
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Notifier posts notifications about new requests to webhooks, in the
// background, retrying failures with bounded exponential backoff. A
// notification never delays the call that caused it.
type Notifier struct {
	hooks    []Webhook
	client   *http.Client
	attempts int
	backoff  time.Duration
	console  string
	now      func() time.Time
	logger   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNotifier returns a notifier for hooks.
func NewNotifier(hooks []Webhook, logger *slog.Logger, opts NotifierOptions) (*Notifier, error) {
	if logger == nil {
		return nil, errors.New("approval notifier: nil logger")
	}
	for i, h := range hooks {
		if len(h.Secret) == 0 {
			return nil, fmt.Errorf("approval notifier: webhook %d has no signing key", i)
		}
	}
	n := &Notifier{
		hooks:    hooks,
		client:   opts.Client,
		attempts: opts.Attempts,
		backoff:  opts.Backoff,
		console:  strings.TrimRight(opts.ConsoleURL, "/"),
		now:      opts.Now,
		logger:   logger,
	}
	if n.client == nil {
		n.client = &http.Client{Timeout: 10 * time.Second}
	}
	if n.attempts <= 0 {
		n.attempts = 5
	}
	if n.backoff <= 0 {
		n.backoff = time.Second
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Notify starts delivering a notification about r to every webhook and
// returns at once.
func (n *Notifier) Notify(r Request) {
	if n == nil || len(n.hooks) == 0 {
		return
	}
	ts := n.now().UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n.message(r, ts)); err != nil {
		n.logger.Error("approval notification: encode", "approval", r.ID, "err", err)
		return
	}
	body := bytes.TrimSpace(buf.Bytes())
	for _, h := range n.hooks {
		n.wg.Go(func() { n.deliver(h, r.ID, body, ts) })
	}
}

// Close stops retries in progress and waits for deliveries to end.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.cancel()
	n.wg.Wait()
}

func (n *Notifier) deliver(h Webhook, id string, body []byte, ts time.Time) {
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		err := n.post(h, body, ts)
		if err == nil {
			return
		}
		if attempt == n.attempts {
			n.logger.Error("approval notification failed; giving up", "approval", id, "webhook", redactURL(h.URL), "attempts", attempt, "err", err)
			return
		}
		n.logger.Warn("approval notification failed; will retry", "approval", id, "webhook", redactURL(h.URL), "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-n.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait *= 2
	}
}

func (n *Notifier) post(h Webhook, body []byte, ts time.Time) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, Sign(h.Secret, body))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// redactURL drops a webhook URL's path and query: Slack-style URLs carry
// their secret in the path.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// Message is the webhook body: Slack-compatible (text and blocks), plus
// Warden's own fields for receivers that are not Slack.
type Message struct {
	Text   string       `json:"text"`
	Blocks []Block      `json:"blocks"`
	Warden MessageFacts `json:"warden"`
}

// Block is a Slack layout block (section or context).
type Block struct {
	Type     string       `json:"type"`
	Text     *TextObject  `json:"text,omitempty"`
	Elements []TextObject `json:"elements,omitempty"`
}

// TextObject is Slack's text object.
type TextObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// MessageFacts identify the request in a machine-readable form.
type MessageFacts struct {
	Event      string    `json:"event"`
	ApprovalID string    `json:"approval_id"`
	Tool       string    `json:"tool"`
	Principal  string    `json:"principal"`
	Reason     string    `json:"reason,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	Timestamp  int64     `json:"timestamp"`
	URL        string    `json:"url,omitempty"`
}

func (n *Notifier) message(r Request, ts time.Time) Message {
	link := ""
	if n.console != "" {
		link = n.console + "/console/approvals/" + url.PathEscape(r.ID)
	}
	text := fmt.Sprintf("Approval needed: %s wants to call %s", mrkdwn(r.Principal), mrkdwn(r.Tool))
	var detail strings.Builder
	fmt.Fprintf(&detail, "*Tool:* `%s`\n*Principal:* %s\n", mrkdwn(r.Tool), mrkdwn(r.Principal))
	if r.Task != "" {
		fmt.Fprintf(&detail, "*Task:* %s\n", mrkdwn(r.Task))
	}
	if r.Reason != "" {
		fmt.Fprintf(&detail, "*Reason:* %s\n", mrkdwn(r.Reason))
	}
	fmt.Fprintf(&detail, "*Request:* %s, expires %s", mrkdwn(r.ID), r.ExpiresAt.UTC().Format(time.RFC3339))
	blocks := []Block{
		{Type: "section", Text: &TextObject{Type: "mrkdwn", Text: text}},
		{Type: "section", Text: &TextObject{Type: "mrkdwn", Text: detail.String()}},
	}
	if link != "" {
		blocks = append(blocks, Block{Type: "section", Text: &TextObject{Type: "mrkdwn", Text: "<" + link + "|Review in the Warden console>"}})
	}
	blocks = append(blocks, Block{Type: "context", Elements: []TextObject{{Type: "mrkdwn", Text: "warden approvals approve " + mrkdwn(r.ID)}}})
	return Message{
		Text:   text,
		Blocks: blocks,
		Warden: MessageFacts{
			Event: "approval.requested", ApprovalID: r.ID, Tool: r.Tool, Principal: r.Principal,
			Reason: r.Reason, ExpiresAt: r.ExpiresAt, Timestamp: ts.Unix(), URL: link,
		},
	}
}

// mrkdwn escapes the characters Slack's mrkdwn gives meaning to, so a
// principal or reason cannot forge links or mentions.
func mrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
