package executor

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Observer is told of every [Event] synchronously, by the worker that made
// the transition, before it goes on: for metrics and logs, whose work is a
// counter or a record, and which must not miss an event. It must be quick
// and safe for concurrent use; a panic in it is logged and ignored. Work
// that may be slow or fail (a webhook, a queue) belongs in a [Hook], which
// runs off the attempt path.
type Observer interface {
	Observe(Event)
}

// ObserverFunc is a function as an Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(ev Event) { f(ev) }

// Observers returns an Observer that tells each of obs, in order: metrics
// and logs, say.
func Observers(obs ...Observer) Observer { return observers(obs) }

type observers []Observer

func (os observers) Observe(ev Event) {
	for _, o := range os {
		o.Observe(ev)
	}
}

// LogObserver writes one record per attempt outcome to its logger, with the
// run id, journey, node, node type, attempt, error class and decision: a
// success at Debug, a scheduled retry or a snooze at Info, a run that ended failed and a
// lost lease at Warn. Backend errors are logged by the executor itself
// (Config.Logger), so this observer leaves them out, as it does every event
// that is not an attempt's outcome.
type LogObserver struct {
	// Logger receives the records.
	Logger *slog.Logger
}

// Observe logs an attempt's outcome ([AttemptRecorded], [LeaseLost]).
func (o LogObserver) Observe(ev Event) {
	switch ev := ev.(type) {
	case AttemptRecorded:
		level := slog.LevelDebug
		switch {
		case ev.Err == nil:
		case decision(ev) == "retry", ev.Snoozed:
			level = slog.LevelInfo
		default:
			level = slog.LevelWarn
		}
		o.log(level, "attempt", ev.Step, ev.Duration, ev.Outcome(), ev.Err, &ev)
	case LeaseLost:
		o.log(slog.LevelWarn, "attempt lost its claim", ev.Step, ev.Duration, "lost_claim", ev.Err, nil)
	}
}

// log writes one record about step; rec, when the store recorded the
// attempt, adds the decision on its failure.
func (o LogObserver) log(level slog.Level, msg string, step Step, d time.Duration, outcome string, err error, rec *AttemptRecorded) {
	ctx := context.Background()
	if !o.Logger.Enabled(ctx, level) {
		return
	}
	// Room for every attribute, so that the appends below do not move
	// the slice to the heap: one allocation fewer per record.
	attrs := make([]slog.Attr, 0, 13)
	attrs = append(attrs, slog.String("run", step.RunID), slog.String("journey", step.JourneyID),
		slog.String("node", step.NodeID), slog.String("nodeType", step.NodeType), slog.Int("attempt", step.NodeAttempt),
		slog.String("outcome", outcome), slog.Duration("duration", d))
	if rec != nil && err != nil {
		attrs = append(attrs, slog.String("class", string(rec.Class)), slog.String("decision", decision(*rec)),
			slog.String("strategy", rec.Decision.Strategy), slog.String("rule", rec.Decision.Rule),
			slog.Duration("delay", rec.Decision.Delay))
	}
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	r := slog.NewRecord(time.Now(), level, msg, logPC())
	r.AddAttrs(attrs...)
	_ = o.Logger.Handler().Handle(ctx, r)
}

// sourcePC is the program counter of LogObserver's records, once known.
var sourcePC atomic.Uintptr

// logPC returns the program counter a record names as its source (to a
// handler with AddSource): a line of LogObserver.log's, the same for every
// record, so it is looked up once rather than by slog for each record, a
// quarter of a record's cost on the attempt path.
func logPC() uintptr {
	if pc := sourcePC.Load(); pc != 0 {
		return pc
	}
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:]) // skip runtime.Callers and logPC
	sourcePC.Store(pcs[0])
	return pcs[0]
}

// decision names what was decided about a failure: "retry", "stop",
// "exhausted", "shadow" (recorded, not acted on), or "snooze".
func decision(ev AttemptRecorded) string {
	switch {
	case ev.Snoozed:
		return "snooze"
	case ev.Shadow:
		return "shadow"
	case ev.Decision.Exhausted || ev.Status == retry.StatusFailedMaxRetries:
		return "exhausted"
	case ev.Decision.Retry && (ev.Status == retry.StatusRetrying || ev.Status == retry.StatusInProgress):
		return "retry"
	default:
		return "stop"
	}
}
