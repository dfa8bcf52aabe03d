package policy

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// seeded returns a deterministic source: every test run draws the same
// delays.
func seeded() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func rand64(seed uint64) Rand { return NewRand(seed) }

func TestBackoffScheduleMatchesFormula(t *testing.T) {
	d := Default()
	// The proposal's schedule: 1 s, 2 s, 4 s, ... capped at 5 minutes.
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300}
	for n, w := range want {
		if got := d.Backoff(n); got != w*time.Second {
			t.Errorf("Default().Backoff(%d) = %v, want %v", n, got, w*time.Second)
		}
	}
	e := Exponential{BaseDelay: 250 * time.Millisecond, MaxDelay: time.Hour, Multiplier: 1.5}
	for n := range 20 {
		want := min(time.Duration(float64(250*time.Millisecond)*math.Pow(1.5, float64(n))), time.Hour)
		if got := e.Backoff(n); got != want {
			t.Errorf("Backoff(%d) with x1.5 = %v, want %v", n, got, want)
		}
	}
	if got := d.Backoff(-5); got != time.Second {
		t.Errorf("Backoff(-5) = %v, want the first delay 1s", got)
	}
}

func TestJitterFreeDecisionIsTheSchedule(t *testing.T) {
	e := Default()
	e.Jitter = JitterNone
	e.MaxRetries = 5
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
		d := e.Decide(retry.Failure{RetryCount: n})
		if !d.Retry || d.Delay != want || d.Strategy != StrategyExponential || d.Rule != RuleBackoff {
			t.Errorf("retry %d: got %+v, want a retry after %v by exponential/backoff", n+1, d, want)
		}
	}
}

// jitterCases are exponential policies with every jitter kind, and the
// ready strategies.
func jitterCases() map[string]Exponential {
	cases := map[string]Exponential{
		"default":   Default(),
		"immediate": Immediate(),
		"short":     Short(),
		"long":      Long(),
	}
	for _, j := range Jitters {
		e := Default()
		e.Jitter = j
		e.MaxDelay = 40 * time.Second // reached after a few retries
		cases["exponential/"+string(j)] = e
	}
	return cases
}

// TestDelaysStayWithinBounds draws many delays with a fixed seed for every
// strategy and jitter kind: each stays within Bounds(n), within the max
// delay (plus the jitter for additive), and the jitter actually varies.
func TestDelaysStayWithinBounds(t *testing.T) {
	const samples = 2000
	for name, e := range jitterCases() {
		t.Run(name, func(t *testing.T) {
			e.Rand = seeded()
			e.MaxRetries = math.MaxInt
			ceiling := e.MaxDelay
			if e.Jitter == JitterAdditive {
				ceiling += e.JitterMax
			}
			for n := range 15 {
				lo, hi, ok := e.Bounds(n)
				if !ok || lo < 0 || hi < lo || hi > ceiling {
					t.Fatalf("Bounds(%d) = %v, %v, %v: want 0 <= lo <= hi <= %v", n, lo, hi, ok, ceiling)
				}
				seen := map[time.Duration]bool{}
				var prev time.Duration
				for range samples {
					d := e.Decide(retry.Failure{RetryCount: n, PrevDelay: prev})
					if !d.Retry || d.Delay < lo || d.Delay > hi {
						t.Fatalf("retry %d: delay %v outside [%v, %v] (%+v)", n+1, d.Delay, lo, hi, d)
					}
					seen[d.Delay] = true
					if e.Jitter == JitterDecorrelated && n > 0 {
						// Chain: each delay grows from the one before,
						// which the bound for retry n allows.
						plo, phi, _ := e.Bounds(n - 1)
						prev = plo + time.Duration(e.Rand.Int64N(int64(phi-plo)+1))
					}
				}
				if e.Jitter != JitterNone && hi > lo && len(seen) < samples/2 {
					t.Errorf("retry %d: only %d distinct delays in %d samples: jitter not applied", n+1, len(seen), samples)
				}
			}
		})
	}
}

