package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenmcp/warden/connector/postgres"
	"github.com/wardenmcp/warden/internal/admin"
	"github.com/wardenmcp/warden/internal/approval"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/classify/sqlclass"
	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/credential"
	"github.com/wardenmcp/warden/internal/gateway"
	"github.com/wardenmcp/warden/internal/grant"
	"github.com/wardenmcp/warden/internal/identity"
	"github.com/wardenmcp/warden/internal/pin"
	"github.com/wardenmcp/warden/internal/policy"
	"github.com/wardenmcp/warden/internal/seal"
	"github.com/wardenmcp/warden/internal/store/sqlite"
	"github.com/wardenmcp/warden/pkg/verify"
)

// runtime is a gateway with everything it was built from, for the command
// that runs it to close in order.
type runtime struct {
	cfg     *config.Config
	logger  *slog.Logger
	gateway *gateway.Gateway
	policy  *policy.Holder     // nil without a policy
	keys    *credential.KeySet // nil without per-call credentials
	tokens  *sqlite.TokenStore
	admin   http.Handler   // nil without admin_listen
	closers []func() error // in the order to close them
}

// Close releases what build opened, last opened first.
func (rt *runtime) Close() error {
	var errs []error
	for i := len(rt.closers) - 1; i >= 0; i-- {
		errs = append(errs, rt.closers[i]())
	}
	return errors.Join(errs...)
}

// newPolicyCompiler is the policy compiler with Warden's classifier
// functions: sql(text) for rules on database tools.
func newPolicyCompiler() (*policy.Compiler, error) {
	return policy.NewCompiler(policy.WithFunction("sql", func(s string) map[string]any {
		return sqlclass.Classify(s).Map()
	}))
}

// build reads the configuration and assembles the gateway it describes:
// request-state sealing, policy, audit log.
func build(configPath string, logOut io.Writer, level slog.Level) (*runtime, error) {
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	rt := &runtime{cfg: cfg, logger: slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))}
	fail := func(err error) (*runtime, error) {
		_ = rt.Close()
		return nil, err
	}
	sealer, err := seal.LoadOrCreate(cfg.StateKeyFile, seal.Options{})
	if err != nil {
		return fail(fmt.Errorf("request-state key: %w", err))
	}
	opts := gateway.Options{Config: cfg, Logger: rt.logger, Sealer: sealer, Principal: stdioPrincipal(cfg)}

	if cfg.Policy != "" {
		compiler, err := newPolicyCompiler()
		if err != nil {
			return fail(err)
		}
		rt.policy, err = policy.NewHolder(compiler, cfg.Policy)
		if err != nil {
			return fail(&exitError{exitUsage, fmt.Errorf("policy: %w", err)})
		}
		opts.Policy = rt.policy
	}
	db, err := sqlite.Open(cfg.Store, rt.logger)
	if err != nil {
		return fail(fmt.Errorf("store: %w", err))
	}
	rt.closers = append(rt.closers, db.Close)
	tokens, err := sqlite.NewTokenStore(db, sqlite.TokenOptions{})
	if err != nil {
		return fail(fmt.Errorf("token store: %w", err))
	}
	opts.Tokens, rt.tokens = tokens, tokens
	opts.Counters = db.Counters()
	if !cfg.Audit.Disabled {
		key, err := audit.LoadOrCreateKey(cfg.Audit.KeyFile)
		if err != nil {
			return fail(fmt.Errorf("audit key: %w", err))
		}
		log, err := audit.Open(db.Audit(), key, audit.Options{
			CheckpointEvery:    cfg.Audit.CheckpointEvery,
			CheckpointInterval: cfg.Audit.CheckpointInterval,
			Logger:             rt.logger,
		})
		if err != nil {
			return fail(fmt.Errorf("audit log: %w", err))
		}
		rt.closers = append(rt.closers, log.Close)
		opts.Audit = log
	}

	if !cfg.Pinning.Disabled {
		opts.Pinner, err = pin.NewPinner(db.Pins(), pin.Options{QuarantineFindings: cfg.Pinning.QuarantineFindings})
		if err != nil {
			return fail(fmt.Errorf("tool pins: %w", err))
		}
	}
	grants := db.Grants()
	opts.Grants = grantsAdapter{Resolver: grant.NewResolver(grants), store: grants}
	opts.StdioTask = os.Getenv("WARDEN_TASK")
	broker, err := rt.approvalBroker(db)
	if err != nil {
		return fail(err)
	}
	opts.Approvals, opts.ApprovalHold = broker, cfg.Approvals.Hold
	if cfg.AdminListen != "" {
		rt.admin, err = admin.New(cfg.Admin, admin.Options{
			Approvals: broker,
			Grants:    grants,
			Audit:     adminAudit(opts.Audit),
			Logger:    rt.logger,
			Status:    rt.status,
			MCPKeys:   cfg.Identity.APIKeys,
		})
		if err != nil {
			return fail(err)
		}
	}
	opts.Authn, err = identity.New(cfg.Identity, identity.Options{Logger: rt.logger})
	if err != nil {
		return fail(err) // its errors name the identity setting at fault
	}
	if !cfg.Credentials.Disabled {
		keys, err := credential.LoadOrCreateKeySet(cfg.Credentials.KeyDir, credential.KeySetOptions{})
		if err != nil {
			return fail(fmt.Errorf("credential keys: %w", err))
		}
		rt.keys = keys
		opts.Credentials, err = credential.NewMinter(keys, credential.MinterOptions{Issuer: cfg.Credentials.Issuer, Lifetime: cfg.Credentials.Lifetime})
		if err != nil {
			return fail(fmt.Errorf("credentials: %w", err))
		}
		opts.JWKS = credential.JWKSHandler(keys, 0)
	}
	opts.Local, err = rt.startConnectors()
	if err != nil {
		return fail(err)
	}
	rt.gateway, err = gateway.New(opts)
	if err != nil {
		return fail(err)
	}
	return rt, nil
}

