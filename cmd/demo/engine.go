package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

// demoExecutorConfig is the executor's configuration with the demo's
// choices: rollout mode full (the library's default is off), a sweeper
// every second with a 1 s grace (the library's: every 30 s, 5 s), a 5 s
// lease.
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

// openExecutor opens (creating and migrating) the configured store and
// returns an executor over it. The executor owns the store: its Run or
// Close closes it; the caller may read through the store until then.
func openExecutor(ctx context.Context, cfg demoConfig) (*executor.Executor, *storage.Store, error) {
	s, err := openStore(ctx, cfg.Store, createAndMigrate)
	if err != nil {
		return nil, nil, err
	}
	ex, err := newExecutor(cfg, s)
	return ex, s, err
}

// newExecutor returns an executor over s and a new in-memory scheduler,
// with the demo's handlers and journey registered. It owns s from now on:
// Run or Close closes it.
func newExecutor(cfg demoConfig, s *storage.Store) (*executor.Executor, error) {
	f := cfg.faults()
	pol, err := cfg.Retry.Build()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("build policy: %w", err)
	}
	sched, err := memory.New(memory.Config{})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	ec := cfg.Executor
	// The store's retry limit follows the policy's unless set on its own.
	ec.MaxRetries = cmp.Or(ec.MaxRetries, cfg.Retry.MaxRetries)
	ex, err := executor.New(ec, s, sched, pol)
	if err != nil {
		sched.Close()
		s.Close()
		return nil, fmt.Errorf("executor: %w", err)
	}
	for _, typ := range []string{typeRegister, typeSMS, typeClinic, typeRecord} {
		h := executor.HandlerFunc(func(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
			return f.handle(typ, nodeCall{RunID: in.Run.ID, NodeID: in.Node.ID, Attempt: in.Attempt, Input: in.Context.Input})
		})
		if err := ex.Handle(typ, h); err != nil {
			ex.Close()
			return nil, fmt.Errorf("register handler %s: %w", typ, err)
		}
	}
	if err := ex.RegisterJourney(patientJourney()); err != nil {
		ex.Close()
		return nil, fmt.Errorf("register journey: %w", err)
	}
	return ex, nil
}

// startRun creates the run of patient number i, unclaimed and due now, for
// any worker to pick up; id empty lets the store choose it.
func startRun(ctx context.Context, ex *executor.Executor, f faults, id string, i int) error {
	input, err := json.Marshal(f.newPatient(i))
	if err != nil {
		return err
	}
	opts := []executor.StartOption{executor.Deferred()}
	if id != "" {
		opts = append(opts, executor.WithRunID(id))
	}
	if _, err := ex.StartRun(ctx, journeyID, input, opts...); err != nil {
		return fmt.Errorf("create run: %w", err)
	}
	return nil
}
