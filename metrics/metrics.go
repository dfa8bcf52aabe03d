// Package metrics exports the executor's events and the store's run counts
// as Prometheus metrics. [Metrics] is an [executor.Observer]: it counts the
// executor's events ([executor.Event]) as they happen, so the executor
// stays free of Prometheus, and nothing here registers globally; the
// caller passes the prometheus.Registerer to use.
//
// Metrics (all prefixed journeyretry_); their labels are bounded sets (node
// types are the registered handlers, not the node ids of every journey):
//
//	attempts_total{node_type,outcome,class}  node attempts as recorded; outcome is "succeeded",
//	                                          "snoozed" or the run's status after the failure
//	                                          ("retrying" for a zero-delay retry too)
//	attempt_duration_seconds{node_type}      node execution time
//	retries_scheduled_total{strategy,class}  failures the store left to be retried
//	retry_delay_seconds{strategy}            the delay chosen for those retries
//	budget_deferred_total{class}             retries a retry budget deferred
//	wakeup_lateness_seconds{scheduler}       a delivery's fired-at minus due-at
//	runs{status}                             runs by status, counted by the store at scrape time
//	budget_window{budget,kind}               each retry budget's last window, read from the store at
//	                                          scrape time: kind "retries" (let through), "deferred",
//	                                          "attempts" (of its scope)
//	budget_paused_until_seconds{budget}      end of a budget's pause (Unix seconds), 0 when none
//	claims_in_flight                         runs executing under this process's claims
//	sweeps_total, sweeper_caught_total       sweeps and the runs they caught (0 when healthy)
//	lost_claims_total                        attempts the store did not record: lease lost
//	backend_errors_total{op}                 store or scheduler calls that failed and were logged
//	hook_events_dropped_total{hook}          events a hook's full queue dropped
//	hook_events_failed_total{hook}           events a hook returned an error for or panicked on
package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// StatusTTLDefault is how long a runs-by-status count is reused: a scrape
// storm costs the database one count query per TTL, not one per scrape.
const StatusTTLDefault = 5 * time.Second

// statusTimeout bounds the count query of one scrape.
const statusTimeout = 5 * time.Second

// Config configures [New]. The zero value of every field means its default.
type Config struct {
	// Scheduler names the scheduler backend ("memory", "redis", "sqlpoll")
	// in the wake-up lateness histogram's label; default "unknown".
	Scheduler string
	// StatusTTL is how long a runs-by-status count ([Metrics.CountRuns]) is
	// reused; default [StatusTTLDefault].
	StatusTTL time.Duration
	// Now is the clock of the count cache; default time.Now.
	Now func() time.Time
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.StatusTTL < 0 {
		return fmt.Errorf("metrics: %w", retry.InvalidField("StatusTTL", "%s: want >= 0 (0 for the default)", c.StatusTTL))
	}
	return nil
}

// Metrics records the executor's events. It is safe for concurrent use.
type Metrics struct {
	reg       prometheus.Registerer
	scheduler string
	statusTTL time.Duration
	now       func() time.Time

	attempts    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	delay       *prometheus.HistogramVec
	deferred    *prometheus.CounterVec
	lateness    prometheus.Observer
	sweeps      prometheus.Counter
	caught      prometheus.Counter
	lost        prometheus.Counter
	backendErrs *prometheus.CounterVec

	// attemptSeries and retrySeries are the children of attempts and
	// duration, and of retries and delay, by their labels.
	attemptSeries *series[attemptKey, attemptSeries]
	retrySeries   *series[retryKey, retrySeries]
}

