package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/journeyretry/journeyretry/retry"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// scriptHook counts the calls of each script a client sends, by SHA,
// alone or in a pipeline.
type scriptHook struct{ calls map[string]*atomic.Int64 }

func newScriptHook() *scriptHook {
	h := &scriptHook{calls: map[string]*atomic.Int64{}}
	for _, sc := range []*goredis.Script{claimScript, ackScript, releaseScript, scheduleScript} {
		h.calls[sc.Hash()] = new(atomic.Int64)
	}
	return h
}

func (h *scriptHook) count(cmd goredis.Cmder) {
	if args := cmd.Args(); len(args) > 1 && cmd.Name() == "evalsha" {
		if n, ok := h.calls[fmt.Sprint(args[1])]; ok {
			n.Add(1)
		}
	}
}

func (h *scriptHook) of(sc *goredis.Script) int64 { return h.calls[sc.Hash()].Load() }

func (h *scriptHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *scriptHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h *scriptHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}

// localScheduler opens a scheduler with cfg on a prefix of its own (a
// given one, or a new one when cfg has none), on a client that hook
// counts, both closed when t ends, and deletes its keys then.
func localScheduler(t *testing.T, cfg Config, hook *scriptHook) *Scheduler {
	t.Helper()
	rdb := benchClient(t)
	if cfg.Prefix == "" {
		cfg.Prefix = "jrtest-" + rand.Text()[:12]
	}
	if hook != nil {
		opts := *rdb.(*goredis.Client).Options()
		rdb = goredis.NewClient(&opts)
		rdb.AddHook(hook)
		t.Cleanup(func() { rdb.Close() })
	}
	s, err := New(context.Background(), rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		rdb.Del(context.Background(), s.keys...)
	})
	return s
}

func scheduleDue(t *testing.T, s *Scheduler, n int) {
	t.Helper()
	for i := range n {
		if err := s.Schedule(context.Background(), fmt.Sprintf("e%03d", i), t0); err != nil {
			t.Fatal(err)
		}
	}
}

func claimN(t *testing.T, s *Scheduler, now time.Time, limit, want int) []retry.Delivery {
	t.Helper()
	ds, err := s.Claim(context.Background(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != want {
		t.Fatalf("Claim(limit %d) = %d entries; want %d", limit, len(ds), want)
	}
	return ds
}

// TestPrefetchServesClaims: under a backlog one claim script serves the
// next Prefetch Claims of one entry; without prefetch each is a script.
func TestPrefetchServesClaims(t *testing.T) {
	for _, c := range []struct {
		prefetch int
		scripts  int64
	}{{0, 1}, {-1, PrefetchDefault + 1}} {
		t.Run(fmt.Sprint("prefetch=", c.prefetch), func(t *testing.T) {
			hook := newScriptHook()
			s := localScheduler(t, Config{Prefetch: c.prefetch}, hook)
			scheduleDue(t, s, 100)
			seen := map[string]bool{}
			for range PrefetchDefault + 1 {
				d := claimN(t, s, t0, 1, 1)[0]
				if seen[d.ID] {
					t.Fatalf("%s handed out twice", d.ID)
				}
				seen[d.ID] = true
			}
			if got := hook.of(claimScript); got != c.scripts {
				t.Fatalf("%d Claims of one entry sent %d claim scripts; want %d", PrefetchDefault+1, got, c.scripts)
			}
		})
	}
}

// TestHeldNotEarly: a held entry is handed out only to a Claim whose now
// has reached its due time, and one held past half its lease is not
// handed out at all (Redis hands it out again when the lease ends).
func TestHeldNotEarly(t *testing.T) {
	s := localScheduler(t, Config{Lease: time.Minute}, nil)
	scheduleDue(t, s, 3)
	claimN(t, s, t0, 1, 1) // holds two
	claimN(t, s, t0.Add(-time.Millisecond), 10, 0)
	claimN(t, s, t0.Add(30*time.Second), 10, 0)
	claimN(t, s, t0.Add(time.Minute), 10, 3) // every lease ended: from Redis
}

// TestHeldGoBack: entries a handle holds and does not hand out go back to
// the due set for every process: at once when it closes, within HoldMax
// while it is busy.
func TestHeldGoBack(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		a := localScheduler(t, Config{}, nil)
		b := localScheduler(t, Config{Prefix: a.prefix()}, nil)
		scheduleDue(t, a, 10)
		claimN(t, a, t0, 1, 1)
		claimN(t, b, t0, 10, 0)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		claimN(t, b, t0, 10, 9)
	})
	t.Run("busy", func(t *testing.T) {
		a := localScheduler(t, Config{}, nil)
		// b's waiter signals Ready by a clock at t0, when the entries are due.
		b := localScheduler(t, Config{Prefix: a.prefix(), Now: func() time.Time { return t0 }}, nil)
		scheduleDue(t, a, 10)
		start := time.Now() // before a holds them: HoldMax runs from then
		claimN(t, a, t0, 1, 1)
		claimN(t, b, t0, 10, 0)
		for got := 0; got < 9; {
			select {
			case <-b.Ready(): // the release publishes
			case <-time.After(10 * time.Second):
				t.Fatalf("after 10s, b claimed %d of the 9 entries a held", got)
			}
			ds, err := b.Claim(context.Background(), t0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) > 0 && time.Since(start) < HoldMax {
				t.Fatalf("held entries went back after %v, before HoldMax", time.Since(start))
			}
			got += len(ds)
		}
	})
}

