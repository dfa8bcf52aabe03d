package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/metrics"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
)

// BenchmarkObservabilityOverhead measures executor throughput with the
// metrics and info-level JSON logs (to io.Discard) off, on, and on with a
// user hook too (one that counts its events): each iteration runs one
// round of 2,000 runs on each of three executors, in turn (in a rotating
// order), so that the machine's load, which drifts, weighs on the three
// alike. A run is a one-node journey that fails once (an info record, a
// retry metric) and then succeeds; 16 workers, on SQLite, one store per
// executor. It reports each executor's attempts/s and the overheads
// (1 - on/off, 1 - hook/off) in percent, and the same from the process's
// CPU time per attempt, which the load of other processes sways far less
// than the wall clock; compare the overheads across -count repetitions.
func BenchmarkObservabilityOverhead(b *testing.B) {
	const runs, workers = 2000, 16
	type variant struct {
		ex     *executor.Executor
		hooked *atomic.Int64
		total  time.Duration
		cpu    time.Duration
	}
	vs := []*variant{
		{ex: observedExecutor(b, false, nil)},
		{ex: observedExecutor(b, true, nil)},
		{hooked: new(atomic.Int64)},
	}
	vs[2].ex = observedExecutor(b, true, vs[2].hooked)
	for i := range b.N {
		for k := range vs {
			v := vs[(i+k)%len(vs)]
			runtime.GC() // the last round's garbage is not charged to this one
			cpu := retrytest.ProcessCPU()
			v.total += retrytest.CompleteRuns(b, v.ex, "j", i, workers, runs)
			v.cpu += retrytest.ProcessCPU() - cpu
		}
	}
	rate := func(v *variant) float64 { return float64(2*runs*b.N) / v.total.Seconds() }
	b.ReportMetric(rate(vs[0]), "off-attempts/s")
	b.ReportMetric(rate(vs[1]), "on-attempts/s")
	b.ReportMetric(rate(vs[2]), "hook-attempts/s")
	b.ReportMetric(100*(1-rate(vs[1])/rate(vs[0])), "on-overhead-%")
	b.ReportMetric(100*(1-rate(vs[2])/rate(vs[0])), "hook-overhead-%")
	perAttempt := func(v *variant) float64 { return float64(v.cpu.Microseconds()) / float64(2*runs*b.N) }
	b.ReportMetric(perAttempt(vs[0]), "off-cpu-µs/attempt")
	b.ReportMetric(perAttempt(vs[1]), "on-cpu-µs/attempt")
	b.ReportMetric(perAttempt(vs[2]), "hook-cpu-µs/attempt")
	b.ReportMetric(100*(perAttempt(vs[1])/perAttempt(vs[0])-1), "on-cpu-overhead-%")
	b.ReportMetric(100*(perAttempt(vs[2])/perAttempt(vs[0])-1), "hook-cpu-overhead-%")
	vs[2].ex.Close() // the hook has handled what it was given
	if st := vs[2].ex.HookStats()[0]; st.Handled != vs[2].hooked.Load() || st.Handled+st.Dropped != int64(4*runs*b.N) {
		b.Fatalf("hook %+v, counted %d, want %d events", st, vs[2].hooked.Load(), 4*runs*b.N)
	}
}

// observedExecutor is an executor on a fresh SQLite store and a memory
// scheduler whose node type "flaky" fails each run's first attempt; with
// the metrics and info-level logs when on, and a hook counting its events
// into hooked when set. It is closed at the end of the benchmark.
func observedExecutor(b *testing.B, on bool, hooked *atomic.Int64) *executor.Executor {
	const workers = 16
	ctx := context.Background()
	s, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	sched, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := executor.Config{Workers: workers, Mode: executor.ModeFull, SweepSpec: "@every 1h", Logger: slog.New(slog.DiscardHandler)}
	if on {
		m, err := metrics.New(prometheus.NewRegistry(), metrics.Config{Scheduler: "memory"})
		if err != nil {
			b.Fatal(err)
		}
		logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.Observer, cfg.Logger = executor.Observers(m, executor.LogObserver{Logger: logger}), logger
	}
	if hooked != nil {
		cfg.Hooks = []executor.Hook{{Name: "count", Func: func(context.Context, executor.Event) error {
			hooked.Add(1)
			return nil
		}}}
	}
	pol := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Strategy: "immediate", Rule: "default"}
	})
	ex, err := executor.New(cfg, s, sched, pol)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ex.Close()
		sched.Close()
		s.Close()
	})
	blip := retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip)
	if err := ex.Handle("flaky", executor.HandlerFunc(func(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt == 1 {
			return nil, blip
		}
		return json.RawMessage(`{}`), nil
	})); err != nil {
		b.Fatal(err)
	}
	if err := ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}); err != nil {
		b.Fatal(err)
	}
	return ex
}

// BenchmarkObserveRun is the synchronous share of the observability cost
// in BenchmarkObservabilityOverhead's workload, without the store: the
// events of one run (a failure retried at once, then a success that
// completes it) told to the metrics and to info-level JSON logs (to
// io.Discard), as a worker tells them. Divided by the CPU time of a run's
// two attempts there, it is the overhead load cannot blur.
func BenchmarkObserveRun(b *testing.B) {
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Config{Scheduler: "memory"})
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	obs := executor.Observers(m, executor.LogObserver{Logger: logger})
	step := executor.Step{RunID: "round-000001", JourneyID: "j", NodeID: "n", NodeType: "flaky", NodeAttempt: 1}
	failed := executor.AttemptRecorded{Step: step, Duration: time.Millisecond, Err: retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip),
		Class: retry.ClassNetworkBlip, Decision: retry.Decision{Retry: true, Strategy: "immediate", Rule: "default"}, Status: retry.StatusInProgress}
	step.NodeAttempt = 2
	done := executor.AttemptRecorded{Step: step, Duration: time.Millisecond, Status: retry.StatusCompleted}
	events := []executor.Event{failed, executor.RetryScheduled{AttemptRecorded: failed, At: time.Now()}, done, executor.RunCompleted{AttemptRecorded: done}}
	b.ReportAllocs()
	for b.Loop() {
		for _, ev := range events {
			obs.Observe(ev)
		}
	}
}
