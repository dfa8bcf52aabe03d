package executor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// HookQueueDefault is a hook's queue bound when Hook.Queue is 0.
const HookQueueDefault = 1024

// Hook is user code told of every [Event] off the attempt path: a webhook,
// a message to a queue, an alert. Each hook has its own goroutine and a
// bounded queue: a worker hands the event over without waiting, and when
// the queue is full (the hook is slower than the events) the event is
// dropped and counted ([Executor.HookStats]), so a slow hook never delays
// an attempt. Func's errors and panics are logged (Config.Logger) and
// counted, and change nothing the executor does. An [Observer] is the
// synchronous alternative, for counters that must see every event.
type Hook struct {
	// Name identifies the hook in logs and in HookStats; unique within a
	// Config.
	Name string
	// Func handles one event. Calls are one at a time, in the order the
	// events happened. ctx is cancelled when the executor's shutdown
	// stops waiting for the hook (see [Executor.Close]).
	Func func(ctx context.Context, ev Event) error
	// Queue bounds the events waiting for Func; default
	// [HookQueueDefault].
	Queue int
}

// HookStats counts what became of one hook's events.
type HookStats struct {
	Name string
	// Handled counts the events Func was called with; Failed those of
	// them it returned an error for or panicked on.
	Handled, Failed int64
	// Dropped counts the events its queue was full for (or that came
	// after Close): the hook never saw them.
	Dropped int64
}

// hook is a Hook running: its queue and counters.
type hook struct {
	Hook
	queue                    chan Event
	handled, failed, dropped atomic.Int64
	done                     chan struct{}
}

// hooks runs the hooks of a Config.
type hooks struct {
	logger *slog.Logger
	all    []*hook
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex // orders offer against close
	closed bool
	once   sync.Once
}

// newHooks starts a goroutine per hook.
func newHooks(hs []Hook, logger *slog.Logger) *hooks {
	ctx, cancel := context.WithCancel(context.Background())
	s := &hooks{logger: logger, ctx: ctx, cancel: cancel}
	for _, h := range hs {
		r := &hook{Hook: h, queue: make(chan Event, h.Queue), done: make(chan struct{})}
		s.all = append(s.all, r)
		go s.run(r)
	}
	return s
}

// offer queues ev for every hook without waiting: a full queue drops it.
func (s *hooks) offer(ev Event) {
	if len(s.all) == 0 {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, h := range s.all {
		if !s.closed {
			select {
			case h.queue <- ev:
				continue
			default:
			}
		}
		// Logged at the 1st, 2nd, 4th, 8th... drop: a hook that falls
		// behind is told of without a record per event.
		if n := h.dropped.Add(1); n&(n-1) == 0 {
			s.logger.Warn("hook queue full: event dropped", "hook", h.Name, "event", fmt.Sprintf("%T", ev), "dropped", n)
		}
	}
}

// run calls h.Func with each event of its queue until it is closed.
func (s *hooks) run(h *hook) {
	defer close(h.done)
	for ev := range h.queue {
		s.call(h, ev)
	}
}

// call calls h.Func with ev, logging what it returns or panics with.
func (s *hooks) call(h *hook, ev Event) {
	h.handled.Add(1)
	defer func() {
		if p := recover(); p != nil {
			h.failed.Add(1)
			s.logger.Error("hook panicked", "hook", h.Name, "event", fmt.Sprintf("%T", ev), "panic", p)
		}
	}()
	if err := h.Func(s.ctx, ev); err != nil {
		h.failed.Add(1)
		s.logger.Warn("hook failed", "hook", h.Name, "event", fmt.Sprintf("%T", ev), "err", err)
	}
}

// close stops taking events and waits up to wait for the hooks to handle
// those queued, then cancels their context. Later events are dropped.
// Only the first call waits.
func (s *hooks) close(wait time.Duration) {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, h := range s.all {
			close(h.queue)
		}
		s.mu.Unlock()
		t := time.NewTimer(wait)
		defer t.Stop()
		for _, h := range s.all {
			select {
			case <-h.done:
			case <-t.C:
				s.logger.Warn("hooks still busy at shutdown: their context is cancelled", "hook", h.Name)
				s.cancel()
				return
			}
		}
		s.cancel()
	})
}

// stats returns each hook's counters, in the order of Config.Hooks.
func (s *hooks) stats() []HookStats {
	out := make([]HookStats, len(s.all))
	for i, h := range s.all {
		out[i] = HookStats{Name: h.Name, Handled: h.handled.Load(), Failed: h.failed.Load(), Dropped: h.dropped.Load()}
	}
	return out
}
