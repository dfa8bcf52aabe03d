// Command embed is a program of a team's own that embeds journeyretry:
// everything it runs on (SQLite file or PostgreSQL URL, scheduler backend,
// policy, rollout mode) comes from configuration, through package engine,
// with the library's keys, environment (JRETRY_...) and precedence:
//
//	go run . --config embed.json
//	JRETRY_STORE_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable go run .
//
// It starts a few runs of a journey whose node fails once with a network
// blip, waits for each to end and prints their statuses; it exits non-zero
// unless every run completed after one retry.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := engine.DefaultConfig()
	cfg.Store.DSN = "embed.db"
	l := config.New(&cfg, "JRETRY")
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	l.FileFlag(fs, "config", "configuration file (JSON)")
	l.Flag(fs, "store", "store.dsn", "a SQLite file path or a postgres:// URL")
	runs := fs.Int("runs", 5, "runs to start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := l.Load(); err != nil {
		return err
	}
	ctx := context.Background()
	eng, err := engine.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.Handle("send", executor.HandlerFunc(send)); err != nil {
		return err
	}
	if err := eng.RegisterJourney(executor.Journey{ID: "embed", Start: "send", Nodes: []executor.Node{{ID: "send", Type: "send"}}}); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Run(runCtx) }()
	err = startAndWait(ctx, eng, *runs)
	stop()
	errs := multierror.Append(&multierror.Error{ErrorFormat: retry.FormatErrors}, err, <-served)
	if err := errs.ErrorOrNil(); err != nil {
		return err
	}
	kind := "sqlite"
	if storage.IsPostgres(cfg.Store.DSN) {
		kind = "postgresql"
	}
	fmt.Printf("%d runs completed after one retry each (store %s, scheduler %s)\n", *runs, kind, cfg.Scheduler.Backend)
	return nil
}

// send fails its first attempt with a network blip, which the default
// policy retries.
func send(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
	if in.Attempt == 1 {
		return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	}
	return json.RawMessage(`{"sent":true}`), nil
}

func startAndWait(ctx context.Context, eng *engine.Engine, n int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ids := make([]string, 0, n)
	for range n {
		run, err := eng.StartRun(ctx, "embed", nil)
		if err != nil {
			return err
		}
		ids = append(ids, run.ID)
	}
	for _, id := range ids {
		run, err := eng.Wait(ctx, id)
		if err != nil {
			return err
		}
		atts, err := eng.Store().Attempts(ctx, id)
		if err != nil {
			return err
		}
		if run.Status != retry.StatusCompleted || len(atts) != 2 {
			return fmt.Errorf("run %s: %s after %d attempts, want completed after 2", id, run.Status, len(atts))
		}
	}
	return nil
}