// startConnectors opens the built-in connectors the configuration names.
// A connector whose database refuses the least-privilege checks stops the
// start: Warden never serves a database through an over-privileged role.
// With per-call credentials enabled (build creates rt.keys first), each
// connector checks every call's credential against the key set's current
// public keys, so rotations need no restart.
func (rt *runtime) startConnectors() (map[string]*mcp.Server, error) {
	servers := map[string]*mcp.Server{}
	for _, name := range rt.cfg.UpstreamNames() {
		pc := rt.cfg.Upstreams[name].Postgres
		if pc == nil {
			continue
		}
		dsn := os.Getenv(pc.DSNEnv)
		if dsn == "" {
			return nil, fmt.Errorf("upstream %s: environment variable %s (the connection string) is not set", name, pc.DSNEnv)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		pool, err := postgres.OpenPool(ctx, dsn)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		rt.closers = append(rt.closers, func() error { pool.Close(); return nil })
		cc := postgres.Config{
			ReadRole: pc.ReadRole, WriteRole: pc.WriteRole, StatementTimeout: pc.StatementTimeout,
			MaxRows: pc.MaxRows, MaxResultBytes: pc.MaxResultBytes, Tools: pc.Tools,
		}
		if rt.keys != nil {
			keys := rt.keys
			cc.Verifier, err = verify.New(verify.Options{
				Issuer:   rt.cfg.Credentials.Issuer,
				Audience: name,
				KeyFunc: func(context.Context) (map[string]ed25519.PublicKey, error) {
					return keys.PublicKeys(), nil
				},
			}, verify.NewMemoryReplayCache(nil))
			if err != nil {
				cancel()
				return nil, fmt.Errorf("upstream %s: credential verifier: %w", name, err)
			}
		}
		err = postgres.Preflight(ctx, pool, cc)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		srv, err := postgres.NewServer(cc, pool, rt.logger.With("upstream", name))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", name, err)
		}
		servers[name] = srv
	}
	return servers, nil
}

// tokenPurgeEvery is how often expired masking tokens, which hold the
// original values they stand for, are deleted from the store.
const tokenPurgeEvery = time.Hour

