package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/wardenmcp/warden/examples/shop"
	"github.com/wardenmcp/warden/internal/audit"
	"github.com/wardenmcp/warden/internal/store/sqlite"
)

func newDemoCmd() *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch Warden decide an agent's calls to an example shop",
		Long: `Run an example shop (an MCP server with orders, refunds, deletes and email)
on a loopback port, put Warden in front of it with the example policy
(examples/shop/policy.yaml), and let a scripted support agent try a series of
calls: some are allowed, most are not. Each call is shown with Warden's
decision and the rule behind it; at the end the audit log that recorded every
decision is verified.

Nothing is installed and nothing leaves the machine. The working files
(configuration, policy, audit database, log) go to a temporary directory that
is removed at the end, or to --keep DIR, where 'warden audit verify --db
DIR/warden.db' and 'warden audit query --db DIR/warden.db' can read them.

Exit status: 0 when the demo ran and the audit chain verified; 1 otherwise.`,
		Example: `  warden demo
  warden demo --keep ./warden-demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := keep
			if dir == "" {
				tmp, err := os.MkdirTemp("", "warden-demo-")
				if err != nil {
					return &exitError{exitFailure, fmt.Errorf("working directory: %w", err)}
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if err := os.MkdirAll(dir, 0o700); err != nil {
				return &exitError{exitUsage, fmt.Errorf("--keep: %w", err)}
			}
			if err := runDemo(cmd.Context(), cmd.OutOrStdout(), dir); err != nil {
				return &exitError{exitFailure, err}
			}
			if keep != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "\nkept %s: warden.yaml, policy.yaml, warden.db (audit log), warden.audit-key.pem, warden.log\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "keep the working files (configuration, audit database, log) in `DIR`")
	return cmd
}

// demoPrincipal is who the scripted agent is.
const demoPrincipal = "demo-agent"

// demoStep is one call the scripted agent makes.
type demoStep struct {
	tool string
	// args is shown to the reader, in this order; raw, when set, is sent
	// instead of args (for messages no encoder would produce).
	args []demoArg
	raw  string
}

type demoArg struct {
	name  string
	value any
}

// demoSteps is the agent's script: a day of support work with the mistakes
// and temptations Warden exists for.
func demoSteps() []demoStep {
	refund := func(amount any, reason string, extra ...demoArg) demoStep {
		args := []demoArg{{"order_id", "12345"}, {"amount", amount}, {"reason", reason}}
		return demoStep{tool: "shop.refund_order", args: append(args, extra...)}
	}
	return []demoStep{
		{tool: "shop.get_order", args: []demoArg{{"order_id", "12345"}}},
		refund(1500, "damaged"),
		refund(5000, "damaged"),
		refund(50000, "angry"),
		refund(1000, "ok"),
		refund("10000", "damaged"),
		refund(1500, "damaged", demoArg{"notify", true}),
		{
			// Two amounts: which one would the shop read? Warden refuses to guess.
			tool: "shop.refund_order",
			args: []demoArg{{"order_id", "12345"}, {"amount", 1500}, {"amount", 50000}, {"reason", "damaged"}},
			raw:  `{"order_id":"12345","amount":1500,"amount":50000,"reason":"damaged"}`,
		},
		{tool: "shop.delete_order", args: []demoArg{{"order_id", "12346"}}},
		{tool: "shop.send_email", args: []demoArg{{"to", "x@evil.test"}, {"subject", "hi"}, {"body", "..."}}},
		{tool: "shop.drop_all_orders", args: []demoArg{}},
	}
}

// runDemo runs the example shop behind Warden in dir, drives a scripted
// agent through it, verifies the audit log and reports to out. It returns
// an error when the demo could not run, the shop received a call Warden did
// not allow, or the audit chain did not verify.
func runDemo(ctx context.Context, out io.Writer, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	sh, err := startDemoShop()
	if err != nil {
		return err
	}
	defer sh.stop()
	shopTools, err := listDemoShop(ctx, sh.url)
	if err != nil {
		return err
	}
	configPath, err := writeDemoConfig(dir, sh.url)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "warden.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()

	fmt.Fprintf(out, "Warden demo: a support agent (%s, role support-agent) uses an example shop through Warden.\n\n", demoPrincipal)
	fmt.Fprintf(out, "  shop     an MCP server at %s with tools %s\n", sh.url, strings.Join(shopTools, ", "))
	fmt.Fprintf(out, "  policy   examples/shop/policy.yaml: reads allowed; refunds up to 20.00 allowed, over 20.00\n")
	fmt.Fprintf(out, "           need a lead's approval, over 100.00 never; deletes need the user's yes; no email\n")
	fmt.Fprintf(out, "  files    %s\n\n", dir)

	rt, err := build(configPath, logFile, slog.LevelInfo)
	if err != nil {
		return fmt.Errorf("building the gateway: %w", err)
	}
	results, runErr := driveDemoAgent(ctx, rt, shopTools)
	closeErr := rt.Close() // flushes the audit log and writes its last checkpoint
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return fmt.Errorf("closing the gateway: %w", closeErr)
	}

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tCALL\tARGUMENTS\tOUTCOME\tDETAIL")
	allowed, denied := 0, 0
	for i, r := range results {
		if r.allowed {
			allowed++
		} else {
			denied++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, r.call, r.args, r.outcome(), r.detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Only allowed calls may reach the shop: check it rather than claim it.
	var forwarded []string
	for _, r := range results {
		if name, ok := strings.CutPrefix(r.call, "shop."); ok && r.allowed {
			forwarded = append(forwarded, name)
		}
	}
	reached := sh.received()
	leaked := !slices.Equal(reached, forwarded)
	if leaked {
		fmt.Fprintf(out, "\nThe shop received tool calls %v, but Warden allowed only %v.\n", reached, forwarded)
	} else {
		fmt.Fprintf(out, "\nThe shop received %d tool calls (%s); the denied calls never reached it.\n", len(reached), strings.Join(reached, ", "))
	}
	rep, verifyErr := verifyDemoAudit(ctx, rt.cfg.Store, rt.cfg.Audit.KeyFile)
	var auditSummary string
	switch {
	case verifyErr != nil:
		fmt.Fprintf(out, "Audit log %s: cannot verify: %v\n", rt.cfg.Store, verifyErr)
		auditSummary = "not verified"
	case !rep.OK():
		fmt.Fprintf(out, "Audit log %s: %d records, chain BROKEN: %s\n", rt.cfg.Store, rep.Records, rep.Problem)
		auditSummary = fmt.Sprintf("%d records, chain BROKEN", rep.Records)
	default:
		fmt.Fprintf(out, "Audit log %s: %d records (decisions, outcomes, %d signed checkpoint(s)); audit chain verified.\n",
			rt.cfg.Store, rep.Records, rep.Checkpoints)
		auditSummary = fmt.Sprintf("%d records, chain verified", rep.Records)
	}
	fmt.Fprintf(out, "\n%d calls: %d allowed, %d denied; audit: %s\n", len(results), allowed, denied, auditSummary)
	switch {
	case leaked:
		return errors.New("the shop received calls that Warden did not allow")
	case verifyErr != nil:
		return fmt.Errorf("audit verification: %w", verifyErr)
	case !rep.OK():
		return errors.New("audit chain verification failed")
	}
	return nil
}

// demoShop is the example shop serving on a loopback port, with a record
// of the tool calls that reached it.
type demoShop struct {
	url string
	hs  *http.Server

	mu    sync.Mutex
	calls []string // tools/call names, in arrival order
}

// startDemoShop serves the example shop over Streamable HTTP on a loopback
// port.
func startDemoShop() (*demoShop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the shop: %w", err)
	}
	s := &demoShop{url: "http://" + ln.Addr().String() + "/mcp"}
	srv := shop.NewServer()
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && method == "tools/call" {
				s.mu.Lock()
				s.calls = append(s.calls, p.Name)
				s.mu.Unlock()
			}
			return next(ctx, method, req)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil))
	s.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

// received returns the names of the tools called on the shop so far.
func (s *demoShop) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *demoShop) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.hs.Shutdown(ctx) != nil {
		_ = s.hs.Close()
	}
}

// listDemoShop asks the shop directly which tools it has, to show which
// ones Warden hides.
func listDemoShop(ctx context.Context, url string) ([]string, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "warden-demo", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to the shop: %w", err)
	}
	defer cs.Close()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing the shop's tools: %w", err)
	}
	names := make([]string, len(res.Tools))
	for i, t := range res.Tools {
		names[i] = t.Name
	}
	return names, nil
}

// writeDemoConfig writes the example's warden.yaml and policy.yaml into
// dir, pointed at the shop's URL, with the state in dir and the scripted
// agent as the caller: the anonymous HTTP principal (the demo listens on
// loopback only) and the stdio principal.
func writeDemoConfig(dir, shopURL string) (string, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(shop.WardenConfig(), &cfg); err != nil {
		return "", fmt.Errorf("example configuration: %w", err)
	}
	ups, _ := cfg["upstreams"].(map[string]any)
	up, _ := ups["shop"].(map[string]any)
	if up == nil {
		return "", errors.New("example configuration: no upstreams.shop")
	}
	up["url"] = shopURL
	cfg["policy"] = "policy.yaml"
	cfg["store"] = "warden.db"
	cfg["state_key_file"] = "state.key"
	agent := map[string]any{"id": demoPrincipal, "roles": []string{"support-agent"}}
	cfg["identity"] = map[string]any{"anonymous": agent}
	cfg["stdio_principal"] = agent
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("demo configuration: %w", err)
	}
	header := "# Written by `warden demo`: examples/shop/warden.yaml, pointed at the demo's shop.\n"
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, append([]byte(header), b...), 0o600); err != nil {
		return "", fmt.Errorf("demo configuration: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), shop.Policy(), 0o600); err != nil {
		return "", fmt.Errorf("demo policy: %w", err)
	}
	return path, nil
}

// demoResult is what the agent saw for one step.
type demoResult struct {
	call, args string
	allowed    bool
	detail     string // a summary of the result, or the rule and reason of a denial
}

func (r demoResult) outcome() string {
	if r.allowed {
		return "ALLOWED"
	}
	return "DENIED"
}

// driveDemoAgent serves the gateway as `warden serve` does, on a loopback
// port, and runs the scripted agent's calls through it with the SDK's
// Streamable HTTP client. The gateway is closed when it returns.
func driveDemoAgent(ctx context.Context, rt *runtime, shopTools []string) ([]demoResult, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the agent: %w", err)
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() {
		err := serve(serveCtx, ln, rt.gateway, rt.cfg.ShutdownTimeout, rt.logger.Info)
		_ = ln.Close() // a gateway that failed to start leaves the agent nothing to wait for
		served <- err
	}()
	shutdown := func() error {
		stopServing()
		if err := <-served; err != nil {
			return fmt.Errorf("serving the gateway: %w", err)
		}
		return nil
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + ln.Addr().String() + "/mcp"}, nil)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("connecting the agent to warden: %w", err), shutdown())
	}
	results := []demoResult{listStep(ctx, cs, shopTools)}
	for _, s := range demoSteps() {
		results = append(results, callStep(ctx, cs, s))
	}
	_ = cs.Close()
	if err := shutdown(); err != nil {
		return nil, err
	}
	return results, nil
}

// listStep lists the tools through Warden and names those it hides.
func listStep(ctx context.Context, cs *mcp.ClientSession, shopTools []string) demoResult {
	r := demoResult{call: "tools/list", args: "-"}
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		r.detail = denialDetail(err.Error())
		return r
	}
	var visible, hidden []string
	for _, t := range res.Tools {
		visible = append(visible, t.Name)
	}
	for _, name := range shopTools {
		if !slices.Contains(visible, "shop."+name) {
			hidden = append(hidden, "shop."+name)
		}
	}
	r.allowed = true
	r.detail = fmt.Sprintf("%d of %d tools visible", len(visible), len(shopTools))
	if len(hidden) > 0 {
		r.detail += fmt.Sprintf("; hidden by policy: %s", strings.Join(hidden, ", "))
	}
	return r
}

func callStep(ctx context.Context, cs *mcp.ClientSession, s demoStep) demoResult {
	r := demoResult{call: s.tool, args: formatDemoArgs(s.args)}
	params := &mcp.CallToolParams{Name: s.tool}
	if s.raw != "" {
		params.Arguments = json.RawMessage(s.raw)
	} else {
		m := make(map[string]any, len(s.args))
		for _, a := range s.args {
			m[a.name] = a.value
		}
		params.Arguments = m
	}
	res, err := cs.CallTool(ctx, params)
	var werr *jsonrpc.Error
	switch {
	case errors.As(err, &werr):
		r.detail = denialDetail(werr.Message)
	case err != nil:
		r.detail = "error: " + err.Error()
	case res.IsError:
		r.detail = denialDetail(resultText(res))
	default:
		r.allowed = true
		r.detail = shorten(resultText(res), 90)
	}
	return r
}

// denialDetail turns Warden's "denied by RULE: REASON (call ID)" into
// "RULE: REASON". Other errors are messages Warden refused to read at all.
func denialDetail(msg string) string {
	rest, ok := strings.CutPrefix(msg, "denied by ")
	if !ok {
		return "malformed request: " + msg
	}
	if i := strings.LastIndex(rest, " (call "); i >= 0 && strings.HasSuffix(rest, ")") {
		rest = rest[:i]
	}
	return rest
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

// formatDemoArgs shows arguments as name=value with JSON values, so that a
// string "10000" and a number 10000 look different.
func formatDemoArgs(args []demoArg) string {
	if len(args) == 0 {
		return "-"
	}
	parts := make([]string, len(args))
	for i, a := range args {
		v, err := json.Marshal(a.value)
		if err != nil {
			v = []byte("?")
		}
		parts[i] = a.name + "=" + shorten(string(v), 24)
	}
	return strings.Join(parts, " ")
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// verifyDemoAudit walks the audit chain the gateway wrote, checking
// checkpoint signatures against the gateway's own key file.
func verifyDemoAudit(ctx context.Context, dbPath, keyPath string) (audit.Report, error) {
	pub, err := audit.ReadPublicKey(keyPath)
	if err != nil {
		return audit.Report{}, err
	}
	db, err := sqlite.OpenReadOnly(dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		return audit.Report{}, err
	}
	defer db.Close()
	return audit.Verify(ctx, db.Audit(), pub)
}
