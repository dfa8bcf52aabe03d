package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
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
// metrics and info-level JSON logs (to io.Discard) off and on: 2,000 runs
// per iteration of a one-node journey that fails once (an info record, a
// retry metric) and then succeeds, 16 workers, on SQLite. Run the two
// sub-benchmarks interleaved (-count) and compare attempts/s.
func BenchmarkObservabilityOverhead(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) { benchObservability(b, on) })
	}
}

func benchObservability(b *testing.B, on bool) {
	const runs, workers = 2000, 16
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
	pol := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Strategy: "immediate", Rule: "default"}
	})
	ex, err := executor.New(cfg, s, sched, pol)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ex.Close()
		sched.Close()
		s.Close()
	}()
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
	var total time.Duration
	for i := range b.N {
		total += retrytest.CompleteRuns(b, ex, "j", i, workers, runs)
	}
	b.ReportMetric(float64(2*runs*b.N)/total.Seconds(), "attempts/s")
}
