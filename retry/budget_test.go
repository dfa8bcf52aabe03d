package retry

import (
	"math/rand/v2"
	"testing"
	"time"
)

// one is a scope with one attempt in the window.
func one() int64 { return 1 }

// TestBudgetWindowHolds admits a storm of retries asked at random times
// with random delays, and checks that every window of BudgetBuckets
// buckets holds at most the limit of retries by the times they were given,
// that no retry is given less than it asked, and that the deferred ones
// carry the budget's rule.
func TestBudgetWindowHolds(t *testing.T) {
	const limit = 5
	b := Budget{Ratio: 0.001, MinRetries: limit, Window: time.Minute}
	u := BudgetUse{Key: "service_unavailable", Scope: "*", Budget: b}
	var s BudgetState
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.UnixMilli(1_000_000_000_000)
	due := map[int64]int{} // bucket -> retries given
	deferred := 0
	for i := range 400 {
		now := t0.Add(time.Duration(i) * 500 * time.Millisecond) // 2 a second for 200 s
		asked := time.Duration(rng.IntN(5000)) * time.Millisecond
		d := s.Apply(u, now, true, Decision{Retry: true, Delay: asked, Rule: "default"}, one)
		if d.Delay < asked {
			t.Fatalf("retry %d given %v; asked %v", i, d.Delay, asked)
		}
		if (d.Delay > asked) != (d.Rule == BudgetRule(u.Key)) {
			t.Fatalf("retry %d given %v (asked %v) with rule %q", i, d.Delay, asked, d.Rule)
		}
		if d.Rule != "default" {
			deferred++
		}
		due[now.Add(d.Delay).UnixMilli()/b.bucketMS()]++
	}
	if deferred == 0 {
		t.Fatal("a storm of 400 retries in 200 s with 5 a minute deferred none")
	}
	for first := range due {
		n := 0
		for k := first; k < first+BudgetBuckets; k++ {
			n += due[k]
		}
		if n > limit {
			t.Fatalf("buckets %d-%d hold %d retries; want at most %d", first, first+BudgetBuckets-1, n, limit)
		}
	}
}

// TestBudgetEdges: a clock behind the state's, a window changed between
// processes and a storm past the horizon neither panic nor give a retry
// less than it asked; past the horizon retries are spaced at the limit's
// pace.
func TestBudgetEdges(t *testing.T) {
	u := BudgetUse{Key: "k", Scope: "*", Budget: Budget{MinRetries: 1, Ratio: 0.001, Window: 6 * time.Second}}
	var s BudgetState
	t0 := time.UnixMilli(1_000_000_000_000)
	var last time.Time
	for i := range 100 { // 1 per 6 s: 36 buckets of horizon hold 6, then overflow
		d := s.Apply(u, t0, true, Decision{Retry: true}, one)
		at := t0.Add(d.Delay)
		if i > 0 && !at.After(last) {
			t.Fatalf("retry %d at %v, not after %v", i, at, last)
		}
		last = at
	}
	if got := last.Sub(t0); got < 90*6*time.Second {
		t.Fatalf("the 100th retry of 1 per 6 s is due after %v; want about 600 s", got)
	}
	var fresh BudgetState // a worker's clock behind another's by less than a window books as asked
	fresh.Apply(u, t0.Add(time.Second), true, Decision{Retry: true}, one)
	if d := fresh.Apply(BudgetUse{Key: "k", Scope: "*", Budget: Budget{MinRetries: 2, Ratio: 0.001, Window: 6 * time.Second}}, t0, true, Decision{Retry: true}, one); d.Delay != 0 {
		t.Fatalf("a retry from a clock 1 s behind, with room: given %v; want 0", d.Delay)
	}
	d := s.Apply(u, t0.Add(-time.Hour), true, Decision{Retry: true, Delay: time.Second}, one) // clock behind
	if d.Delay < time.Second {
		t.Fatalf("a retry from a clock behind given %v", d.Delay)
	}
	u.Budget.Window = time.Minute
	if d := s.Apply(u, t0, true, Decision{Retry: true, Delay: time.Second}, one); d.Delay != time.Second {
		t.Fatalf("the first retry under a new window given %v; want 1s", d.Delay)
	}
	far := u
	far.PauseUntil = t0.Add(24 * time.Hour) // beyond the bookings: not booked, still held
	if d := s.Apply(far, t0, true, Decision{Retry: true, Delay: time.Second}, one); d.Delay != 24*time.Hour || d.Rule != BudgetPausedRule("k") {
		t.Fatalf("a retry during a day's pause given %v, rule %q; want the pause's end", d.Delay, d.Rule)
	}
	if st := s.Status("k", t0, 1); st.DeferredTotal == 0 || st.Window != time.Minute {
		t.Fatalf("status %+v", st)
	}
}
