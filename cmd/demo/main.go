// Command demo runs patient journeys with realistic faults through the retry
// framework, and is the operator's tool for a real deployment.
//
// With no arguments it creates a SQLite database in ./demo-data, runs a few
// hundred patient journeys (register, send a reminder SMS, wait, call the
// clinic's API, branch on the answer, record the outcome) whose node
// handlers fail the way real ones do, and prints what happened:
//
//	go run ./cmd/demo
//
// Subcommands, each with --help:
//
//	demo migrate              apply the schema (legacy databases included)
//	demo start                create runs for workers to pick up
//	demo worker               run the executor until SIGINT/SIGTERM
//	demo runs list [--status] list runs
//	demo runs show ID         a run's attempt history
//	demo runs retry ID        replay a run (--from NODE, --max-retries, --strategy)
//	demo runs retry --status  replay dead letters in bulk (--dry-run, --confirm N)
//	demo runs cancel ID       cancel a run, stopping its node in flight
//	demo stats                the summary of any database
//	demo explain              how the policy and the retry budget treat a failure
//	demo serve                the web dashboard and /metrics
//
// Configuration: flags over environment (JRETRY_...) over the --config file
// over defaults. A bad value exits with status 2 before anything is written.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// errInterrupted reports that a signal stopped the command before it was
// done.
var errInterrupted = errors.New("interrupted")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, surroundings{environ: os.Environ()}))
}

// surroundings are what an invocation reads besides its arguments: main
// gives the process's, a test its own, so that a command runs in-process
// as it would in a process of its own.
type surroundings struct {
	// environ is the environment, "NAME=value" entries as os.Environ
	// gives them.
	environ []string
	// dir is the working directory that relative SQLite paths and the
	// --config file are under; "" is the process's.
	dir string
}

// surroundingsKey is the context key of an invocation's surroundings.
type surroundingsKey struct{}

// surroundingsOf returns the surroundings run put in ctx: a command reads
// its environment where it reads its deadline, in the one value every
// command is given.
func surroundingsOf(ctx context.Context) surroundings {
	if s, ok := ctx.Value(surroundingsKey{}).(surroundings); ok {
		return s
	}
	return surroundings{environ: os.Environ()}
}

// serialized returns w safe for the concurrent writes a command makes
// (the progress line beside the executor's log records): a file is, as
// each write is one system call, and stays itself so that a terminal is
// still recognised; any other writer gets a lock.
func serialized(w io.Writer) io.Writer {
	if _, ok := w.(*os.File); ok {
		return w
	}
	return &lockedWriter{w: w}
}

// lockedWriter writes to w one call at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run runs the command line args in the surroundings sur and returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, sur surroundings) int {
	ctx = context.WithValue(ctx, surroundingsKey{}, sur)
	stdout, stderr = serialized(stdout), serialized(stderr)
	err := dispatch(ctx, args, stdout, stderr)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.Is(err, errInterrupted) {
		// A signal cut a store call short: an interrupt all the same.
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	var help helpRequest
	switch {
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.usage)
		return exitOK
	case err == nil:
		return exitOK
	}
	// One line, whatever the error quotes (a run id, a message).
	fmt.Fprintf(stderr, "demo: %s\n", lineSafe(err.Error()))
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	return exitFailure
}

// commandFunc is a subcommand: it parses its own flags (see
// command.parse) and runs.
type commandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// dispatch finds the subcommand of args with cobra and runs it. Cobra is
// chosen over kong because each command's flags are built at run time
// from the configuration's flag groups (a flag.FlagSet bound to the
// loader, which pflag, cobra's flag library, adopts as it is), where kong
// wants one tagged struct field per flag per command; cobra also brings
// the "unknown command" suggestions. Each command keeps its own flag
// parsing (DisableFlagParsing), so that a flag error is reported in the
// program's one-line form and the help is the command's usage.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	leaf := func(name, short string, run commandFunc) *cobra.Command {
		return &cobra.Command{
			Use: name, Short: short, DisableFlagParsing: true,
			RunE: func(_ *cobra.Command, args []string) error { return run(ctx, args, stdout, stderr) },
		}
	}
	root := &cobra.Command{
		Use: "demo", Args: cobra.ArbitraryArgs, DisableFlagParsing: true,
		SilenceErrors: true, SilenceUsage: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
			hint := "want " + commandList(root) + "; see demo help"
			if s := root.SuggestionsFor(args[0]); len(s) > 0 {
				hint = "did you mean " + s[0] + "? " + hint
			}
			return usageError(fmt.Errorf("unknown command %q (%s)", args[0], hint))
		}
		return cmdDemo(ctx, args, stdout, stderr)
	}
	root.SetHelpCommand(&cobra.Command{
		Use: "help", Short: "this overview",
		Run: func(*cobra.Command, []string) { fmt.Fprint(stdout, overview) },
	})
	runs := &cobra.Command{
		Use: "runs", Short: "list, show, retry, cancel runs", DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error { return cmdRuns(args, stdout) },
	}
	runs.AddCommand(
		leaf("list", "list runs", func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return cmdRunsList(ctx, args, stdout)
		}),
		leaf("show", "a run's attempt history", func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return cmdRunsShow(ctx, args, stdout)
		}),
		leaf("retry", "replay a run, or dead letters in bulk", func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return cmdRunsRetry(ctx, args, stdout)
		}),
		leaf("cancel", "cancel a run", func(ctx context.Context, args []string, stdout, _ io.Writer) error {
			return cmdRunsCancel(ctx, args, stdout)
		}),
	)
	root.AddCommand(
		leaf("migrate", "apply the schema", cmdMigrate),
		leaf("start", "create runs for workers", cmdStart),
		leaf("worker", "run the executor", cmdWorker),
		runs,
		leaf("stats", "the summary of a database", cmdStats),
		leaf("explain", "how the policy treats a failure", cmdExplain),
		leaf("config", "every configuration key", cmdConfig),
		leaf("serve", "the web dashboard", cmdServe),
	)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// commandList names the subcommands of c: "a, b or c".
func commandList(c *cobra.Command) string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.Name() != "help" {
			names = append(names, sub.Name())
		}
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

const overview = `usage: demo [flags]            run patient journeys with realistic faults
       demo migrate [flags]    apply the schema (legacy databases included)
       demo start [flags]      create runs, unclaimed and due now, for workers
       demo worker [flags]     run the executor until SIGINT/SIGTERM
       demo runs list [--status S] [--json]
       demo runs show ID [--json]
       demo runs retry ID [--from NODE] [--max-retries N] [--strategy S]
                               replay a failed, failed_max_retries or cancelled run
       demo runs retry [--status S] [--class C] [--node N] [--journey J]
                       [--since T] [--until T] (--dry-run | --confirm N)
                               replay dead letters in bulk
       demo runs cancel ID     cancel a run in progress, waiting or retrying
       demo stats [--json]     the summary of any database
       demo explain [--class C | --message M] [--budgets]
       demo config             every configuration key, its variable, value and meaning
       demo serve [--listen ADDR] [--enable-replay]   the web dashboard

Each command takes --help. Configuration: flags over environment (JRETRY_...)
over the --config file (JSON) over defaults.
`
