package sqlite

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
)

func TestCountersAddAndSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := db.Counters().Add(ctx, "task-1", "released:EMAIL_ADDRESS", 2); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	total, err := db.Counters().Add(ctx, "task-1", "released:EMAIL_ADDRESS", 1)
	if err != nil || total != 41 {
		t.Fatalf("total after 20 concurrent adds of 2, a reopen and 1 more: %d, %v; want 41", total, err)
	}
	if other, _ := db.Counters().Add(ctx, "task-2", "released:EMAIL_ADDRESS", 1); other != 1 {
		t.Errorf("another task's counter is %d, want 1", other)
	}
	if _, err := db.Counters().Add(ctx, "", "x", 1); err == nil {
		t.Error("a counter without a task was accepted")
	}
}
