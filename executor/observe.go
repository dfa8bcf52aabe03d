package executor

import (
	"context"
	"log/slog"

	"github.com/journeyretry/journeyretry/retry"
)

// Observers returns an Observer that tells each of obs, in order: metrics
// and logs, say.
func Observers(obs ...Observer) Observer { return observers(obs) }

type observers []Observer

func (os observers) Attempt(ev AttemptEvent) {
	for _, o := range os {
		o.Attempt(ev)
	}
}

func (os observers) Swept(n int) {
	for _, o := range os {
		o.Swept(n)
	}
}

func (os observers) LostClaim(ev AttemptEvent) {
	for _, o := range os {
		o.LostClaim(ev)
	}
}

func (os observers) Woke(ev WakeEvent) {
	for _, o := range os {
		o.Woke(ev)
	}
}

func (os observers) BackendError(op string, err error) {
	for _, o := range os {
		o.BackendError(op, err)
	}
}

// LogObserver writes one record per attempt outcome to its logger, with the
// run id, journey, node, attempt, error class and decision: a success at
// Debug, a scheduled retry at Info, a run that ended failed and a lost
// claim at Warn. Backend errors are logged by the executor itself
// (Config.Logger), so this observer leaves them out.
type LogObserver struct {
	NopObserver
	// Logger receives the records.
	Logger *slog.Logger
}

// Attempt logs the attempt's outcome.
func (o LogObserver) Attempt(ev AttemptEvent) {
	level, outcome := slog.LevelDebug, "succeeded"
	if ev.Err != nil {
		level, outcome = slog.LevelWarn, string(ev.Status)
		if ev.Status == retry.StatusRetrying {
			level = slog.LevelInfo
		}
	}
	o.log(level, "attempt", ev, outcome)
}

// LostClaim logs an attempt the store did not record.
func (o LogObserver) LostClaim(ev AttemptEvent) {
	o.log(slog.LevelWarn, "attempt lost its claim", ev, "lost_claim")
}

func (o LogObserver) log(level slog.Level, msg string, ev AttemptEvent, outcome string) {
	ctx := context.Background()
	if !o.Logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("run", ev.RunID), slog.String("journey", ev.JourneyID),
		slog.String("node", ev.NodeID), slog.Int("attempt", ev.NodeAttempt), slog.String("outcome", outcome),
		slog.Duration("duration", ev.Duration)}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("class", string(ev.Class)), slog.String("decision", decision(ev)),
			slog.String("strategy", ev.Decision.Strategy), slog.String("rule", ev.Decision.Rule),
			slog.Duration("delay", ev.Decision.Delay), slog.String("err", ev.Err.Error()))
	}
	o.Logger.LogAttrs(ctx, level, msg, attrs...)
}

// decision names what was decided about a failure: "retry", "stop",
// "exhausted", or "shadow" (recorded, not acted on).
func decision(ev AttemptEvent) string {
	switch {
	case ev.Shadow:
		return "shadow"
	case ev.Decision.Exhausted:
		return "exhausted"
	case ev.Decision.Retry:
		return "retry"
	default:
		return "stop"
	}
}
