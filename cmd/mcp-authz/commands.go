package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/policy"
)

// configCheck loads a configuration the way serve does and prints each
// problem on a line of its own, in the order of the file, as
// FILE:LINE: path: message.
func configCheck(args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: mcp-authz config check FILE")
	}
	f, err := config.Load(args[0])
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, p := range cerr.Problems {
			fmt.Fprintln(stderr, p.In(args[0]))
		}
		return fmt.Errorf("config check: %s: %s", args[0], config.Count(len(cerr.Problems)))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d servers, %d policies)\n", args[0], len(f.Servers), len(f.Policies))
	return nil
}

// policyEval prints the decision of the configured policies for one input
// document.
func policyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration `FILE`")
	inputPath := fs.String("input", "", "input document `FILE` (JSON; - for standard input)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" || *inputPath == "" {
		return errors.New("usage: mcp-authz policy eval --config FILE --input INPUT.json")
	}
	f, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	set, err := f.PolicySet()
	if err != nil {
		return err
	}
	var data []byte
	if *inputPath == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	} else {
		data, err = os.ReadFile(*inputPath)
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
	return enc.Encode(map[string]any{"allow": d.Allow, "reason": d.Reason, "policy": d.Policy})
}

// policyTest runs the Rego tests and CEL cases of a directory.
func policyTest(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: mcp-authz policy test DIR")
	}
	failed, err := policy.RunTests(ctx, args[0], stdout)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("policy test: %d failed", failed)
	}
	return nil
}
