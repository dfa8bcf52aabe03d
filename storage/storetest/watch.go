package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
)

// watched is a store under test with every call bounded by [Watchdog]: a
// call that hangs (a lock never released, a context ignored) fails the
// check, naming the call, and returns an error instead of hanging the test
// binary. The checks reach the store only through it.
type watched struct {
	t  testing.TB
	s  retry.Store
	in retry.Inspector // nil when the store has no Inspector
}

var (
	_ retry.Store     = (*watched)(nil)
	_ retry.Inspector = (*watched)(nil)
)

func watch(t testing.TB, s retry.Store) *watched {
	in, _ := s.(retry.Inspector)
	return &watched{t: t, s: s, in: in}
}

// call runs f under the watchdog.
func call[T any](w *watched, what string, f func() (T, error)) (T, error) {
	return conformance.Call(w.t, what, Watchdog, f)
}

// exec runs f, which returns only an error, under the watchdog.
func exec(w *watched, what string, f func() error) error {
	_, err := call(w, what, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

func (w *watched) Create(ctx context.Context, nr retry.NewRun, now time.Time) (retry.Run, error) {
	return call(w, "Create", func() (retry.Run, error) { return w.s.Create(ctx, nr, now) })
}

func (w *watched) Get(ctx context.Context, id string) (retry.Run, error) {
	return call(w, "Get", func() (retry.Run, error) { return w.s.Get(ctx, id) })
}

func (w *watched) Attempts(ctx context.Context, id string) ([]retry.Attempt, error) {
	return call(w, "Attempts", func() ([]retry.Attempt, error) { return w.s.Attempts(ctx, id) })
}

func (w *watched) ClaimRun(ctx context.Context, id, worker string, now time.Time, lease time.Duration) (retry.Run, error) {
	return call(w, "ClaimRun", func() (retry.Run, error) { return w.s.ClaimRun(ctx, id, worker, now, lease) })
}

func (w *watched) ClaimDue(ctx context.Context, worker string, dueBy, now time.Time, lease time.Duration, limit int) ([]retry.Run, error) {
	return call(w, "ClaimDue", func() ([]retry.Run, error) { return w.s.ClaimDue(ctx, worker, dueBy, now, lease, limit) })
}

func (w *watched) ExtendLease(ctx context.Context, c retry.Claim, now time.Time, lease time.Duration) (retry.Claim, error) {
	return call(w, "ExtendLease", func() (retry.Claim, error) { return w.s.ExtendLease(ctx, c, now, lease) })
}

func (w *watched) Release(ctx context.Context, c retry.Claim, now time.Time) error {
	return exec(w, "Release", func() error { return w.s.Release(ctx, c, now) })
}

func (w *watched) CompleteNode(ctx context.Context, c retry.Claim, s retry.NodeSuccess) (retry.Run, error) {
	return call(w, "CompleteNode", func() (retry.Run, error) { return w.s.CompleteNode(ctx, c, s) })
}

func (w *watched) RecordFailure(ctx context.Context, c retry.Claim, f retry.FailureRecord) (retry.Run, error) {
	return call(w, "RecordFailure", func() (retry.Run, error) { return w.s.RecordFailure(ctx, c, f) })
}

func (w *watched) Snooze(ctx context.Context, c retry.Claim, s retry.SnoozeRecord) (retry.Run, error) {
	return call(w, "Snooze", func() (retry.Run, error) { return w.s.Snooze(ctx, c, s) })
}

func (w *watched) ListWakeups(ctx context.Context, afterID string, limit int) ([]retry.Wakeup, error) {
	return call(w, "ListWakeups", func() ([]retry.Wakeup, error) { return w.s.ListWakeups(ctx, afterID, limit) })
}

func (w *watched) Close() error { return exec(w, "Close", w.s.Close) }

// inspector returns w.in, or an error for a store without one: the suite
// asks for it only after checking that the store has one.
func (w *watched) inspector(op string) (retry.Inspector, error) {
	if w.in == nil {
		return nil, fmt.Errorf("%s: the store does not implement retry.Inspector", op)
	}
	return w.in, nil
}

func (w *watched) CountByStatus(ctx context.Context) (map[retry.Status]int, error) {
	return call(w, "CountByStatus", func() (map[retry.Status]int, error) {
		in, err := w.inspector("CountByStatus")
		if err != nil {
			return nil, err
		}
		return in.CountByStatus(ctx)
	})
}

func (w *watched) RetryHistogram(ctx context.Context) (map[int]int, error) {
	return call(w, "RetryHistogram", func() (map[int]int, error) {
		in, err := w.inspector("RetryHistogram")
		if err != nil {
			return nil, err
		}
		return in.RetryHistogram(ctx)
	})
}

func (w *watched) TopErrors(ctx context.Context, since, until time.Time, limit int) ([]retry.ErrorCount, error) {
	return call(w, "TopErrors", func() ([]retry.ErrorCount, error) {
		in, err := w.inspector("TopErrors")
		if err != nil {
			return nil, err
		}
		return in.TopErrors(ctx, since, until, limit)
	})
}

func (w *watched) RetryStats(ctx context.Context) (retry.RetryStats, error) {
	return call(w, "RetryStats", func() (retry.RetryStats, error) {
		in, err := w.inspector("RetryStats")
		if err != nil {
			return retry.RetryStats{}, err
		}
		return in.RetryStats(ctx)
	})
}

func (w *watched) ListRuns(ctx context.Context, f retry.RunFilter) ([]retry.Run, error) {
	return call(w, "ListRuns", func() ([]retry.Run, error) {
		in, err := w.inspector("ListRuns")
		if err != nil {
			return nil, err
		}
		return in.ListRuns(ctx, f)
	})
}

func (w *watched) Replay(ctx context.Context, id string, now time.Time) (retry.Run, error) {
	return call(w, "Replay", func() (retry.Run, error) {
		in, err := w.inspector("Replay")
		if err != nil {
			return retry.Run{}, err
		}
		return in.Replay(ctx, id, now)
	})
}

// Activity calls the store's optional ActivityInspector under the
// watchdog.
func (w *watched) Activity(ctx context.Context, q retry.ActivityQuery) (retry.Activity, error) {
	return call(w, "Activity", func() (retry.Activity, error) {
		a, ok := w.s.(retry.ActivityInspector)
		if !ok {
			return retry.Activity{}, fmt.Errorf("store does not implement retry.ActivityInspector")
		}
		return a.Activity(ctx, q)
	})
}

// operator returns the store's Operator, or an error for a store without
// one: the suite asks for it only after checking that the store has one.
func (w *watched) operator(op string) (retry.Operator, error) {
	o, ok := w.s.(retry.Operator)
	if !ok {
		return nil, fmt.Errorf("%s: the store does not implement retry.Operator", op)
	}
	return o, nil
}

func (w *watched) Cancel(ctx context.Context, id, by string, now time.Time) (retry.Run, error) {
	return call(w, "Cancel", func() (retry.Run, error) {
		o, err := w.operator("Cancel")
		if err != nil {
			return retry.Run{}, err
		}
		return o.Cancel(ctx, id, by, now)
	})
}

func (w *watched) ReplayWith(ctx context.Context, id string, opts retry.ReplayOptions, now time.Time) (retry.Run, error) {
	return call(w, "ReplayWith", func() (retry.Run, error) {
		o, err := w.operator("ReplayWith")
		if err != nil {
			return retry.Run{}, err
		}
		return o.ReplayWith(ctx, id, opts, now)
	})
}
