package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/wardenmcp/warden/internal/config"
	"github.com/wardenmcp/warden/internal/policy"
)

const policyExitCodes = `Exit status: 0 on success; 1 when the policy does not compile, a table
test fails, or lint has warnings; 2 on bad arguments, unreadable files or
input that is not a call.`

// newPolicyCmd returns `warden policy`, the policy author's tools.
func newPolicyCmd() *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Evaluate, test and lint a Warden policy",
		Long: `A policy is one YAML file or a directory of them (merged; *_test.yaml
files beside it are its table tests, not policy). These commands compile it
exactly as the gateway does and let you see what it decides.
` + policyExitCodes,
	}
	var configPath string
	cmd.PersistentFlags().StringArrayVar(&paths, "policy", nil,
		"policy `FILE` or directory (repeatable; files are merged)")
	cmd.PersistentFlags().StringVar(&configPath, "config", "",
		"Warden configuration `FILE`: use the policy it names (instead of --policy)")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if configPath == "" {
			return nil
		}
		if len(paths) > 0 {
			return &exitError{code: exitUsage, err: errors.New("give --policy or --config, not both")}
		}
		cfg, err := config.Load(configPath)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		if cfg.Policy == "" {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s names no policy", configPath)}
		}
		paths = []string{cfg.Policy}
		return nil
	}
	cmd.AddCommand(
		newPolicyEvalCmd(&paths),
		newPolicyTestCmd(&paths),
		newPolicyLintCmd(&paths),
	)
	return cmd
}

func newPolicyEvalCmd(paths *[]string) *cobra.Command {
	var jsonl bool
	cmd := &cobra.Command{
		Use:   "eval --policy FILE [--jsonl] < call.json",
		Short: "Decide calls read from standard input and print the decisions",
		Long: `Reads one call as JSON from standard input (with --jsonl, one call per
line) and prints one JSON decision per call: effect, rules, reason, and what
shadow mode would have done. A call looks like

  {"principal": {"id": "u1", "roles": ["support-agent"]},
   "tool": "shop.refund_order",
   "arguments": {"order_id": "12345", "amount": 250},
   "task": {"id": "t1", "scope": {"order_id": "12345"}}}

"tool" may also be an object {"name", "server", "risk", "labels",
"annotations"}; "resource" or "prompt" replace it for those calls, and
"request": {"time", "transport"} sets the request facts. The policy's
argument schema is checked before the rules, as the gateway does.
` + policyExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicy(*paths)
			if err != nil {
				return err
			}
			if err := policy.EvalStream(cmd.InOrStdin(), cmd.OutOrStdout(), p, jsonl); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonl, "jsonl", false, "read one call per line")
	return cmd
}

func newPolicyTestCmd(paths *[]string) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "test --policy FILE [--tests FILE]...",
		Short: "Run the table tests kept beside the policy",
		Long: `Runs the *_test.yaml files beside the policy (or those given with
--tests). A test file holds cases:

  cases:
    - name: small refunds are allowed
      input:
        principal: {id: u1, roles: [support-agent]}
        tool: shop.refund_order
        arguments: {order_id: "12345", amount: 50}
      expect: {effect: allow, rules: [support-may-use-the-shop]}

expect takes effect (required), rules, reason (a part of it), approvers,
shadowed, would_be and shadow_rules. Failing cases are printed with their
file and line.
` + policyExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicyTests(cmd.OutOrStdout(), *paths, files)
		},
	}
	cmd.Flags().StringArrayVar(&files, "tests", nil, "table test `FILE` (repeatable; default: *_test.yaml beside the policy)")
	return cmd
}

func newPolicyLintCmd(paths *[]string) *cobra.Command {
	return &cobra.Command{
		Use:   "lint --policy FILE",
		Short: "Compile the policy and warn about rules that look wrong",
		Long: `Compiles the policy and reports every error with its file, line and rule,
then warns about deny rules without a reason, approve rules without
approvers, rules no role can ever reach, and rules made unreachable by an
unconditional deny.
` + policyExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPolicyLint(cmd.OutOrStdout(), *paths)
		},
	}
}

// loadPolicy compiles the policy for the commands: a policy that does not
// compile exits 1, a missing file 2.
func loadPolicy(paths []string) (*policy.Policy, error) {
	if len(paths) == 0 {
		return nil, &exitError{code: exitUsage, err: errors.New("no policy: give --policy FILE")}
	}
	// The gateway's compiler (with its classifier functions): the command
	// line must compile policies exactly as the gateway does.
	c, err := newPolicyCompiler()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	p, err := c.Load(paths...)
	if err != nil {
		var pe *policy.Error
		if errors.As(err, &pe) {
			return nil, &exitError{code: exitFailure, err: fmt.Errorf("policy does not compile:\n%w", err)}
		}
		return nil, &exitError{code: exitUsage, err: err}
	}
	return p, nil
}

func runPolicyTests(w io.Writer, paths, files []string) error {
	p, err := loadPolicy(paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		if files, err = policy.TestFiles(paths); err != nil {
			return &exitError{code: exitUsage, err: err}
		}
	}
	failed, err := policy.RunTests(w, p, files)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if failed > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d policy test cases failed", failed)}
	}
	return nil
}

func runPolicyLint(w io.Writer, paths []string) error {
	p, err := loadPolicy(paths)
	if err != nil {
		return err
	}
	if n := policy.Lint(w, p); n > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d lint warnings", n)}
	}
	fmt.Fprintln(w, "ok: no warnings")
	return nil
}
