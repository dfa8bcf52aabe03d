package memory_test

import (
	"errors"
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

// claimIDs claims at the bubble's now.
func claimIDs(t *testing.T, s *memory.Scheduler) []string {
	t.Helper()
	ds, err := s.Claim(t.Context(), time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestReadyWhenTimeComes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{})
		schedule(t, s, "a", time.Now().Add(time.Minute))
		time.Sleep(time.Minute - time.Nanosecond)
		if signalled(s) {
			t.Fatal("Ready signalled before the entry was due")
		}
		time.Sleep(time.Nanosecond)
		if !signalled(s) {
			t.Fatal("Ready not signalled when the entry came due")
		}
		if got := claimIDs(t, s); len(got) != 1 {
			t.Fatalf("claimed %v; want [a]", got)
		}
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
		if got := claimIDs(t, s); len(got) != 1 || got[0] != "early" {
			t.Fatalf("claimed %v; want [early]", got)
		}
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
		if !signalled(s) || len(claimIDs(t, s)) != 1 {
			t.Fatal("due entry not handed out")
		}
		time.Sleep(10*time.Second - time.Nanosecond)
		if signalled(s) || len(claimIDs(t, s)) != 0 {
			t.Fatal("handed out again before the lease ran out")
		}
		time.Sleep(time.Nanosecond)
		if !signalled(s) {
			t.Fatal("Ready not signalled when the lease ran out")
		}
		if got := claimIDs(t, s); len(got) != 1 {
			t.Fatalf("claimed %v after the lease; want [a] again", got)
		}
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
	if _, err := memory.New(memory.Config{Lease: -time.Second}); !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("New with a negative Lease = %v; want ErrInvalidArgument", err)
	}
	synctest.Test(t, func(t *testing.T) {
		s := newScheduler(t, memory.Config{}) // Lease defaults to LeaseDefault
		now := time.Now()
		schedule(t, s, "a", now)
		if !signalled(s) || len(claimIDs(t, s)) != 1 {
			t.Fatal("due entry not handed out")
		}
		time.Sleep(memory.LeaseDefault - time.Nanosecond)
		if signalled(s) {
			t.Fatal("redelivery signalled before LeaseDefault")
		}
		time.Sleep(time.Nanosecond)
		if !signalled(s) {
			t.Fatal("redelivery not signalled at LeaseDefault")
		}
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
