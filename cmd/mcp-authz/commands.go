package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/policy/policytest"
)

// maxInputBytes bounds the input document policy eval reads.
const maxInputBytes = 16 << 20

func configCommand() *cobra.Command {
	return group("config", "Check configuration files", &cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file as serve would; every problem with its line",
		Long: `Check a configuration file as serve would: every section, each part's own
validation, policy files read and compiled, no network. Every problem is printed
on standard error, in the order of the file, as FILE:LINE: path: message, with
the path in YAML keys, then a count.

Exit codes: 0 valid; 1 problems found; 2 could not check (a bad command line,
a file that cannot be read).`,
		Example: `  mcp-authz config check dev/mcp-authz.yaml`,
		Args:    exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return configCheck(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	})
}

// configCheck loads a configuration the way serve does and prints each
// problem on a line of its own, in the order of the file, as
// FILE:LINE: path: message.
func configCheck(path string, stdout, stderr io.Writer) error {
	f, err := config.Load(path)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(stderr, p.In(path))
		}
		return &noError{msg: fmt.Sprintf("config check: %s: %s", path, config.Count(len(cerr.Problems)))}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d servers, %d policies)\n", path, len(f.Servers), len(f.Policies))
	return nil
}

func policyCommand() *cobra.Command {
	var cfgPath, inputPath string
	eval := &cobra.Command{
		Use:   "eval --config FILE --input FILE|-",
		Short: "Print the decision of the configured policies for one input document",
		Long: `Print the decision of a configuration's policies for one policy input document
(JSON, as authz builds it: request, mcp, identity, token) as JSON on standard
output: {"allow": ..., "policy": ..., "reason": ...}. --input - reads standard input.

Exit codes: 0 allowed; 1 denied; 2 no decision (a bad command line, a
configuration or input that does not load): a script may treat any non-zero
code as "not allowed".`,
		Example: `  mcp-authz policy eval --config dev/mcp-authz.yaml --input input.json
  mcp-authz policy eval --config dev/mcp-authz.yaml --input - <input.json && echo allowed`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "config", "input"); err != nil {
				return err
			}
			return policyEval(cmd.Context(), cfgPath, inputPath, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	eval.Flags().StringVar(&cfgPath, "config", "", "configuration `FILE` whose policies decide")
	eval.Flags().StringVar(&inputPath, "input", "", "input document `FILE` (JSON); - reads standard input")

	test := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the Rego tests and CEL cases of a directory",
		Long: `Run the Rego test_ rules (*_test.rego) and the CEL cases (*_test.yaml) found
under DIR, printing one line per test with PASS, FAIL or ERROR.

Exit codes: 0 every test passed; 1 a test failed; 2 could not run (a bad
command line, a directory or policy that does not load).`,
		Example: `  mcp-authz policy test examples/policies`,
		Args:    exactArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return policyTest(cmd.Context(), args[0], cmd.OutOrStdout())
		},
	}
	return group("policy", "Evaluate and test policies", eval, test)
}

// policyEval prints the decision of the configured policies for one input
// document; a denial is an answer "no".
func policyEval(ctx context.Context, cfgPath, inputPath string, stdin io.Reader, stdout io.Writer) error {
	f, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	set, err := f.PolicySet()
	if err != nil {
		return err
	}
	var data []byte
	if inputPath == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, maxInputBytes+1))
		if err == nil && len(data) > maxInputBytes {
			err = fmt.Errorf("larger than %d bytes", maxInputBytes)
		}
	} else {
		data, err = os.ReadFile(inputPath)
	}
	if err != nil {
		return fmt.Errorf("policy eval: input: %w", err)
	}
	in, err := policy.ParseInput(data)
	if err != nil {
		return fmt.Errorf("policy eval: input: %w", err)
	}
	d := set.Decide(ctx, in)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"allow": d.Allow, "reason": d.Reason, "policy": d.Policy}); err != nil {
		return err
	}
	if !d.Allow {
		return &noError{}
	}
	return nil
}

// policyTest runs the Rego tests and CEL cases of a directory.
func policyTest(ctx context.Context, dir string, stdout io.Writer) error {
	failed, err := policytest.RunTests(ctx, dir, stdout)
	if err != nil {
		return err
	}
	if failed > 0 {
		return &noError{msg: fmt.Sprintf("policy test: %d failed", failed)}
	}
	return nil
}
