package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Holder holds the running policy and replaces it on reload. A policy that
// fails to compile never replaces the running one.
type Holder struct {
	compiler *Compiler
	paths    []string
	current  atomic.Pointer[Policy]

	mu sync.Mutex // serializes reloads
	// seen is the fingerprint of the sources last attempted, so a broken
	// file is reported once, not at every poll.
	seen [sha256.Size]byte

	// OnReload, when set before Watch starts, is called after every reload
	// attempt Watch makes (err nil on success); for metrics and tests.
	OnReload func(p *Policy, err error)
}

// NewHolder loads the policy from paths; it fails if that policy does not
// compile.
func NewHolder(c *Compiler, paths ...string) (*Holder, error) {
	if c == nil {
		return nil, errors.New("policy holder: nil compiler")
	}
	h := &Holder{compiler: c, paths: append([]string(nil), paths...)}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Policy returns the running policy.
func (h *Holder) Policy() *Policy { return h.current.Load() }

// Reload reads and compiles the policy files again. On error the running
// policy stays and the error says why the new one was rejected.
func (h *Holder) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	srcs, err := readSources(h.paths)
	if err != nil {
		return err
	}
	h.seen = fingerprint(srcs)
	p, err := h.compiler.compileSources(srcs)
	if err != nil {
		return err
	}
	h.current.Store(p)
	return nil
}

// changed reports whether the policy files differ from the last attempt.
func (h *Holder) changed() bool {
	srcs, err := readSources(h.paths)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		// A file being replaced may be missing for a moment; a persistent
		// error is reported by the reload it eventually causes.
		return false
	}
	return fingerprint(srcs) != h.seen
}

func fingerprint(srcs []source) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range srcs {
		h.Write([]byte(s.name))
		h.Write([]byte{0})
		h.Write(s.data)
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Watch reloads the policy when its files change (polled every interval)
// and whenever trigger delivers (feed it SIGHUP with signal.Notify). It
// returns when ctx is done.
func (h *Holder) Watch(ctx context.Context, interval time.Duration, trigger <-chan os.Signal, logger *slog.Logger) {
	if interval <= 0 {
		interval = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
			h.reloadAndReport(logger, "signal")
		case <-ticker.C:
			if h.changed() {
				h.reloadAndReport(logger, "file change")
			}
		}
	}
}

func (h *Holder) reloadAndReport(logger *slog.Logger, cause string) {
	err := h.Reload()
	p := h.Policy()
	if err != nil {
		logger.Error("policy reload rejected; keeping the running policy",
			"cause", cause, "running_version", p.Version(), "error", err)
	} else {
		logger.Info("policy reloaded", "cause", cause, "version", p.Version())
	}
	if h.OnReload != nil {
		h.OnReload(p, err)
	}
}
