package pin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/pin/pintest"
)

// reviewFixture pins two tools, one changed since, plus a look-alike.
func reviewFixture(t *testing.T) (*pin.MemoryStore, *pin.Pinner, pin.Definition) {
	t.Helper()
	store := pin.NewMemoryStore()
	p, _ := newPinner(t, store, false)
	check(t, p, pintest.Definition("shop", "get_order", 1), pintest.Definition("mail", "send_email", 1),
		pintest.Definition("mail", "send_emai1", 1))
	changed := poisonedDefinition("shop")
	changed.Name = "get_order"
	check(t, p, changed)
	return store, p, changed
}

func TestWriteListAndDiffAndApprove(t *testing.T) {
	ctx := context.Background()
	store, p, changed := reviewFixture(t)
	var out bytes.Buffer
	if err := pin.WriteList(ctx, &out, store, pin.FormatText); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "TOOL") ||
		!strings.Contains(lines[3], "shop.get_order") || !strings.Contains(lines[3], "quarantined") ||
		!strings.Contains(lines[1], "mail.send_emai1") || !strings.Contains(lines[1], "approved") {
		t.Fatalf("list:\n%s", out.String())
	}

	out.Reset()
	if err := pin.WriteList(ctx, &out, store, pin.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		Tool, State, PendingDigest string
	}
	if err := json.Unmarshal(out.Bytes(), &entries); err != nil || len(entries) != 3 {
		t.Fatalf("list json = %s (%v)", out.String(), err)
	}
	if entries[2].PendingDigest != pin.Digest(changed) {
		t.Fatalf("list json pending digest = %q", entries[2].PendingDigest)
	}

	out.Reset()
	if err := pin.WriteDiff(ctx, &out, store, "shop.get_order"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pending "+pin.Digest(changed)) || !strings.Contains(out.String(), "@@ description @@") {
		t.Fatalf("diff:\n%s", out.String())
	}
	if err := pin.WriteDiff(ctx, &out, store, "shop.nope"); !errors.Is(err, pin.ErrNotPinned) {
		t.Fatalf("diff of an unknown tool: %v", err)
	}
	if err := pin.WriteDiff(ctx, &out, store, "no-dot"); err == nil {
		t.Fatal("diff accepted a reference without a dot")
	}

	out.Reset()
	a, err := pin.ApproveRef(ctx, &out, p, "shop.get_order", pin.Digest(changed))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != pin.Digest(changed) || !strings.Contains(out.String(), "approved shop.get_order "+a.Digest) {
		t.Fatalf("approve = %+v, output %q", a, out.String())
	}
	got, _, _ := store.Get(ctx, "shop", "get_order")
	if got.State != pin.StateApproved || got.Digest != a.Digest {
		t.Fatalf("after approve the pin is %+v", got)
	}
	if _, err := pin.ApproveRef(ctx, &out, p, "shop.get_order", a.Digest); !errors.Is(err, pin.ErrNothingPending) {
		t.Fatalf("second approval: %v", err)
	}
}

func TestWriteScan(t *testing.T) {
	ctx := context.Background()
	store, _, _ := reviewFixture(t)
	var out bytes.Buffer
	r, err := pin.WriteScan(ctx, &out, store, pin.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	if r.High == 0 || len(r.Tools) != 1 || r.Tools[0].Tool != "shop.get_order" || len(r.Tools[0].Pending) == 0 || len(r.Tools[0].Approved) != 0 {
		t.Fatalf("scan report = %+v", r)
	}
	if len(r.SimilarNames) != 1 || r.SimilarNames[0] != [2]string{"mail.send_emai1", "mail.send_email"} {
		t.Fatalf("similar names = %v", r.SimilarNames)
	}
	text := out.String()
	for _, want := range []string{"shop.get_order (quarantined)", "pending  high", "similar names: mail.send_emai1 ~ mail.send_email", "3 tools scanned, 1 with findings"} {
		if !strings.Contains(text, want) {
			t.Errorf("scan output lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	if _, err := pin.WriteScan(ctx, &out, store, pin.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var decoded pin.ScanReport
	if err := json.Unmarshal(out.Bytes(), &decoded); err != nil || decoded.High != r.High {
		t.Fatalf("scan json = %s (%v)", out.String(), err)
	}
}

func TestListShowsInvisibleCharactersInNames(t *testing.T) {
	store := pin.NewMemoryStore()
	p, _ := newPinner(t, store, false)
	check(t, p, pintest.Definition("shop", "get\u202eorder", 1))
	var out bytes.Buffer
	if err := pin.WriteList(context.Background(), &out, store, pin.FormatText); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\u202e") || !strings.Contains(out.String(), "get<U+202E>order") {
		t.Fatalf("list shows a bidi control raw:\n%s", out.String())
	}
}

func TestParseFormat(t *testing.T) {
	if _, err := pin.ParseFormat("yaml"); err == nil {
		t.Fatal("ParseFormat accepted yaml")
	}
	if f, err := pin.ParseFormat("json"); err != nil || f != pin.FormatJSON {
		t.Fatalf("ParseFormat(json) = %q, %v", f, err)
	}
}
