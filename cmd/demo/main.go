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
//	demo runs retry ID        replay a failed run
//	demo stats                the summary of any database
//	demo explain              how the policy treats an error class or message
//	demo serve                the web dashboard and /metrics
//
// Configuration: flags over environment (JRETRY_...) over the --config file
// over defaults. A bad value exits with status 2 before anything is written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.Is(err, errInterrupted) {
		// A signal cut a store call short: an interrupt all the same.
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
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

// subcommands maps each subcommand to its function.
var subcommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"migrate": cmdMigrate,
	"start":   cmdStart,
	"worker":  cmdWorker,
	"runs":    cmdRuns,
	"stats":   cmdStats,
	"explain": cmdExplain,
	"config":  cmdConfig,
	"serve":   cmdServe,
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch name := args[0]; {
		case name == "help":
			fmt.Fprint(stdout, overview)
			return nil
		case subcommands[name] != nil:
			return subcommands[name](ctx, args[1:], stdout, stderr)
		case len(name) > 0 && name[0] != '-':
			return usageError(fmt.Errorf("unknown command %q (want migrate, start, worker, runs, stats, explain, config or serve; see demo help)", name))
		}
	}
	return cmdDemo(ctx, args, stdout, stderr)
}

const overview = `usage: demo [flags]            run patient journeys with realistic faults
       demo migrate [flags]    apply the schema (legacy databases included)
       demo start [flags]      create runs, unclaimed and due now, for workers
       demo worker [flags]     run the executor until SIGINT/SIGTERM
       demo runs list [--status S] [--json]
       demo runs show ID [--json]
       demo runs retry ID      replay a failed or failed_max_retries run
       demo stats [--json]     the summary of any database
       demo explain [--class C | --message M]
       demo config             every configuration key, its variable, value and meaning
       demo serve [--listen ADDR] [--enable-replay]   the web dashboard

Each command takes --help. Configuration: flags over environment (JRETRY_...)
over the --config file (JSON) over defaults.
`