func TestStrategyRanges(t *testing.T) {
	// The proposal's ranges: immediate 0-1 s, short 1-10 s, long minutes.
	for _, tc := range []struct {
		s      Exponential
		lo, hi time.Duration
	}{
		{Immediate(), 0, time.Second},
		{Short(), time.Second, 10 * time.Second},
		{Long(), time.Minute, 10 * time.Minute},
	} {
		for n := range 64 {
			lo, hi, _ := tc.s.Bounds(n)
			if lo < tc.lo || hi > tc.hi {
				t.Errorf("%s: Bounds(%d) = [%v, %v], outside the strategy's [%v, %v]", tc.s.Name(), n, lo, hi, tc.lo, tc.hi)
			}
		}
	}
}

func TestAdditiveJitterIsTheProposals(t *testing.T) {
	// calculateBackoffDelay: min(base x 2^n, max) + random [0, 1000) ms.
	e := Default()
	e.Rand = seeded()
	e.MaxRetries = 100
	for _, n := range []int{0, 3, 9, 50} {
		for range 500 {
			d := e.Decide(retry.Failure{RetryCount: n}).Delay
			v := e.Backoff(n)
			if d < v || d >= v+time.Second {
				t.Fatalf("retry %d: %v, want in [%v, %v)", n+1, d, v, v+time.Second)
			}
		}
	}
}

func TestMaxDelayCaps(t *testing.T) {
	for name, e := range jitterCases() {
		e.Rand = seeded()
		e.MaxRetries = math.MaxInt
		ceiling := e.MaxDelay
		if e.Jitter == JitterAdditive {
			ceiling += e.JitterMax
		}
		for _, n := range []int{30, 1000, math.MaxInt32, math.MaxInt - 1} {
			if d := e.Decide(retry.Failure{RetryCount: n, PrevDelay: time.Duration(math.MaxInt64)}); !d.Retry || d.Delay < 0 || d.Delay > ceiling {
				t.Errorf("%s retry count %d: %+v, want a delay in [0, %v]", name, n, d, ceiling)
			}
		}
	}
}

func TestMaxRetriesStops(t *testing.T) {
	e := Default()
	for n := range 3 {
		if d := e.Decide(retry.Failure{RetryCount: n}); !d.Retry {
			t.Fatalf("retry %d of 3 refused: %+v", n+1, d)
		}
	}
	for _, n := range []int{3, 4, math.MaxInt} {
		d := e.Decide(retry.Failure{RetryCount: n})
		want := retry.Decision{Strategy: StrategyExponential, Rule: RuleMaxRetries, Exhausted: true}
		if d != want {
			t.Errorf("retry count %d: %+v, want %+v", n, d, want)
		}
	}
	e.MaxRetries = 0
	if d := e.Decide(retry.Failure{}); d.Retry || !d.Exhausted {
		t.Errorf("MaxRetries 0: %+v, want exhausted at once", d)
	}
}

func TestPermanentIsNeverRetried(t *testing.T) {
	want := retry.Decision{Strategy: StrategyNone, Rule: RulePermanent}
	f := retry.NewFailure(retry.Permanent(retry.RetryAfter(errTest, time.Second)), 0, 0)
	for _, s := range []Strategy{Default(), Immediate(), Short(), Long(), None()} {
		if d := s.Decide(f); d != want {
			t.Errorf("%s: %+v, want %+v", s.Name(), d, want)
		}
	}
}

func TestRetryAfterWinsAndIsCapped(t *testing.T) {
	for _, tc := range []struct {
		asked, want time.Duration
	}{
		{7 * time.Second, 7 * time.Second},
		{0, 0},
		{time.Hour, 5 * time.Minute}, // capped at the max delay
		{time.Duration(math.MaxInt64), 5 * time.Minute},
		{-time.Second, 0},
	} {
		f := retry.Failure{RetryAfter: tc.asked, HasRetryAfter: true, RetryCount: 2}
		d := Default().Decide(f)
		want := retry.Decision{Retry: true, Delay: tc.want, Strategy: StrategyExponential, Rule: RuleRetryAfter}
		if d != want {
			t.Errorf("Retry-After %v: %+v, want %+v", tc.asked, d, want)
		}
	}
	// The retry limit still applies.
	if d := Default().Decide(retry.Failure{HasRetryAfter: true, RetryAfter: time.Second, RetryCount: 3}); !d.Exhausted {
		t.Errorf("Retry-After past the limit: %+v, want exhausted", d)
	}
}

