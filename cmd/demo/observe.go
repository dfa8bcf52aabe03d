package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/metrics"
	"github.com/journeyretry/journeyretry/retry"
)

// logConfig configures the demo's structured logs (stderr).
type logConfig struct {
	// Level is debug, info, warn or error. Default warn: at info every
	// retry is a record, which would bury the demo's progress bar; pass
	// --log-level info to see one record per retry and failure (debug adds
	// one per success).
	Level string `json:"level"`
	// Format is text or json. Default text.
	Format string `json:"format"`
}

// Validate names the bad field.
func (c logConfig) Validate() error {
	var errs []error
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		errs = append(errs, retry.InvalidField("level", "%q: want debug, info, warn or error", c.Level))
	}
	if c.Format != "text" && c.Format != "json" {
		errs = append(errs, retry.InvalidField("format", "%q: want text or json", c.Format))
	}
	return combine.Errors(errs...)
}

// logger returns the configured logger writing to w.
func (c logConfig) logger(w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level)) // validated
	opts := &slog.HandlerOptions{Level: l}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// metricsConfig configures the Prometheus endpoint.
type metricsConfig struct {
	// Listen is the address /metrics is served on; empty (the default)
	// serves none. demo serve always serves /metrics on its own address.
	Listen string `json:"listen"`
}

// Validate names the bad field.
func (c metricsConfig) Validate() error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return retry.InvalidField("listen", "%q: want host:port", c.Listen)
	}
	return nil
}

var (
	logFlags = []flagBinding{
		{"log-level", "log.level", "log level: debug, info, warn or error"},
		{"log-format", "log.format", "log format: text or json"},
	}
	metricsFlags = []flagBinding{
		{"metrics-listen", "metrics.listen", "serve Prometheus /metrics on this host:port (empty: none)"},
	}
)

// observability is what a process that runs the executor reports through:
// its logger, and the metrics registry its Observer writes.
type observability struct {
	logger  *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
}

// newObservability builds the logger and the metrics of cfg.
func newObservability(cfg demoConfig, stderr io.Writer) (*observability, error) {
	o := &observability{logger: cfg.Log.logger(stderr), reg: prometheus.NewRegistry()}
	var err error
	if o.metrics, err = metrics.New(o.reg, metrics.Config{Scheduler: cfg.Scheduler.Backend}); err != nil {
		return nil, err
	}
	return o, nil
}

// watch adds the executor's claims in flight and the store's runs by
// status to the metrics.
func (o *observability) watch(ex *executor.Executor, in retry.Inspector) error {
	return combine.Errors(o.metrics.Watch(ex), o.metrics.CountRuns(in))
}

// observer is the executor's Observer: metrics and one log record per
// attempt outcome.
func (o *observability) observer() executor.Observer {
	return executor.Observers(o.metrics, executor.LogObserver{Logger: o.logger})
}

// handler serves the registry at /metrics.
func (o *observability) handler() http.Handler {
	return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// serveMetrics serves /metrics on addr (none when addr is empty) and says
// where on w; it returns once the listener is open, and stop closes the
// server.
func (o *observability) serveMetrics(ctx context.Context, addr string, w io.Writer) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(w, "serving metrics at http://%s/metrics\n", ln.Addr())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
