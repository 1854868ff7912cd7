package approval_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/approval/approvaltest"
)

type delivery struct {
	body      []byte
	signature string
	timestamp string
}

// receiver is a webhook endpoint that fails the first `failures` posts
// with 500 and reports every post it receives.
func receiver(t *testing.T, failures int) (string, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 16)
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{body, r.Header.Get(approval.HeaderSignature), r.Header.Get(approval.HeaderTimestamp)}
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/T000/B000/secretpath", got
}

func TestWebhookSignedAndRetried(t *testing.T) {
	url, got := receiver(t, 2)
	secret := []byte("hook-secret")
	hooks, err := approval.ResolveWebhooks([]approval.WebhookConfig{{URL: url, SecretEnv: "HOOK_SECRET"}},
		func(name string) string {
			if name == "HOOK_SECRET" {
				return string(secret)
			}
			return ""
		})
	if err != nil {
		t.Fatal(err)
	}
	n, err := approval.NewNotifier(hooks, slog.New(slog.DiscardHandler), approval.NotifierOptions{
		Attempts: 4, Backoff: time.Millisecond, ConsoleURL: "https://warden-admin.example.com/",
		Now: func() time.Time { return approvaltest.Base },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	b, err := approval.NewBroker(approval.NewMemoryStore(), approval.BrokerOptions{
		Notifier: n, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return approvaltest.Base },
	})
	if err != nil {
		t.Fatal(err)
	}
	call := refund("250")
	call.Principal = "alice <!channel>"
	r, err := b.Escalate(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	var last delivery
	for attempt := 1; attempt <= 3; attempt++ { // two 500s, then success
		last = <-got
		if !approval.VerifySignature(secret, last.body, last.signature) {
			t.Fatalf("attempt %d: signature %q does not verify", attempt, last.signature)
		}
		if approval.VerifySignature([]byte("other"), last.body, last.signature) {
			t.Fatal("signature verifies under another key")
		}
	}
	if last.timestamp != strconv.FormatInt(approvaltest.Base.Unix(), 10) {
		t.Errorf("timestamp header = %q", last.timestamp)
	}
	var msg approval.Message
	if err := json.Unmarshal(last.body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Warden.ApprovalID != r.ID || msg.Warden.Tool != "shop.refund_order" || msg.Warden.Timestamp != approvaltest.Base.Unix() {
		t.Errorf("facts = %+v", msg.Warden)
	}
	if want := "https://warden-admin.example.com/console/approvals/" + r.ID; msg.Warden.URL != want {
		t.Errorf("link = %q, want %q", msg.Warden.URL, want)
	}
	all := string(last.body)
	for _, want := range []string{`"text":"Approval needed`, `"blocks":[`, "shop.refund_order", "refunds over 100 need a lead", "alice &lt;!channel&gt;"} {
		if !strings.Contains(all, want) {
			t.Errorf("body lacks %q: %s", want, all)
		}
	}
	slack := msg.Text
	for _, b := range msg.Blocks {
		if b.Text != nil {
			slack += b.Text.Text
		}
	}
	if strings.Contains(slack, "<!channel>") {
		t.Errorf("the Slack text lets the principal mention a channel: %s", slack)
	}
	n.Close() // waits for the delivery goroutine: no fourth post
	select {
	case extra := <-got:
		t.Errorf("delivered again after success: %s", extra.body)
	default:
	}
}

func TestWebhookGivesUp(t *testing.T) {
	url, got := receiver(t, 100)
	n, err := approval.NewNotifier([]approval.Webhook{{URL: url, Secret: []byte("k")}}, slog.New(slog.DiscardHandler),
		approval.NotifierOptions{Attempts: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(approvaltest.NewRequest("apr_1"))
	for range 3 {
		<-got
	}
	n.Close()
	if len(got) != 0 {
		t.Fatalf("%d posts beyond the 3 attempts", len(got))
	}
}

func TestWebhookNeedsSecret(t *testing.T) {
	_, err := approval.ResolveWebhooks([]approval.WebhookConfig{{URL: "https://hooks.example.com/x", SecretEnv: "UNSET"}},
		func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "UNSET") {
		t.Fatalf("err = %v, want the unset variable named", err)
	}
}