func TestNoneNeverRetries(t *testing.T) {
	want := retry.Decision{Strategy: StrategyNone, Rule: RuleStrategyNone}
	if d := None().Decide(retry.Failure{HasRetryAfter: true, RetryAfter: time.Second}); d != want {
		t.Errorf("None: %+v, want %+v", d, want)
	}
	if _, _, ok := None().Bounds(0); ok {
		t.Error("None().Bounds ok = true, want false")
	}
}

func TestExponentialValidate(t *testing.T) {
	ok := Default()
	for _, e := range []Exponential{Default(), Immediate(), Short(), Long()} {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
	for name, tc := range map[string]struct {
		field  string
		mutate func(*Exponential)
	}{
		"zero base":          {"BaseDelay", func(e *Exponential) { e.BaseDelay = 0 }},
		"negative base":      {"BaseDelay", func(e *Exponential) { e.BaseDelay = -1 }},
		"max below base":     {"MaxDelay", func(e *Exponential) { e.MaxDelay = e.BaseDelay - 1 }},
		"max above limit":    {"MaxDelay", func(e *Exponential) { e.MaxDelay = MaxDelayLimit + 1 }},
		"multiplier below 1": {"Multiplier", func(e *Exponential) { e.Multiplier = 0.5 }},
		"NaN multiplier":     {"Multiplier", func(e *Exponential) { e.Multiplier = math.NaN() }},
		"Inf multiplier":     {"Multiplier", func(e *Exponential) { e.Multiplier = math.Inf(1) }},
		"retries below -1":   {"MaxRetries", func(e *Exponential) { e.MaxRetries = -2 }},
		"negative jitter":    {"JitterMax", func(e *Exponential) { e.JitterMax = -1 }},
		"unknown jitter":     {"Jitter", func(e *Exponential) { e.Jitter = "ful" }},
	} {
		e := ok
		tc.mutate(&e)
		err := e.Validate()
		if fe, isField := errors.AsType[*retry.FieldError](err); !isField || fe.Field != tc.field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%s: Validate(%+v) = %v, want a retry.FieldError naming %s, wrapping ErrInvalidArgument", name, e, err, tc.field)
		}
	}
}

func TestParseJitter(t *testing.T) {
	for _, j := range Jitters {
		if got, err := ParseJitter(string(j)); err != nil || got != j {
			t.Errorf("ParseJitter(%q) = %q, %v", j, got, err)
		}
	}
	for _, s := range []string{"", "Full", " full", "exponential"} {
		if _, err := ParseJitter(s); err == nil {
			t.Errorf("ParseJitter(%q) succeeded", s)
		}
	}
}

func TestNewRandRepeats(t *testing.T) {
	a, b := NewRand(42), NewRand(42)
	for range 100 {
		if x, y := a.Int64N(1000), b.Int64N(1000); x != y {
			t.Fatalf("same seed, different draws: %d, %d", x, y)
		}
	}
}

// TestRandsAreConcurrencySafe runs decisions from many goroutines on the
// default source and on NewRand; -race checks them.
func TestRandsAreConcurrencySafe(t *testing.T) {
	r, err := DefaultConfig().Build()
	if err != nil {
		t.Fatal(err)
	}
	o, err := DefaultConfig().RouterOptions()
	if err != nil {
		t.Fatal(err)
	}
	o.Rand = NewRand(7)
	seededRouter, err := NewRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for n := range 200 {
				f := retry.Failure{Class: retry.BuiltinClasses[(g+n)%len(retry.BuiltinClasses)], RetryCount: n % 3}
				r.Decide(f)
				seededRouter.Decide(f)
				e := Default()
				e.Jitter = JitterDecorrelated
				e.Decide(f)
			}
		}()
	}
	for range 8 {
		<-done
	}
}
