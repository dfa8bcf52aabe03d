package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// WaitPollDefault is how often Wait reads the store for a run that no
// executor of this process ends (another process's workers may).
const WaitPollDefault = time.Second

// WaitOption modifies Wait.
type WaitOption func(*waitOptions)

type waitOptions struct{ poll time.Duration }

// WaitPoll sets how often Wait reads the store, for runs another process
// may end; default [WaitPollDefault]. A run this executor ends wakes Wait
// at once whatever the interval.
func WaitPoll(d time.Duration) WaitOption { return func(o *waitOptions) { o.poll = d } }

// Wait returns the run once it is terminal (completed, failed,
// failed_max_retries or cancelled), as the store holds it. A run this executor ends
// wakes it at once; a run another process ends is seen within the poll
// interval ([WaitPoll]). When ctx ends first it returns the run as last
// read and ctx's error. A missing run is retry.ErrNotFound.
func (e *Executor) Wait(ctx context.Context, runID string, opts ...WaitOption) (retry.Run, error) {
	o := waitOptions{poll: WaitPollDefault}
	for _, opt := range opts {
		opt(&o)
	}
	if o.poll <= 0 {
		return retry.Run{}, fmt.Errorf("wait %s: %w: poll interval %s: want > 0", retry.QuoteID(runID), retry.ErrInvalidArgument, o.poll)
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	for {
		// Registered before the read: an end between the two wakes us.
		woken, cancel := e.waiters.add(runID)
		run, err := e.store.Get(ctx, runID)
		if err != nil || run.Status.Terminal() {
			cancel()
			if err != nil {
				return run, fmt.Errorf("wait %s: %w", retry.QuoteID(runID), err)
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			cancel()
			return run, fmt.Errorf("wait %s: %w", retry.QuoteID(runID), ctx.Err())
		case <-woken:
		case <-tick.C:
		}
		cancel()
	}
}

// waiters are the callers of Wait, by run id.
type waiters struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

// add registers a waiter of id: the channel is closed when the run ends
// in this process. cancel unregisters it.
func (w *waiters) add(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]map[chan struct{}]struct{}{}
	}
	if w.m[id] == nil {
		w.m[id] = map[chan struct{}]struct{}{}
	}
	w.m[id][ch] = struct{}{}
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.m[id][ch]; ok {
			delete(w.m[id], ch)
			if len(w.m[id]) == 0 {
				delete(w.m, id)
			}
		}
	}
}

// wake wakes every waiter of id.
func (w *waiters) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.m[id] {
		close(ch)
	}
	delete(w.m, id)
}

// valuesOf is a context with the values of one context and the
// cancellation of another.
type valuesOf struct {
	context.Context // deadline and cancellation
	values          context.Context
}

func (c valuesOf) Value(key any) any { return c.values.Value(key) }

// detach returns the context of work that outlives ctx: ctx's values, the
// cancellation of the executor's shutdown (its grace period's end).
func (e *Executor) detach(ctx context.Context) context.Context {
	return valuesOf{Context: e.hardCtx, values: context.WithoutCancel(ctx)}
}

// workCtx is the context of the work the executor starts itself
// (wake-ups and sweeps): the values of the context given to Run.
func (e *Executor) workCtx() context.Context {
	e.valuesMu.RLock()
	defer e.valuesMu.RUnlock()
	return e.detach(e.runValues)
}

// setRunValues keeps the values of Run's context.
func (e *Executor) setRunValues(ctx context.Context) {
	e.valuesMu.Lock()
	defer e.valuesMu.Unlock()
	e.runValues = context.WithoutCancel(ctx)
}
