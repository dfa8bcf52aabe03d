package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/metrics"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/storage"
	"github.com/journeyretry/journeyretry/storage/memstore"
)

// failingSchedule fails its first Schedule, as a backend outage would.
type failingSchedule struct {
	retry.Scheduler
	failed atomic.Bool
}

func (s *failingSchedule) Schedule(ctx context.Context, id string, at time.Time) error {
	if s.failed.CompareAndSwap(false, true) {
		return errors.New("scheduler down")
	}
	return s.Scheduler.Schedule(ctx, id, at)
}

// TestMetricsAgreeWithStore runs a real executor whose node fails once per
// run, and checks each metric against what happened and what the store
// holds.
func TestMetricsAgreeWithStore(t *testing.T) {
	ctx := t.Context()
	s, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(t.TempDir(), "runs.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mem, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sched := &failingSchedule{Scheduler: mem}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{Scheduler: "memory", StatusTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	pol := retry.PolicyFunc(func(retry.Failure) retry.Decision {
		return retry.Decision{Retry: true, Delay: 20 * time.Millisecond, Strategy: "short", Rule: "default"}
	})
	ex, err := executor.New(executor.Config{Mode: executor.ModeFull, Observer: m, Logger: slog.New(slog.DiscardHandler), SweepSpec: "@every 1s", SweepGrace: 200 * time.Millisecond}, s, sched, pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(ex); err != nil {
		t.Fatal(err)
	}
	if err := m.CountRuns(s); err != nil {
		t.Fatal(err)
	}
	if err := ex.Handle("flaky", executor.HandlerFunc(func(_ context.Context, in executor.NodeInput) (json.RawMessage, error) {
		if in.Attempt == 1 {
			return nil, retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable)
		}
		return json.RawMessage(`{}`), nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := ex.RegisterJourney(executor.Journey{ID: "j", Start: "n", Nodes: []executor.Node{{ID: "n", Type: "flaky"}}}); err != nil {
		t.Fatal(err)
	}
	const runs = 5
	for range runs {
		if _, err := ex.StartRun(ctx, "j", nil, executor.Deferred()); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ex.Run(runCtx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := s.CountByStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c[retry.StatusCompleted] == runs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs did not finish: %v", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
	counts, err := s.CountByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range retry.Statuses {
		if got := testutil.ToFloat64(gauge(t, reg, "journeyretry_runs", "status", string(st))); got != float64(counts[st]) {
			t.Errorf("runs{status=%s} = %g, store %d", st, got, counts[st])
		}
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	want := map[string]float64{
		`journeyretry_attempts_total{class="",node_type="flaky",outcome="succeeded"}`:                   runs,
		`journeyretry_attempts_total{class="service_unavailable",node_type="flaky",outcome="retrying"}`: runs,
		`journeyretry_attempt_duration_seconds_count{node_type="flaky"}`:                                2 * runs,
		`journeyretry_retries_scheduled_total{class="service_unavailable",strategy="short"}`:            runs,
		`journeyretry_retry_delay_seconds_count{strategy="short"}`:                                      runs,
		`journeyretry_retry_delay_seconds_sum{strategy="short"}`:                                        runs * 0.02,
		`journeyretry_backend_errors_total{op="schedule deferred run"}`:                                 1,
		`journeyretry_lost_claims_total`:                                                                0,
		`journeyretry_claims_in_flight`:                                                                 0,
	}
	got := scrape(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || !near(g, v) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// The run whose Schedule failed was taken by the sweeper; the others
	// were delivered by the scheduler, each with its lateness observed.
	if n := got[`journeyretry_wakeup_lateness_seconds_count{scheduler="memory"}`]; n < runs-1 {
		t.Errorf("wake-up lateness observed %g times, want at least %d", n, runs-1)
	}
	if n := got[`journeyretry_sweeper_caught_total`]; n < 1 {
		t.Errorf("sweeper caught %g, want the run whose schedule failed", n)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// scrape gathers reg as "name{labels}" -> value, counters, gauges and
// histogram counts and sums alike.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := func(suffix string) string {
				if len(labels) == 0 {
					return mf.GetName() + suffix
				}
				return mf.GetName() + suffix + "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key("_count")] = float64(m.Histogram.GetSampleCount())
				out[key("_sum")] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// gauge is the collector of one labelled series of a registry, for
// testutil.ToFloat64.
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) prometheus.Collector {
	t.Helper()
	v, ok := scrape(t, reg)[name+"{"+label+`="`+value+`"}`]
	if !ok {
		t.Fatalf("no %s{%s=%q}", name, label, value)
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
}

// countingInspector counts CountByStatus calls.
type countingInspector struct {
	retry.Inspector
	calls atomic.Int32
}

func (c *countingInspector) CountByStatus(context.Context) (map[retry.Status]int, error) {
	c.calls.Add(1)
	return map[retry.Status]int{retry.StatusCompleted: 3}, nil
}

// TestRunsCountCached: scrapes within the TTL reuse one count; a scrape
// after it counts again.
func TestRunsCountCached(t *testing.T) {
	now := time.Unix(1000, 0)
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{StatusTTL: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	in := &countingInspector{}
	if err := m.CountRuns(in); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if got := scrape(t, reg)[`journeyretry_runs{status="completed"}`]; got != 3 {
			t.Fatalf("runs completed %g", got)
		}
	}
	if n := in.calls.Load(); n != 1 {
		t.Errorf("10 scrapes within the TTL counted %d times, want 1", n)
	}
	now = now.Add(5 * time.Second)
	scrape(t, reg)
	if n := in.calls.Load(); n != 2 {
		t.Errorf("a scrape after the TTL: %d counts, want 2", n)
	}
}

// TestNew: a nil registerer and a negative TTL are refused; two Metrics on
// one registry collide, as nothing registers globally.
func TestNew(t *testing.T) {
	if _, err := metrics.New(nil, metrics.Config{}); !errors.Is(err, retry.ErrInvalidArgument) {
		t.Errorf("nil registerer: %v", err)
	}
	_, err := metrics.New(prometheus.NewRegistry(), metrics.Config{StatusTTL: -1})
	if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != "StatusTTL" || !errors.Is(err, retry.ErrInvalidArgument) {
		t.Errorf("negative TTL: %v, want a retry.FieldError naming StatusTTL, wrapping ErrInvalidArgument", err)
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg, metrics.Config{}); err == nil {
		t.Error("second registration on one registry succeeded")
	}
	if _, err := metrics.New(prometheus.NewRegistry(), metrics.Config{}); err != nil {
		t.Errorf("a fresh registry: %v", err)
	}
}

// fakeExecutor is a Statser with fixed counters.
type fakeExecutor struct{ hooks []executor.HookStats }

func (f fakeExecutor) Stats() executor.Stats           { return executor.Stats{InFlight: 2} }
func (f fakeExecutor) HookStats() []executor.HookStats { return f.hooks }

// TestObserveEvents: each event moves its own counters, by node type, not
// by node id; a zero-delay retry counts as a retry scheduled and its
// attempt as retrying, as the store records it; a snooze is an attempt,
// outcome snoozed, and no retry; a budget deferral counts by
// class; the hooks' drops and failures are read from the executor.
func TestObserveEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{Scheduler: "redis"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Watch(fakeExecutor{hooks: []executor.HookStats{{Name: "webhook", Handled: 9, Failed: 2, Dropped: 5}}}); err != nil {
		t.Fatal(err)
	}
	step := executor.Step{RunID: "r", JourneyID: "j", NodeID: "charge-card-7", NodeType: "http", NodeAttempt: 1}
	immediate := executor.AttemptRecorded{Step: step, Duration: time.Second, Err: errors.New("reset"), Class: retry.ClassNetworkBlip,
		Decision: retry.Decision{Retry: true, Strategy: "immediate"}, Status: retry.StatusInProgress}
	other := step
	other.NodeID = "charge-card-8" // another node of the same type: the same series
	done := executor.AttemptRecorded{Step: other, Duration: time.Second, Status: retry.StatusCompleted}
	snoozed := executor.AttemptRecorded{Step: step, Duration: time.Second, Err: errors.New("lab result not in"), Snoozed: true,
		Decision: retry.Decision{Delay: time.Minute}, Status: retry.StatusWaiting}
	at := time.Unix(100, 0)
	for _, ev := range []executor.Event{
		immediate, executor.RetryScheduled{AttemptRecorded: immediate, At: at},
		done, executor.RunCompleted{AttemptRecorded: done},
		snoozed, executor.NodeSnoozed{AttemptRecorded: snoozed, At: at},
		executor.BudgetDeferred{AttemptRecorded: immediate, Rule: "budget:network_blip", At: at},
		executor.Swept{Caught: 2}, executor.RunRescued{RunID: "r"}, executor.RunRescued{RunID: "s"},
		executor.LeaseLost{Step: step, Err: retry.ErrLostClaim},
		executor.Woke{RunID: "r", At: at, FiredAt: at.Add(time.Second)},
		executor.Woke{RunID: "r", At: at, FiredAt: at.Add(-time.Second)}, // early: 0
		executor.BackendError{Op: "schedule", Err: errors.New("down")},
	} {
		m.Observe(ev)
	}
	want := map[string]float64{
		`journeyretry_attempts_total{class="network_blip",node_type="http",outcome="retrying"}`: 1,
		`journeyretry_attempts_total{class="",node_type="http",outcome="succeeded"}`:            1,
		`journeyretry_attempts_total{class="",node_type="http",outcome="snoozed"}`:              1,
		`journeyretry_attempt_duration_seconds_count{node_type="http"}`:                         3,
		`journeyretry_retries_scheduled_total{class="network_blip",strategy="immediate"}`:       1,
		`journeyretry_retry_delay_seconds_count{strategy="immediate"}`:                          1,
		`journeyretry_budget_deferred_total{class="network_blip"}`:                              1,
		`journeyretry_sweeps_total`:                                     1,
		`journeyretry_sweeper_caught_total`:                             2,
		`journeyretry_lost_claims_total`:                                1,
		`journeyretry_wakeup_lateness_seconds_count{scheduler="redis"}`: 2,
		`journeyretry_wakeup_lateness_seconds_sum{scheduler="redis"}`:   1,
		`journeyretry_backend_errors_total{op="schedule"}`:              1,
		`journeyretry_claims_in_flight`:                                 2,
		`journeyretry_hook_events_dropped_total{hook="webhook"}`:        5,
		`journeyretry_hook_events_failed_total{hook="webhook"}`:         2,
	}
	got := scrape(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || !near(g, v) {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if strings.Contains(k, "charge-card") || strings.Contains(k, `journey="`) {
			t.Errorf("%s: labelled by node id or journey", k)
		}
	}
}

// TestObserveConcurrent: workers telling attempts and retries of label
// sets seen for the first time, all at once, lose no count and mix no
// series up.
func TestObserveConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const workers, types, each = 8, 5, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range types * each {
				typ := fmt.Sprintf("type%d", (w+i)%types)
				ev := executor.AttemptRecorded{Step: executor.Step{NodeType: typ}, Err: errors.New("reset"), Class: retry.Class(typ),
					Decision: retry.Decision{Retry: true, Strategy: typ, Delay: time.Second}, Status: retry.StatusRetrying}
				m.Observe(ev)
				m.Observe(executor.RetryScheduled{AttemptRecorded: ev})
			}
		})
	}
	wg.Wait()
	got := scrape(t, reg)
	for i := range types {
		typ := fmt.Sprintf("type%d", i)
		for k, v := range map[string]float64{
			`journeyretry_attempts_total{class="` + typ + `",node_type="` + typ + `",outcome="retrying"}`: workers * each,
			`journeyretry_attempt_duration_seconds_count{node_type="` + typ + `"}`:                        workers * each,
			`journeyretry_retries_scheduled_total{class="` + typ + `",strategy="` + typ + `"}`:            workers * each,
			`journeyretry_retry_delay_seconds_sum{strategy="` + typ + `"}`:                                workers * each,
		} {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	}
}

// TestBudgetGauges: a store that keeps retry budgets has each budget's
// window and pause read at scrape time, as the store reports them.
func TestBudgetGauges(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	now := time.Unix(1_000_000, 0)
	u := retry.BudgetUse{Key: "rate_limit", Scope: "*", Budget: retry.Budget{MinRetries: 1, Ratio: 0.001}, PauseUntil: now.Add(time.Hour)}
	for _, id := range []string{"a", "b"} {
		r, err := s.Create(ctx, retry.NewRun{ID: id, JourneyID: "j", JourneyVersion: 1, StartNodeID: "n", MaxRetries: 3, Worker: "w", Lease: time.Minute}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: "n", Class: retry.ClassRateLimit,
			Decision: retry.Decision{Retry: true, Delay: time.Second}, Budget: u, FinishedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CountRuns(s); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, reg)
	for name, want := range map[string]float64{
		`journeyretry_budget_window{budget="rate_limit",kind="deferred"}`: 2, // both wait for the pause's end
		`journeyretry_budget_window{budget="rate_limit",kind="retries"}`:  0,
		`journeyretry_budget_window{budget="rate_limit",kind="attempts"}`: 2,
		`journeyretry_budget_paused_until_seconds{budget="rate_limit"}`:   float64(now.Add(time.Hour).Unix()),
	} {
		if got[name] != want {
			t.Errorf("%s = %g; want %g", name, got[name], want)
		}
	}
}
