// Command mcp-authz secures MCP servers behind Envoy: an ext_authz server,
// a built-in front and an aggregating MCP router in one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

// Exit codes, the same for every command, so that a script can tell a
// "no" from a failure (as grep and diff do).
const (
	exitOK    = 0 // allowed, valid, every test passed, served until stopped
	exitNo    = 1 // the answer is no: denied, problems found, tests failed
	exitError = 2 // bad command line, unreadable file or input, serve failed
)

const exitCodes = `Exit codes (every command):
  0  yes: allowed, the configuration is valid, every test passed, served until stopped
  1  no: policy eval denied, config check found problems, a policy test failed
  2  error: a bad command line, an unreadable file or input, a part that failed`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runCommand(ctx, newRoot(), args, stdout, stderr)
}

// runCommand executes args with root, whose standard input the caller may
// have set, and returns the exit code.
func runCommand(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	var no *noError
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &no):
		if no.msg != "" {
			fmt.Fprintln(stderr, "mcp-authz:", no.msg)
		}
		return exitNo
	case errors.As(err, &usage) && usage.bare:
		fmt.Fprint(stderr, cmd.UsageString())
		return exitError
	case errors.As(err, &usage):
		// Usage errors name their command.
		fmt.Fprintf(stderr, "%v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitError
	default:
		fmt.Fprintln(stderr, "mcp-authz:", err)
		return exitError
	}
}

// noError is a command's answer "no" (exit 1), its message printed unless
// empty.
type noError struct{ msg string }

func (e *noError) Error() string { return e.msg }

// usageError is a bad command line (exit 2). bare prints the usage alone.
type usageError struct {
	err  error
	bare bool
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// newRoot builds the command tree.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcp-authz",
		Short: "Authorization for MCP servers behind Envoy / Istio",
		Long: `mcp-authz secures MCP servers behind Envoy / Istio: an ext_authz gRPC server,
a built-in front and an aggregating MCP router in one binary, each turned on by
its section of the configuration file.

` + exitCodes,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Without a command, the usage on standard error; an unknown one
		// is named.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			return &usageError{err: errors.New("no command"), bare: true}
		},
	}
	root.SetVersionTemplate("mcp-authz {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
	})
	root.AddCommand(serveCommand(), configCommand(), policyCommand(), versionCommand(), metricsCommand())
	return root
}

// group is a command that only holds others: alone, or with an unknown
// word, it is a usage error.
func group(use, short string, cmds ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				names := make([]string, 0, len(cmd.Commands()))
				for _, s := range cmd.Commands() {
					if s.IsAvailableCommand() {
						names = append(names, s.Name())
					}
				}
				return usageErrorf("%s: missing command (%s)", cmd.CommandPath(), strings.Join(names, ", "))
			}
			return unknownCommand(cmd, args[0])
		},
	}
	c.AddCommand(cmds...)
	return c
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("%s: unknown command %q", cmd.CommandPath(), name)
	cmd.SuggestionsMinimumDistance = 2
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &usageError{err: errors.New(msg)}
}

// exactArgs accepts exactly the named positional arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) && len(names) == 0 {
			return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
		}
		if len(args) != len(names) {
			return usageErrorf("%s: want %s, got %d arguments", cmd.CommandPath(), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// requireFlags fails with a usage error when a flag was not given.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("%s: %s required", cmd.CommandPath(), strings.Join(missing, " and "))
	}
	return nil
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  exactArgs(),
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "mcp-authz", versionString())
		},
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