// TestAckQueued: an Ack costs no script of its own when a Schedule of its
// entry follows (the Schedule ends the delivery), rides on the next
// Claim, and is sent alone within AckDelay when nothing else goes.
func TestAckQueued(t *testing.T) {
	ctx := context.Background()
	hook := newScriptHook()
	s := localScheduler(t, Config{Prefetch: -1}, hook)
	other := localScheduler(t, Config{Prefix: s.prefix(), Prefetch: -1}, nil)
	scheduleDue(t, s, 3)
	ds := claimN(t, s, t0, 3, 3)

	// Superseded: the retry's Schedule.
	if err := s.Ack(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Schedule(ctx, ds[0].ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Carried by the next Claim, before it claims: past the lease, only
	// the rescheduled entry and the unacknowledged one come back.
	if err := s.Ack(ctx, ds[1]); err != nil {
		t.Fatal(err)
	}
	again := claimN(t, s, t0.Add(LeaseDefault), 10, 2)
	if again[0].ID != ds[0].ID || again[1].ID != ds[2].ID {
		t.Fatalf("past the lease Claim = %v, %v; want %s (rescheduled) and %s (not acknowledged)", again[0].ID, again[1].ID, ds[0].ID, ds[2].ID)
	}
	if n := hook.of(ackScript); n != 0 {
		t.Fatalf("%d ack scripts sent; want none, the Acks superseded or carried", n)
	}

	// Alone: another handle sees it gone, with no call of this one.
	if err := s.Ack(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for hook.of(ackScript) != 1 {
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("a lone Ack not sent after %v; AckDelay is %v", d, AckDelay)
		}
		time.Sleep(time.Millisecond) // a poll of a counter: no event to wait on
	}
	claimN(t, other, t0.Add(3*LeaseDefault), 10, 1) // ds[2], never acknowledged
}

// TestHeldAsDueAsInRedis: a held entry is as due to the next Claim at the
// same now as it was to Redis, whatever its score (one written below its
// time's millisecond, by an older writer, say): none is left held forever.
func TestHeldAsDueAsInRedis(t *testing.T) {
	s := localScheduler(t, Config{}, nil)
	at := t0.Add(500 * time.Microsecond)
	ctx := context.Background()
	for i := range 3 {
		id := fmt.Sprint("e", i)
		if err := s.rdb.ZAdd(ctx, s.keys[keyDue], goredis.Z{Score: float64(at.UnixMilli()), Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.HSet(ctx, s.keys[keyAt], id, at.UnixNano()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	claimN(t, s, at, 1, 1)
	claimN(t, s, at, 10, 2)
}

// TestScheduleQueued: Schedules due QueueAhead or more ahead are queued
// and go together, one script for many; this handle's Claim and Close
// send them first, another handle has them within AckDelay, and a Cancel
// drops one. A Schedule due sooner goes at once.
func TestScheduleQueued(t *testing.T) {
	ctx := context.Background()
	hook := newScriptHook()
	s := localScheduler(t, Config{Prefetch: -1}, hook)
	other := localScheduler(t, Config{Prefix: s.prefix(), Prefetch: -1}, nil)
	const n = 100
	schedule := func(s *Scheduler, name string, at time.Time) {
		t.Helper()
		for i := range n {
			if err := s.Schedule(ctx, fmt.Sprintf("%s%03d", name, i), at); err != nil {
				t.Fatal(err)
			}
		}
	}

	// This handle's Claim sends them first.
	ahead := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	schedule(s, "own", ahead)
	claimN(t, s, ahead, 2*n, n)
	if got := hook.of(scheduleScript); got > n/10 {
		t.Fatalf("%d schedule scripts for %d queued Schedules; want them together", got, n)
	}

	// Another handle has them within AckDelay, with no call of this one.
	before := hook.of(scheduleScript)
	schedule(s, "other", ahead)
	start := time.Now()
	got := 0
	for got < n {
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("another handle claimed %d of %d queued Schedules after %v; AckDelay is %v", got, n, d, AckDelay)
		}
		ds, err := other.Claim(ctx, ahead, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		got += len(ds)
		time.Sleep(time.Millisecond) // a poll of Redis: no event to wait on
	}
	if sent := hook.of(scheduleScript) - before; sent > n/10 {
		t.Fatalf("%d schedule scripts for %d queued Schedules; want them together", sent, n)
	}

	// Due sooner: at once.
	soon := time.Now()
	if err := s.Schedule(ctx, "soon", soon); err != nil {
		t.Fatal(err)
	}
	if err := other.Ack(ctx, claimN(t, other, soon.Add(time.Second), 10, 1)[0]); err != nil {
		t.Fatal(err)
	}

	// Close sends what is queued; a Cancel drops its entry's Schedule,
	// and a ScheduleMany replaces it.
	closing := localScheduler(t, Config{Prefix: s.prefix(), Prefetch: -1}, nil)
	later := ahead.Add(time.Second) // within the lease of what other claimed at ahead
	for _, id := range []string{"kept", "cancelled", "moved"} {
		if err := closing.Schedule(ctx, id, later); err != nil {
			t.Fatal(err)
		}
	}
	if err := closing.ScheduleMany(ctx, []string{"moved"}, ahead); err != nil {
		t.Fatal(err)
	}
	if err := closing.Cancel(ctx, "cancelled"); err != nil { // the queue rides on it
		t.Fatal(err)
	}
	if err := closing.Close(); err != nil {
		t.Fatal(err)
	}
	if ds := claimN(t, other, ahead, 10, 1); ds[0].ID != "moved" {
		t.Fatalf("at the ScheduleMany's time Claim = %s; want moved", ds[0].ID)
	}
	if ds := claimN(t, other, later, 10, 1); ds[0].ID != "kept" {
		t.Fatalf("after Close Claim = %s; want kept", ds[0].ID)
	}
}
