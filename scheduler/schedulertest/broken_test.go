package schedulertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/conformance"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// Each check the suite gained is shown failing on the memory scheduler
// broken in exactly the way the check exists to catch: a check no broken
// backend fails would be a check that cannot fail.
func TestChecksCatchBrokenSchedulers(t *testing.T) {
	for _, tc := range []struct {
		check string
		// broken wraps a fresh memory scheduler with lease lease.
		broken func(s *memory.Scheduler) retry.Scheduler
		lease  time.Duration
	}{
		{"ReadyKeepsComing", func(s *memory.Scheduler) retry.Scheduler { return newReadyOnce(s) }, time.Minute},
		{"ReadyWhenEarlierScheduled", func(s *memory.Scheduler) retry.Scheduler { return newArmedOnce(s) }, time.Minute},
		{"ReadyUnderConcurrency", func(s *memory.Scheduler) retry.Scheduler { return newArmedOnce(s) }, time.Minute},
		{"ReadyWhenLeaseRunsOut", func(s *memory.Scheduler) retry.Scheduler { return newNoLeaseSignal(s) }, 100 * time.Millisecond},
		{"RestoreOnlyWhenAbsent", func(s *memory.Scheduler) retry.Scheduler { return restoreMoves{s} }, time.Minute},
		{"LostClosedByClose", func(s *memory.Scheduler) retry.Scheduler { return lostNeverClosed{s, make(chan struct{})} }, time.Minute},
		{"ScheduleMany", func(s *memory.Scheduler) retry.Scheduler { return schedulesFirst{s} }, time.Minute},
		{"Thousands", func(s *memory.Scheduler) retry.Scheduler { return &neverDry{Scheduler: s} }, time.Minute},
		{"ScheduleManyInvalid", func(s *memory.Scheduler) retry.Scheduler { return schedulesFirst{s} }, time.Minute},
	} {
		t.Run(tc.check, func(t *testing.T) {
			t.Parallel()
			c := conformance.Find(t, allChecks(), tc.check)
			inner, err := memory.New(memory.Config{Lease: tc.lease})
			if err != nil {
				t.Fatal(err)
			}
			b := Backend{Scheduler: tc.broken(inner), Lease: tc.lease}
			msg := conformance.ExpectFailure(t, func(tb testing.TB) {
				h := harnessOn(tb, t, b)
				h.wait = time.Second // the check times out by design: not Watchdog
				c.Run(h)
			})
			t.Logf("%s on a broken scheduler: %s", tc.check, msg)
		})
	}
}

// schedulesFirst is a BatchScheduler that schedules its ids one at a time,
// stopping at the first it cannot, and forgets every id after the first
// two.
type schedulesFirst struct{ *memory.Scheduler }

func (s schedulesFirst) ScheduleMany(ctx context.Context, ids []string, at time.Time) error {
	for _, id := range ids[:min(len(ids), 2)] {
		if err := s.Schedule(ctx, id, at); err != nil {
			return err
		}
	}
	return nil
}

// neverDry hands out its due entries, then the last of them again on
// every Claim: a Claim loop on it never runs dry.
type neverDry struct {
	*memory.Scheduler
	mu   sync.Mutex
	last []retry.Delivery
}

func (s *neverDry) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	ds, err := s.Scheduler.Claim(ctx, now, limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ds) > 0 {
		s.last = ds[len(ds)-1:]
		return ds, err
	}
	return s.last, err
}

// relay is a scheduler whose Ready is its own channel, fed by forward
// from the inner scheduler's signals: what each broken scheduler decides
// to pass on.
type relay struct {
	*memory.Scheduler
	ready chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

func newRelay(s *memory.Scheduler, pass func() bool) *relay {
	r := &relay{Scheduler: s, ready: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer close(r.ready)
		for {
			select {
			case <-r.stop:
				return
			case _, ok := <-s.Ready():
				if !ok {
					return
				}
				if pass() {
					r.signal()
				}
			}
		}
	}()
	return r
}

func (r *relay) signal() {
	select {
	case r.ready <- struct{}{}:
	default:
	}
}

func (r *relay) Ready() <-chan struct{} { return r.ready }

func (r *relay) Close() error {
	err := r.Scheduler.Close()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
	return err
}

// newReadyOnce passes on the first signal and none after it: a backend
// whose wake-up works once (a marker consumed and never re-added).
func newReadyOnce(s *memory.Scheduler) retry.Scheduler {
	var once sync.Once
	return newRelay(s, func() (first bool) {
		once.Do(func() { first = true })
		return first
	})
}

// armedOnce signals at the time of the first entry scheduled, and never
// again: a backend that arms one timer and does not move it for an earlier
// entry.
type armedOnce struct {
	*relay
	once sync.Once
}

func newArmedOnce(s *memory.Scheduler) retry.Scheduler {
	return &armedOnce{relay: newRelay(s, func() bool { return false })}
}

func (a *armedOnce) Schedule(ctx context.Context, id string, at time.Time) error {
	a.once.Do(func() { time.AfterFunc(time.Until(at), a.signal) })
	return a.relay.Schedule(ctx, id, at)
}

// noLeaseSignal passes on a signal only while an entry is waiting that
// was never delivered: a backend that wakes consumers for due times but
// not for deliveries whose lease ran out.
type noLeaseSignal struct {
	*relay
	mu      sync.Mutex
	pending map[string]bool
}

func newNoLeaseSignal(s *memory.Scheduler) retry.Scheduler {
	n := &noLeaseSignal{pending: map[string]bool{}}
	n.relay = newRelay(s, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.pending) > 0
	})
	return n
}

func (n *noLeaseSignal) Schedule(ctx context.Context, id string, at time.Time) error {
	n.mu.Lock()
	n.pending[id] = true
	n.mu.Unlock()
	return n.relay.Schedule(ctx, id, at)
}

func (n *noLeaseSignal) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	ds, err := n.relay.Claim(ctx, now, limit)
	n.mu.Lock()
	for _, d := range ds {
		delete(n.pending, d.ID)
	}
	n.mu.Unlock()
	return ds, err
}

// restoreMoves restores by scheduling: it moves a pending entry and makes
// an outstanding delivery stale.
type restoreMoves struct{ *memory.Scheduler }

func (restoreMoves) Shared() bool { return true }

func (r restoreMoves) Restore(ctx context.Context, id string, at time.Time) error {
	return r.Schedule(ctx, id, at)
}

// lostNeverClosed reports losses on a channel Close leaves open.
type lostNeverClosed struct {
	*memory.Scheduler
	lost chan struct{}
}

func (l lostNeverClosed) Lost() <-chan struct{} { return l.lost }