var _ executor.Observer = (*Metrics)(nil)

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer, cfg Config) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("metrics: registerer: nil: %w", retry.ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Metrics{
		reg:       reg,
		scheduler: cmp.Or(cfg.Scheduler, "unknown"),
		statusTTL: cmp.Or(cfg.StatusTTL, StatusTTLDefault),
		now:       cfg.Now,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "journeyretry_attempts_total",
			Help: "Node attempts as recorded in the store, by node type, outcome (succeeded, snoozed, or the run's status after the failure) and error class."},
			[]string{"node_type", "outcome", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "journeyretry_attempt_duration_seconds",
			Help: "Node execution time, by node type.", Buckets: prometheus.DefBuckets}, []string{"node_type"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "journeyretry_retries_scheduled_total",
			Help: "Failures the store left to be retried, by the strategy that chose the delay and the error class."},
			[]string{"strategy", "class"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "journeyretry_budget_deferred_total",
			Help: "Retries a retry budget deferred past its window, by error class."}, []string{"class"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "journeyretry_retry_delay_seconds",
			Help:    "The delay chosen for each scheduled retry.",
			Buckets: []float64{0, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600}}, []string{"strategy"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{Name: "journeyretry_sweeps_total",
			Help: "Sweeps run (each may catch nothing)."}),
		caught: prometheus.NewCounter(prometheus.CounterOpts{Name: "journeyretry_sweeper_caught_total",
			Help: "Runs sweeps caught: wake-ups the scheduler missed, expired leases, or a backlog. Zero in a healthy system."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "journeyretry_lost_claims_total",
			Help: "Attempts the store did not record because the run's claim had expired."}),
		backendErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "journeyretry_backend_errors_total",
			Help: "Store or scheduler calls that failed and were logged (the store or the sweeper recovers the work)."},
			[]string{"op"}),
	}
	lateness := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "journeyretry_wakeup_lateness_seconds",
		Help:    "A scheduler delivery's fired-at minus due-at, by scheduler backend.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300}}, []string{"scheduler"})
	m.lateness = lateness.WithLabelValues(m.scheduler)
	m.attemptSeries = newSeries(func(k attemptKey) attemptSeries {
		return attemptSeries{m.attempts.WithLabelValues(k.nodeType, k.outcome, string(k.class)), m.duration.WithLabelValues(k.nodeType)}
	})
	m.retrySeries = newSeries(func(k retryKey) retrySeries {
		return retrySeries{m.retries.WithLabelValues(k.strategy, string(k.class)), m.delay.WithLabelValues(k.strategy)}
	})
	cs := []prometheus.Collector{m.attempts, m.duration, m.retries, m.delay, m.deferred, lateness, m.sweeps, m.caught, m.lost, m.backendErrs}
	if m.now == nil {
		m.now = time.Now
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Statser is what [Metrics.Watch] reads: an [executor.Executor].
type Statser interface {
	Stats() executor.Stats
	HookStats() []executor.HookStats
}

// Watch registers the claims-in-flight gauge and the hooks' counters of
// ex, read at scrape time. It is separate from New because the executor is
// built with the Metrics as its Observer.
func (m *Metrics) Watch(ex Statser) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "journeyretry_claims_in_flight",
		Help: "Runs executing under this process's claims."},
		func() float64 { return float64(ex.Stats().InFlight) })
	for _, c := range []prometheus.Collector{g, hookCollector{ex}} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("metrics: register: %w", err)
		}
	}
	return nil
}

var (
	hookDroppedDesc = prometheus.NewDesc("journeyretry_hook_events_dropped_total",
		"Events a hook's full queue dropped: the hook is slower than the events.", []string{"hook"}, nil)
	hookFailedDesc = prometheus.NewDesc("journeyretry_hook_events_failed_total",
		"Events a hook returned an error for or panicked on.", []string{"hook"}, nil)
)

// hookCollector reads the hooks' counters at scrape time.
type hookCollector struct{ ex Statser }

func (c hookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hookDroppedDesc
	ch <- hookFailedDesc
}

func (c hookCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.ex.HookStats() {
		ch <- prometheus.MustNewConstMetric(hookDroppedDesc, prometheus.CounterValue, float64(st.Dropped), st.Name)
		ch <- prometheus.MustNewConstMetric(hookFailedDesc, prometheus.CounterValue, float64(st.Failed), st.Name)
	}
}

