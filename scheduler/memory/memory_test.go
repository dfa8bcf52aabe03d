package memory_test

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
	"github.com/journeyretry/journeyretry/scheduler/schedulertest"
)

const lease = time.Minute

func TestConformance(t *testing.T) {
	schedulertest.Run(t, func(t *testing.T) schedulertest.Backend {
		return schedulertest.Backend{Scheduler: newScheduler(t, memory.Config{Lease: lease}), Lease: lease}
	})
}

// With a lease short enough to wait for, the suite also checks that Ready
// signals a redelivery when a lease runs out.
func TestConformanceShortLease(t *testing.T) {
	const lease = 200 * time.Millisecond
	schedulertest.Run(t, func(t *testing.T) schedulertest.Backend {
		return schedulertest.Backend{Scheduler: newScheduler(t, memory.Config{Lease: lease}), Lease: lease}
	})
}

func newScheduler(t *testing.T, cfg memory.Config) *memory.Scheduler {
	t.Helper()
	s, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// signalled reports whether Ready holds a signal, once every timer that
// is due in the bubble has fired.
func signalled(s *memory.Scheduler) bool {
	synctest.Wait()
	select {
	case <-s.Ready():
		return true
	default:
		return false
	}
}

func schedule(t *testing.T, s *memory.Scheduler, id string, at time.Time) {
	t.Helper()
	if err := s.Schedule(t.Context(), id, at); err != nil {
		t.Fatal(err)
	}
}

// wantClaim claims at the bubble's now and fails unless exactly want is
// handed out, in that order.
func wantClaim(t *testing.T, s *memory.Scheduler, want ...string) {
	t.Helper()
	ds, err := s.Claim(t.Context(), time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v; want %v", got, want)
	}
}

// signalsAfter sleeps d in the bubble and fails unless Ready is signalled
// exactly then: not a nanosecond before.
func signalsAfter(t *testing.T, s *memory.Scheduler, d time.Duration, what string) {
	t.Helper()
	time.Sleep(d - time.Nanosecond)
	if signalled(s) {
		t.Fatalf("Ready signalled before %s", what)
	}
	time.Sleep(time.Nanosecond)
	if !signalled(s) {
		t.Fatalf("Ready not signalled at %s", what)
	}
}

func TestReadyWhenTimeComes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		schedule(t, s, "a", time.Now().Add(time.Minute))
		signalsAfter(t, s, time.Minute, "the entry's due time")
		wantClaim(t, s, "a")
	})
}

func TestReadyRearmsForEarlierEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		start := time.Now()
		schedule(t, s, "late", start.Add(time.Hour))
		schedule(t, s, "early", start.Add(time.Minute))
		time.Sleep(time.Minute)
		if !signalled(s) {
			t.Fatal("Ready not signalled for an entry scheduled earlier than the armed timer")
		}
		wantClaim(t, s, "early")
		time.Sleep(time.Hour - time.Minute)
		if !signalled(s) {
			t.Fatal("Ready not signalled for the later entry")
		}
	})
}

func TestReadyAtOnceForDueEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		schedule(t, s, "a", time.Now().Add(-time.Second))
		select {
		case <-s.Ready(): // signalled by Schedule itself, no timer involved
		default:
			t.Fatal("Ready not signalled by scheduling a due entry")
		}
	})
}

func TestCancelledEarliestDoesNotSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		start := time.Now()
		schedule(t, s, "a", start.Add(time.Minute))
		schedule(t, s, "b", start.Add(time.Hour))
		if err := s.Cancel(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if signalled(s) {
			t.Fatal("Ready signalled for a cancelled entry")
		}
		time.Sleep(time.Hour - time.Minute)
		if !signalled(s) {
			t.Fatal("timer not re-armed for the next entry after a cancel")
		}
	})
}

func TestRedeliveryAfterLeaseSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{Lease: 10 * time.Second})
		schedule(t, s, "a", time.Now())
		if !signalled(s) {
			t.Fatal("Ready not signalled for a due entry")
		}
		wantClaim(t, s, "a")
		wantClaim(t, s) // nothing: the delivery is under its lease
		signalsAfter(t, s, 10*time.Second, "the lease's end")
		wantClaim(t, s, "a")
	})
}

func TestClaimLeavingDueEntriesSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		now := time.Now()
		schedule(t, s, "a", now)
		schedule(t, s, "b", now)
		<-s.Ready()
		if _, err := s.Claim(t.Context(), now, 1); err != nil {
			t.Fatal(err)
		}
		if !signalled(s) {
			t.Fatal("Ready not signalled while due entries wait after a Claim")
		}
		if got := s.Len(); got != 2 {
			t.Fatalf("Len = %d; want 2 (one delivered, one waiting)", got)
		}
	})
}

func TestClaimTooEarlyRearms(t *testing.T) {
	// A consumer whose clock is a second behind the scheduler's misses the
	// entry on the first signal and is signalled again a second later.
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		start := time.Now()
		schedule(t, s, "a", start)
		<-s.Ready()
		ds, err := s.Claim(t.Context(), start.Add(-time.Second), 100)
		if err != nil || len(ds) != 0 {
			t.Fatalf("Claim a second early = %v, %v; want nothing", ds, err)
		}
		signalsAfter(t, s, time.Second, "the time the early Claim was short")
	})
}

func TestCloseStopsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		schedule(t, s, "a", time.Now().Add(time.Minute))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := <-s.Ready(); ok {
			t.Fatal("Ready open after Close")
		}
		time.Sleep(time.Hour) // the stopped timer must not fire into a closed channel
		synctest.Wait()
		if err := s.Close(); !errors.Is(err, retry.ErrClosed) {
			t.Fatalf("second Close = %v; want ErrClosed", err)
		}
	})
}

func TestConfig(t *testing.T) {
	_, err := memory.New(memory.Config{Lease: -time.Second})
	if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != "Lease" || !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("New with a negative Lease = %v; want a retry.FieldError naming Lease, wrapping ErrInvalidArgument", err)
	}
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{}) // Lease defaults to LeaseDefault
		now := time.Now()
		schedule(t, s, "a", now)
		if !signalled(s) {
			t.Fatal("Ready not signalled for a due entry")
		}
		wantClaim(t, s, "a")
		signalsAfter(t, s, memory.LeaseDefault, "the end of a LeaseDefault lease")
	})
}

func TestScheduleTimeOutOfRange(t *testing.T) {
	s := newScheduler(t, memory.Config{})
	for _, at := range []time.Time{{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if err := s.Schedule(t.Context(), "a", at); !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("Schedule at %v = %v; want ErrInvalidArgument", at, err)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after rejected schedules; want 0", s.Len())
	}
}
