// Package metrics exports the executor's events and the store's run counts
// as Prometheus metrics. [Metrics] is an [executor.Observer]: the executor
// stays free of Prometheus, and nothing here registers globally; the caller
// passes the prometheus.Registerer to use.
//
// Metrics (all prefixed journeyretry_):
//
//	attempts_total{journey,node,outcome,class}  node attempts as recorded; outcome is
//	                                             "succeeded" or the run's status after the failure
//	attempt_duration_seconds{journey,node}      node execution time
//	retries_scheduled_total{strategy,class}     failures the store left retrying
//	retry_delay_seconds{strategy}               the delay chosen for those retries
//	wakeup_lateness_seconds{scheduler}          a delivery's fired-at minus due-at
//	runs{status}                                runs by status, counted by the store at scrape time
//	claims_in_flight                            runs executing under this process's claims
//	sweeps_total, sweeper_caught_total          sweeps and the runs they caught (0 when healthy)
//	lost_claims_total                           attempts the store did not record: lease lost
//	backend_errors_total{op}                    store or scheduler calls that failed and were logged
package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
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
	lateness    prometheus.Observer
	sweeps      prometheus.Counter
	caught      prometheus.Counter
	lost        prometheus.Counter
	backendErrs *prometheus.CounterVec
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
			Help: "Node attempts as recorded in the store, by outcome (succeeded, or the run's status after the failure) and error class."},
			[]string{"journey", "node", "outcome", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "journeyretry_attempt_duration_seconds",
			Help: "Node execution time.", Buckets: prometheus.DefBuckets}, []string{"journey", "node"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "journeyretry_retries_scheduled_total",
			Help: "Failures the store left retrying, by the strategy that chose the delay and the error class."},
			[]string{"strategy", "class"}),
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
	cs := []prometheus.Collector{m.attempts, m.duration, m.retries, m.delay, lateness, m.sweeps, m.caught, m.lost, m.backendErrs}
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
}

// Watch registers the claims-in-flight gauge of ex, read at scrape time.
// It is separate from New because the executor is built with the Metrics
// as its Observer.
func (m *Metrics) Watch(ex Statser) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "journeyretry_claims_in_flight",
		Help: "Runs executing under this process's claims."},
		func() float64 { return float64(ex.Stats().InFlight) })
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}

// CountRuns registers the runs-by-status gauge, counted through in at
// scrape time (its CountByStatus: one indexed count query) and reused for
// the StatusTTL. It is separate from New because the store is often opened
// after the metrics are built.
func (m *Metrics) CountRuns(in retry.Inspector) error {
	if err := m.reg.Register(&statusCollector{m: m, in: in}); err != nil {
		return fmt.Errorf("metrics: register: %w", err)
	}
	return nil
}

// Attempt counts a recorded attempt, and the retry it scheduled.
func (m *Metrics) Attempt(ev executor.AttemptEvent) {
	outcome := "succeeded"
	if ev.Err != nil {
		outcome = string(ev.Status)
	}
	m.attempts.WithLabelValues(ev.JourneyID, ev.NodeID, outcome, string(ev.Class)).Inc()
	m.duration.WithLabelValues(ev.JourneyID, ev.NodeID).Observe(ev.Duration.Seconds())
	if ev.Err != nil && ev.Status == retry.StatusRetrying {
		m.retries.WithLabelValues(ev.Decision.Strategy, string(ev.Class)).Inc()
		m.delay.WithLabelValues(ev.Decision.Strategy).Observe(ev.Decision.Delay.Seconds())
	}
}

// Swept counts a sweep and its catches.
func (m *Metrics) Swept(caught int) {
	m.sweeps.Inc()
	m.caught.Add(float64(caught))
}

// LostClaim counts an attempt the store did not record.
func (m *Metrics) LostClaim(executor.AttemptEvent) { m.lost.Inc() }

// Woke observes a delivery's lateness; a delivery handed out early (a
// clock ahead of the scheduler's) counts as 0.
func (m *Metrics) Woke(ev executor.WakeEvent) {
	m.lateness.Observe(max(ev.FiredAt.Sub(ev.At), 0).Seconds())
}

// BackendError counts a failed backend call.
func (m *Metrics) BackendError(op string, _ error) { m.backendErrs.WithLabelValues(op).Inc() }

// statusCollector counts runs by status at scrape time, reusing a count
// for ttl.
type statusCollector struct {
	m  *Metrics
	in retry.Inspector

	mu     sync.Mutex
	at     time.Time
	counts map[retry.Status]int
}

var runsDesc = prometheus.NewDesc("journeyretry_runs", "Runs by status, counted by the store (cached a few seconds).", []string{"status"}, nil)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- runsDesc }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.count()
	if err != nil {
		c.m.BackendError("count runs", err)
		ch <- prometheus.NewInvalidMetric(runsDesc, fmt.Errorf("count runs: %w", err))
		return
	}
	for _, st := range retry.Statuses {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}

// count returns the cached counts, or counts again once they are ttl old.
// Concurrent scrapes wait for one query rather than each sending theirs.
func (c *statusCollector) count() (map[retry.Status]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.m.now()
	if c.counts != nil && now.Sub(c.at) < c.m.statusTTL && !now.Before(c.at) {
		return c.counts, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	counts, err := c.in.CountByStatus(ctx)
	if err != nil {
		return nil, err
	}
	if counts == nil {
		return nil, errors.New("store returned no counts")
	}
	c.counts, c.at = counts, now
	return counts, nil
}