// start starts what a running gateway does beside its MCP transport: the
// admin API when admin_listen is set, policy reloads, credential key
// rotation, and deleting expired masking tokens. They run until ctx ends
// or stop is called, which waits for them, so that they are done before
// the store closes.
func (rt *runtime) start(ctx context.Context) (stop func(), err error) {
	stopAdmin := func() {}
	if rt.admin != nil {
		if stopAdmin, err = serveAdmin(rt.cfg.AdminListen, rt.admin, rt.logger.Info); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if rt.policy != nil {
		wg.Go(func() { rt.policy.Watch(ctx, time.Second, reloadSignal(ctx), rt.logger) })
	}
	wg.Go(func() { rt.rotateKeys(ctx) })
	wg.Go(func() { rt.purgeTokens(ctx, tokenPurgeEvery) })
	return func() {
		cancel()
		wg.Wait()
		stopAdmin()
	}, nil
}

// purgeTokens deletes expired masking tokens now and every interval. An
// expired token no longer resolves, but its row still holds the original
// value in clear until it is deleted.
func (rt *runtime) purgeTokens(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := rt.tokens.DeleteExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			rt.logger.Error("deleting expired masking tokens failed", "err", err)
		case n > 0:
			rt.logger.Info("expired masking tokens deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rotateKeys replaces the credential signing key every interval until ctx
// ends. Verifiers already hold the next key (it is published before it
// signs), so rotation needs no downtime.
func (rt *runtime) rotateKeys(ctx context.Context) {
	if rt.keys == nil {
		return
	}
	t := time.NewTicker(rt.cfg.Credentials.RotateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := rt.keys.Rotate(); err != nil {
				rt.logger.Error("credential key rotation failed; the current key stays in use", "err", err)
				continue
			}
			rt.logger.Info("credential signing key rotated", "kid", rt.keys.ActiveKeyID())
		}
	}
}

// approvalBroker escalates calls to approvers: automated rules first, then
// the humans, notified through the configured webhooks.
func (rt *runtime) approvalBroker(db *sqlite.DB) (*approval.Broker, error) {
	cfg := rt.cfg.Approvals
	rules, err := approval.CompileRules(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("approval rules: %w", err)
	}
	var notifier *approval.Notifier
	if len(cfg.Webhooks) > 0 {
		hooks, err := approval.ResolveWebhooks(cfg.Webhooks, os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("approval webhooks: %w", err)
		}
		notifier, err = approval.NewNotifier(hooks, rt.logger, approval.NotifierOptions{ConsoleURL: cfg.ConsoleURL})
		if err != nil {
			return nil, fmt.Errorf("approval webhooks: %w", err)
		}
		rt.closers = append(rt.closers, func() error { notifier.Close(); return nil })
	}
	return approval.NewBroker(db.Approvals(), approval.BrokerOptions{Expiry: cfg.Expiry, Rules: rules, Notifier: notifier, Logger: rt.logger})
}

// grantsAdapter gives the gateway the grant store's labelling alongside
// the resolver.
type grantsAdapter struct {
	*grant.Resolver
	store grant.Store
}

func (a grantsAdapter) AddLabels(ctx context.Context, id string, labels ...string) error {
	_, err := a.store.AddLabels(ctx, id, labels...)
	return err
}

// adminAudit records admin API changes (grants created, derived, revoked)
// in the audit log; without one they are only logged by the API.
func adminAudit(log gateway.Auditor) func(context.Context, admin.Event) error {
	return func(ctx context.Context, e admin.Event) error {
		if log == nil {
			return nil
		}
		extra, err := json.Marshal(map[string]any{"grant": e.Grant, "remote": e.Remote})
		if err != nil {
			return err
		}
		_, err = log.Append(ctx, audit.Record{
			Kind: audit.KindAdmin, Method: e.Action, Principal: e.Actor, Task: e.Grant.ID,
			Status: "ok", Extra: map[string]json.RawMessage{"admin": extra},
		})
		return err
	}
}

// status is what the admin API reports at /v1/status.
func (rt *runtime) status(context.Context) (map[string]any, error) {
	st := map[string]any{"version": gateway.Version}
	if rt.policy != nil {
		st["policy_version"] = rt.policy.Policy().Version()
	}
	return st, nil
}

// stdioPrincipal is the caller of `warden stdio`: the configured principal,
// or the local user.
func stdioPrincipal(cfg *config.Config) gateway.Principal {
	if p := cfg.StdioPrincipal; p != nil {
		return gateway.Principal{ID: p.ID, Roles: p.Roles, Tenant: p.Tenant, Clearance: p.Clearance}
	}
	p := gateway.Principal{ID: "local"}
	if u, err := user.Current(); err == nil {
		p.ID = "local:" + u.Username
	}
	return p
}

func logLevel(verbose bool) slog.Level {
	if verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
