package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/scheduler/sqlpoll"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// benchWorkers is the worker pool size of the end-to-end benchmarks.
const benchWorkers = 64

// retryAfter retries every failure after d, up to the run's max retries.
func retryAfter(d time.Duration) retry.Policy {
	return retry.PolicyFunc(func(f retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Delay: d, Strategy: "bench", Rule: "default"}
	})
}

func newBenchExecutor(b *testing.B, pol retry.Policy) (*executor.Executor, *memory.Scheduler) {
	store := openStore(b, "")
	sched, err := memory.New(memory.Config{})
	must(b, err)
	ex, err := executor.New(executor.Config{Workers: benchWorkers, Mode: executor.ModeFull, SweepSpec: "@every 1h"}, store, sched, pol)
	must(b, err)
	return ex, sched
}

// BenchmarkThroughput: 20,000 runs of a one-node journey whose node fails
// twice and then succeeds, retry delay zero; attempts per second.
func BenchmarkThroughput(b *testing.B) {
	const runs = 20000
	ex, _ := newBenchExecutor(b, retryAfter(0))
	defer ex.Close()
	blip := retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	must(b, ex.Handle("flaky", failing(blip, 2)))
	must(b, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}))
	var total time.Duration
	for i := range b.N {
		total += retrytest.CompleteRuns(b, ex, "j", i, benchWorkers, runs)
	}
	b.ReportMetric(float64(3*runs*b.N)/total.Seconds(), "attempts/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLateness: 1,000 runs started at 100 per second, each failing once
// with a 1 s retry; how late each retry starts after its due time.
func BenchmarkLateness(b *testing.B) {
	const runs, rate = 1000, 100
	var lateness []time.Duration
	for range b.N {
		ex, _ := newBenchExecutor(b, retryAfter(time.Second))
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Add(runs)
		var late []time.Duration
		must(b, ex.Handle("once", executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
			if in.Attempt == 1 {
				return nil, errors.New("fail once")
			}
			d := time.Now().Sub(in.Run.NextRetryAt)
			mu.Lock()
			late = append(late, d)
			mu.Unlock()
			wg.Done()
			return nil, nil
		})))
		must(b, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "once"}}}))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- ex.Run(ctx) }()
		tick := time.NewTicker(time.Second / rate)
		for i := range runs {
			<-tick.C
			go func() {
				if _, err := ex.StartRunSync(context.Background(), "j", nil, executor.WithRunID(fmt.Sprint(i))); err != nil {
					b.Error(err)
				}
			}()
		}
		tick.Stop()
		wg.Wait()
		cancel()
		must(b, <-errc)
		lateness = append(lateness, late...)
	}
	slices.Sort(lateness)
	q := func(p float64) time.Duration { return lateness[int(p*float64(len(lateness)-1))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lateness[len(lateness)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(lateness[0].Microseconds())/1000, "min-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkStartDeferred: 20,000 deferred starts (unclaimed, due now, the
// scheduler told), one StartRun each or one StartMany, on SQLite and
// PostgreSQL (skipped without RETRY_TEST_POSTGRES_URL), with the memory
// scheduler and with the SQL-polling one on the store's database; runs
// created per second.
//
//	RETRY_TEST_POSTGRES_URL=... go test -run '^$' -bench StartDeferred -benchtime 1x ./executor/
func BenchmarkStartDeferred(b *testing.B) {
	const runs = 20000
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, scheduler := range []string{"memory", "sqlpoll"} {
			for _, how := range []string{"StartRun", "StartMany"} {
				b.Run(engine+"/"+scheduler+"/"+how, func(b *testing.B) {
					benchStartDeferred(b, engine, scheduler, how, runs)
				})
			}
		}
	}
}

func benchStartDeferred(b *testing.B, engine, scheduler, how string, runs int) {
	dsn := ""
	if engine == "postgres" {
		dsn = pgtest.DSN(b)
	}
	store := openBenchStore(b, dsn)
	defer store.Close()
	var sched retry.Scheduler
	var err error
	if scheduler == "sqlpoll" {
		sched, err = sqlpoll.New(context.Background(), store.DB(), sqlpoll.Config{})
	} else {
		sched, err = memory.New(memory.Config{})
	}
	must(b, err)
	defer sched.Close()
	ex, err := executor.New(executor.Config{SweepSpec: "@every 1h"}, store, sched, retryAfter(0))
	must(b, err)
	defer ex.Close()
	must(b, ex.Handle("ok", executor.HandlerFunc(ok)))
	must(b, ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "ok"}}}))
	input := []byte(`{"patient":"p"}`)
	var total time.Duration
	for round := range b.N {
		starts := make([]executor.Start, runs)
		for i := range starts {
			starts[i] = executor.Start{JourneyID: "j", Input: input,
				Options: []executor.StartOption{executor.WithRunID(fmt.Sprintf("%d-%06d", round, i))}}
		}
		start := time.Now()
		if how == "StartMany" {
			_, err = ex.StartMany(context.Background(), starts)
			must(b, err)
		} else {
			for _, s := range starts {
				_, err = ex.StartRun(context.Background(), s.JourneyID, s.Input, append(s.Options, executor.Deferred())...)
				must(b, err)
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(runs*b.N)/total.Seconds(), "runs/s")
	b.ReportMetric(0, "ns/op")
}
