package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
)

// demoExecutorConfig is the executor's configuration with the demo's
// choices: rollout mode full, a sweeper every second with a 1 s grace (the
// library's: every 30 s, 5 s), a 5 s lease.
func demoExecutorConfig() executor.Config {
	return executor.Config{
		Mode:       executor.ModeFull,
		Workers:    executor.WorkersDefault,
		Lease:      5 * time.Second,
		SweepSpec:  "@every 1s",
		SweepGrace: time.Second,
	}
}

// patientJourney is the demo's journey definition, as data: register ->
// send reminder SMS -> wait -> call the clinic's API -> branch on the
// answer -> record the outcome.
func patientJourney() executor.Journey {
	branches := map[string]string{}
	for _, a := range clinicAnswers {
		branches[a.answer] = a.next
	}
	wait, _ := json.Marshal(map[string]string{"delay": waitDelay.String()})
	return executor.Journey{ID: journeyID, Version: journeyVersion, Start: nodeRegister, Nodes: []executor.Node{
		{ID: nodeRegister, Type: typeRegister, Next: nodeSendReminder},
		{ID: nodeSendReminder, Type: typeSMS, Next: nodeWait},
		{ID: nodeWait, Type: executor.NodeTypeDelay, Config: wait, Next: nodeCallClinic},
		{ID: nodeCallClinic, Type: typeClinic, Branches: branches, Next: nodeConfirmed},
		{ID: nodeConfirmed, Type: typeRecord},
		{ID: nodeReschedule, Type: typeRecord},
		{ID: nodeCancelled, Type: typeRecord},
	}}
}

// faults is the fault model the configuration describes.
func (c demoConfig) faults() faults { return faults{seed: c.Demo.Seed, rates: c.Demo.Faults} }

// openEngine opens the configured engine (creating the SQLite file and its
// data folder if needed, and migrating the store) with the demo's handlers
// and journey registered. The caller closes it; it may read through its
// store until then. obs, when set, receives its logs and metrics.
func openEngine(ctx context.Context, cfg demoConfig, obs *observability) (*engine.Engine, error) {
	if err := makeDataDir(cfg.Store.DSN); err != nil {
		return nil, err
	}
	ec := cfg.engine()
	if obs != nil {
		ec.Executor.Logger, ec.Executor.Observer = obs.logger, obs.observer()
	}
	eng, err := engine.Open(ctx, ec)
	if err != nil {
		return nil, err
	}
	if err := registerDemo(eng.Executor, cfg.faults()); err != nil {
		return nil, combine.Errors(err, eng.Close())
	}
	if obs != nil {
		if err := obs.watch(eng.Executor, eng.Store()); err != nil {
			return nil, combine.Errors(err, eng.Close())
		}
	}
	return eng, nil
}

// registerDemo registers the demo's handlers, failing as f says, and its
// journey.
func registerDemo(ex *executor.Executor, f faults) error {
	for _, typ := range []string{typeRegister, typeSMS, typeClinic, typeRecord} {
		h := executor.HandlerFunc(func(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
			return f.handle(typ, nodeCall{RunID: in.Run.ID, NodeID: in.Node.ID, Attempt: in.Attempt, RunAttempt: in.RunAttempt, Input: in.Context.Input})
		})
		if err := ex.Handle(typ, h); err != nil {
			return fmt.Errorf("register handler %s: %w", typ, err)
		}
	}
	if err := ex.RegisterJourney(patientJourney()); err != nil {
		return fmt.Errorf("register journey: %w", err)
	}
	return nil
}

// createRuns creates the runs of patients 1..n, unclaimed and due now, for
// any worker to pick up, and returns how many it created. It writes them
// executor.StartManyBatch to a transaction (Executor.StartMany). Without
// fixedIDs the store chooses the run ids, so that several calls add up;
// with it run i has the id demoRunID(i), and those that existing (nil:
// none) already holds are skipped, so that a demo interrupted while
// creating creates only the missing ones when it starts again.
//
// When ctx ends it stops between two batches, each created whole or not
// at all, and returns an error wrapping errInterrupted: an interrupt is
// not a failure.
func createRuns(ctx context.Context, ex *executor.Executor, f faults, n int, fixedIDs bool, existing retry.Runs) (int, error) {
	wctx := context.WithoutCancel(ctx)
	created := 0
	interrupted := func() (int, error) {
		return created, fmt.Errorf("%w while creating runs: %d of %d created", errInterrupted, created, n)
	}
	for first := 1; first <= n; first += executor.StartManyBatch {
		var starts []executor.Start
		for i := first; i < first+executor.StartManyBatch && i <= n; i++ {
			if ctx.Err() != nil {
				return interrupted()
			}
			s := executor.Start{JourneyID: journeyID}
			if fixedIDs {
				id := demoRunID(i)
				if existing != nil {
					if _, err := existing.Get(wctx, id); err == nil {
						continue
					} else if !errors.Is(err, retry.ErrNotFound) {
						return created, fmt.Errorf("look up run %s: %w", retry.QuoteID(id), err)
					}
				}
				s.Options = []executor.StartOption{executor.WithRunID(id)}
			}
			input, err := json.Marshal(f.newPatient(i))
			if err != nil {
				return created, fmt.Errorf("patient %d: %w", i, err)
			}
			s.Input = input
			starts = append(starts, s)
		}
		runs, err := ex.StartMany(ctx, starts)
		created += len(runs)
		switch {
		case err != nil && ctx.Err() != nil:
			return interrupted()
		case err != nil && fixedIDs && errors.Is(err, retry.ErrDuplicateRun) && existing != nil: // taken since the look-up
			return created, fmt.Errorf("%w: another demo is running on this database (let it finish, then run the demo again to see its summary, or use another --store)", err)
		case err != nil:
			return created, err // it says "start runs"
		}
	}
	return created, nil
}
