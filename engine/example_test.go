package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// A journey of one node whose first attempt hits a network blip: the
// default policy retries it, and the run completes. README's quick start
// is this code (TestReadmeQuickStart checks).
func Example() {
	ctx := context.Background()
	cfg := engine.DefaultConfig() // or load it: config.New(&cfg, "JRETRY").Load()
	cfg.Store.DSN = ":memory:"    // a SQLite file path, or a postgres:// URL
	eng, err := engine.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	eng.Handle("send_sms", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt == 1 { // retried: the policy routes network blips to "immediate"
			return nil, retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
		}
		return json.RawMessage(`{"sent":true}`), nil
	}))
	eng.RegisterJourney(executor.Journey{ID: "reminder", Start: "sms", Nodes: []executor.Node{{ID: "sms", Type: "send_sms"}}})

	runCtx, stop := context.WithCancel(ctx)
	served := make(chan error)
	go func() { served <- eng.Run(runCtx) }() // serves wake-ups (the retry) until stopped
	run, err := eng.StartRun(ctx, "reminder", json.RawMessage(`{"patient":"p-1"}`))
	if err == nil {
		run, err = eng.Wait(ctx, run.ID)
	}
	stop()
	fmt.Println(run.Status, string(run.Context.Outputs["sms"]), err, <-served)
	// Output: completed {"sent":true} <nil> <nil>
}