// CountRuns registers the runs-by-status gauge, counted through in at
// scrape time (its CountByStatus: one indexed count query) and reused for
// the StatusTTL, and, when in is a [retry.BudgetInspector], the retry
// budgets' gauges, read with it and reused alike. It is separate from New because the store is often opened
// after the metrics are built.
func (m *Metrics) CountRuns(in retry.Inspector) error {
	if err := m.reg.Register(&statusCollector{m: m, in: in}); err != nil {
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}

// Observe counts an event: attempts, retries and budget deferrals, sweeps
// and their catches, lost leases, wake-up lateness (a delivery handed out
// early, by a clock ahead of the scheduler's, counts as 0) and backend
// errors. Each is a counter or a histogram update, on the attempt path.
func (m *Metrics) Observe(ev executor.Event) {
	switch ev := ev.(type) {
	case executor.AttemptRecorded:
		s := m.attemptSeries.get(attemptKey{ev.NodeType, ev.Outcome(), ev.Class})
		s.count.Inc()
		s.duration.Observe(ev.Duration.Seconds())
	case executor.RetryScheduled:
		s := m.retrySeries.get(retryKey{ev.Decision.Strategy, ev.Class})
		s.count.Inc()
		s.delay.Observe(ev.Decision.Delay.Seconds())
	case executor.BudgetDeferred:
		m.deferred.WithLabelValues(string(ev.Class)).Inc()
	case executor.Swept:
		m.sweeps.Inc()
		m.caught.Add(float64(ev.Caught))
	case executor.LeaseLost:
		m.lost.Inc()
	case executor.Woke:
		m.lateness.Observe(max(ev.FiredAt.Sub(ev.At), 0).Seconds())
	case executor.BackendError:
		m.backendErrs.WithLabelValues(ev.Op).Inc()
	}
}

// attemptKey labels an attempt's series: attempts_total's labels, of
// which attempt_duration_seconds has the node type.
type attemptKey struct {
	nodeType, outcome string
	class             retry.Class
}

// attemptSeries is an attempt's counter and duration histogram.
type attemptSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// retryKey labels a scheduled retry's series: retries_scheduled_total's
// labels, of which retry_delay_seconds has the strategy.
type retryKey struct {
	strategy string
	class    retry.Class
}

// retrySeries is a scheduled retry's counter and delay histogram.
type retrySeries struct {
	count prometheus.Counter
	delay prometheus.Observer
}

// series caches the children of metric vectors by their labels, built by
// new, so that an event on the attempt path costs a map lookup rather than
// hashing each label value and taking each vector's lock. Reads take no
// lock: the map is replaced, copied, for each new key, which the labels
// being bounded sets makes rare.
type series[K comparable, V any] struct {
	new func(K) V

	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // orders the copies
}

// newSeries returns an empty cache of the children build makes.
func newSeries[K comparable, V any](build func(K) V) *series[K, V] {
	s := &series[K, V]{new: build}
	s.m.Store(&map[K]V{})
	return s
}

// get returns k's children, building them the first time.
func (s *series[K, V]) get(k K) V {
	if v, ok := (*s.m.Load())[k]; ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := *s.m.Load()
	if v, ok := m[k]; ok {
		return v
	}
	next := maps.Clone(m)
	next[k] = s.new(k)
	s.m.Store(&next)
	return next[k]
}

// statusCollector counts runs by status at scrape time, reusing a count
// for ttl.
type statusCollector struct {
	m  *Metrics
	in retry.Inspector

	mu      sync.Mutex
	at      time.Time
	counts  map[retry.Status]int
	budgets []retry.BudgetStatus
}

var (
	runsDesc         = prometheus.NewDesc("journeyretry_runs", "Runs by status, counted by the store (cached a few seconds).", []string{"status"}, nil)
	budgetWindowDesc = prometheus.NewDesc("journeyretry_budget_window",
		"A retry budget's last window, from the store: retries let through, retries deferred, attempts of its scope.", []string{"budget", "kind"}, nil)
	budgetPausedDesc = prometheus.NewDesc("journeyretry_budget_paused_until_seconds",
		"When a retry budget's pause (a Retry-After) ends, Unix seconds; 0 when none.", []string{"budget"}, nil)
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- budgetWindowDesc
	ch <- budgetPausedDesc
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	counts, budgets, err := c.count()
	if err != nil {
		c.m.backendErrs.WithLabelValues("count runs").Inc()
		ch <- prometheus.NewInvalidMetric(runsDesc, fmt.Errorf("count runs: %w", err))
		return
	}
	for _, st := range retry.Statuses {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	for _, b := range budgets {
		for kind, n := range map[string]int64{"retries": b.Retries, "deferred": b.Deferred, "attempts": b.Attempts} {
			ch <- prometheus.MustNewConstMetric(budgetWindowDesc, prometheus.GaugeValue, float64(n), b.Key, kind)
		}
		paused := 0.0
		if !b.PausedUntil.IsZero() {
			paused = float64(b.PausedUntil.Unix())
		}
		ch <- prometheus.MustNewConstMetric(budgetPausedDesc, prometheus.GaugeValue, paused, b.Key)
	}
}

// count returns the cached counts and budgets, or reads them again once
// they are ttl old. Concurrent scrapes wait for one read rather than each
// sending theirs.
func (c *statusCollector) count() (map[retry.Status]int, []retry.BudgetStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.m.now()
	if c.counts != nil && now.Sub(c.at) < c.m.statusTTL && !now.Before(c.at) {
		return c.counts, c.budgets, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	counts, err := c.in.CountByStatus(ctx)
	if err != nil {
		return nil, nil, err
	}
	if counts == nil {
		return nil, nil, errors.New("store returned no counts")
	}
	var budgets []retry.BudgetStatus
	if bi, ok := c.in.(retry.BudgetInspector); ok {
		if budgets, err = bi.Budgets(ctx, now); err != nil {
			return nil, nil, fmt.Errorf("budgets: %w", err)
		}
	}
	c.counts, c.budgets, c.at = counts, budgets, now
	return counts, budgets, nil
}
