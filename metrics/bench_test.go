package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// BenchmarkObservabilityOverhead measures what the metrics and info-level
// JSON logs cost executor throughput, as paired samples. Each iteration is
// a pair: two fresh SQLite stores, each with its executor and memory
// scheduler, one with the metrics and logs off, one on, alike but for
// that; both warmed up with 200 runs, then 2,000 timed runs each from 16
// workers, in chunks of 100 that alternate between them (A B B A A B B A...,
// A off in even pairs, on in odd ones), so that the machine's drifting
// load, the store's growth and the collector's cycles weigh on both alike. A run is a one-node journey that fails once (an info record, a
// retry metric) and then succeeds. When on, the logs are written to a
// file, unbuffered, one write per record, as a process's stderr
// redirected to a file is; the pair checks it holds a record per run. It
// reports the median of the pairs' overheads (1 - on/off attempts/s; and
// on/off - 1 of the process's CPU time per attempt, which other
// processes' load sways less than the wall clock) with their quartiles,
// and the median off attempts/s and CPU per attempt; it logs each pair's.
func BenchmarkObservabilityOverhead(b *testing.B) {
	var wall, cpu, offRate, offCPU []float64
	for i := 0; b.Loop(); i++ {
		off, on := observedPair(b, i%2 == 1)
		wall = append(wall, 100*(1-on.rate()/off.rate()))
		cpu = append(cpu, 100*(on.cpuPerAttempt()/off.cpuPerAttempt()-1))
		offRate, offCPU = append(offRate, off.rate()), append(offCPU, off.cpuPerAttempt())
	}
	for _, f := range []struct {
		name string
		xs   []float64
	}{{"overhead-%", wall}, {"cpu-overhead-%", cpu}} {
		b.ReportMetric(quantile(f.xs, 0.5), f.name)
		b.ReportMetric(quantile(f.xs, 0.25), f.name+"-q1")
		b.ReportMetric(quantile(f.xs, 0.75), f.name+"-q3")
	}
	b.ReportMetric(quantile(offRate, 0.5), "off-attempts/s")
	b.ReportMetric(quantile(offCPU, 0.5), "off-cpu-µs/attempt")
	b.Logf("pairs' overheads, %%, in order: attempts/s %.1f; CPU per attempt %.1f", wall, cpu)
}

// sample is one side of a pair of BenchmarkObservabilityOverhead.
type sample struct {
	attempts  int
	wall, cpu time.Duration
}

func (s sample) rate() float64          { return float64(s.attempts) / s.wall.Seconds() }
func (s sample) cpuPerAttempt() float64 { return float64(s.cpu.Microseconds()) / float64(s.attempts) }

// quantile is the q-quantile of xs, interpolated between its closest ranks.
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// observedPair is one pair of BenchmarkObservabilityOverhead, its first
// chunk on when onFirst.
func observedPair(b *testing.B, onFirst bool) (off, on sample) {
	const warm, chunk, chunks, workers = 200, 100, 20, 16
	logs, err := os.Create(filepath.Join(b.TempDir(), "log.json"))
	if err != nil {
		b.Fatal(err)
	}
	var exs [2]*executor.Executor // off, on
	for v, w := range []io.Writer{nil, logs} {
		var closeAll func()
		exs[v], closeAll = observedExecutor(b, b.TempDir(), w)
		defer closeAll()
		retrytest.CompleteRuns(b, exs[v], "j", 0, workers, warm)
	}
	runtime.GC() // the warm-ups' garbage is not charged to the first chunk
	var s [2]sample
	for c := range 2 * chunks {
		v := (c + 1) / 2 % 2 // 0 1 1 0 0 1 1 0...
		if onFirst {
			v = 1 - v
		}
		cpu := retrytest.ProcessCPU()
		s[v].wall += retrytest.CompleteRuns(b, exs[v], "j", c+1, workers, chunk)
		s[v].cpu += retrytest.ProcessCPU() - cpu
		s[v].attempts += 2 * chunk
	}
	if err := logs.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(logs.Name())
	if err != nil {
		b.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != warm+chunks*chunk {
		b.Fatalf("%d log records, want %d (one per retry)", n, warm+chunks*chunk)
	}
	return s[0], s[1]
}

// observedExecutor is an executor on a fresh SQLite store in dir and a
// memory scheduler whose node type "flaky" fails each run's first attempt;
// with the metrics and info-level JSON logs written to logs when logs is
// not nil. closeAll closes the executor, the scheduler and the store.
func observedExecutor(b *testing.B, dir string, logs io.Writer) (ex *executor.Executor, closeAll func()) {
	const workers = 16
	ctx := context.Background()
	s, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(dir, "bench.db")})
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
	if logs != nil {
		m, err := metrics.New(prometheus.NewRegistry(), metrics.Config{Scheduler: "memory"})
		if err != nil {
			b.Fatal(err)
		}
		logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		cfg.Observer, cfg.Logger = executor.Observers(m, executor.LogObserver{Logger: logger}), logger
	}
	pol := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Strategy: "immediate", Rule: "default"}
	})
	if ex, err = executor.New(cfg, s, sched, pol); err != nil {
		b.Fatal(err)
	}
	closeAll = func() {
		ex.Close()
		sched.Close()
		s.Close()
	}
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
	return ex, closeAll
}

// BenchmarkObserveRun is the synchronous share of the observability cost
// in BenchmarkObservabilityOverhead's workload, without the store: the
// events of one run (a failure retried at once, then a success that
// completes it) told to the metrics and to info-level JSON logs, as a
// worker tells them; the logs to io.Discard (the formatting alone) and to
// a file, one write per record (as the overhead benchmark writes them).
// Divided by the CPU time of a run's two attempts there, it is the
// overhead load cannot blur.
func BenchmarkObserveRun(b *testing.B) {
	file, err := os.Create(filepath.Join(b.TempDir(), "log.json"))
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	for _, sink := range []struct {
		name string
		w    io.Writer
	}{{"discard", io.Discard}, {"file", file}} {
		b.Run("logs="+sink.name, func(b *testing.B) {
			m, err := metrics.New(prometheus.NewRegistry(), metrics.Config{Scheduler: "memory"})
			if err != nil {
				b.Fatal(err)
			}
			logger := slog.New(slog.NewJSONHandler(sink.w, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
		})
	}
}
