package policy

import (
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

func TestDefaultConfigIsTheProposals(t *testing.T) {
	c := DefaultConfig()
	if c.MaxRetries != 3 || c.BaseDelayMs != 1000 || c.MaxDelayMs != 300000 || c.JitterMs != 1000 ||
		len(c.RetryableErrors) != 0 || len(c.NonRetryableErrors) != 0 || c.Multiplier != 2 || c.Jitter != JitterAdditive {
		t.Errorf("DefaultConfig() = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The proposal's RetryConfig keys, spelled exactly.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"maxRetries", "baseDelayMs", "maxDelayMs", "jitterMs", "retryableErrors", "nonRetryableErrors"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks the proposal's key %q: %s", k, b)
		}
	}
	if !maps.Equal(c.Routes, DefaultRoutes()) {
		t.Errorf("Routes = %v", c.Routes)
	}
	// Every built-in class is routed.
	for _, cl := range retry.BuiltinClasses {
		if _, ok := c.Routes[cl]; !ok {
			t.Errorf("class %s has no default route", cl)
		}
	}
}

func TestConfigBuildsTheConfiguredStrategies(t *testing.T) {
	c := DefaultConfig()
	c.BaseDelayMs, c.MaxDelayMs, c.Multiplier, c.Jitter = 10, 70, 3, JitterNone
	c.Strategies.Short = StrategyConfig{BaseDelayMs: 5, MaxDelayMs: 5, Multiplier: 1, Jitter: JitterNone}
	c.MaxRetries = 5
	r := mustBuild(t, c)
	for n, want := range []time.Duration{10, 30, 70, 70, 70} {
		if d := r.Decide(classFailure(retry.ClassTimeout, n)); d.Delay != want*time.Millisecond {
			t.Errorf("exponential retry %d: %v, want %v", n+1, d.Delay, want*time.Millisecond)
		}
		if d := r.Decide(classFailure(retry.ClassDatabaseConnection, n)); d.Delay != 5*time.Millisecond {
			t.Errorf("short retry %d: %v, want 5ms", n+1, d.Delay)
		}
	}
}

// TestConfigValidateNamesTheField checks that every bad value gets an
// error naming its JSON path.
func TestConfigValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		field  string
		mutate func(*Config)
	}{
		{"maxRetries", func(c *Config) { c.MaxRetries = -2 }},
		{"baseDelayMs", func(c *Config) { c.BaseDelayMs = 0 }},
		{"baseDelayMs", func(c *Config) { c.BaseDelayMs = -5; c.MaxDelayMs = 10 }},
		{"maxDelayMs", func(c *Config) { c.MaxDelayMs = 999 }},
		{"maxDelayMs", func(c *Config) { c.MaxDelayMs = math.MaxInt64 }},
		{"jitterMs", func(c *Config) { c.JitterMs = -1 }},
		{"jitterMs", func(c *Config) { c.JitterMs = math.MaxInt64 }},
		{"multiplier", func(c *Config) { c.Multiplier = 0 }},
		{"multiplier", func(c *Config) { c.Multiplier = math.NaN() }},
		{"multiplier", func(c *Config) { c.Multiplier = math.Inf(1) }},
		{"jitter", func(c *Config) { c.Jitter = "" }},
		{"jitter", func(c *Config) { c.Jitter = "gaussian" }},
		{"retryableErrors[1]", func(c *Config) { c.RetryableErrors = []string{"ok", "re:(["} }},
		{"nonRetryableErrors[0]", func(c *Config) { c.NonRetryableErrors = []string{"class:nope"} }},
		{"nonRetryableErrors[0]", func(c *Config) { c.NonRetryableErrors = []string{""} }},
		{"routes.rate_limt", func(c *Config) { c.Routes["rate_limt"] = "long" }},
		{"routes.rate_limit", func(c *Config) { c.Routes["rate_limit"] = "longer" }},
		{"customClasses[0]", func(c *Config) { c.CustomClasses = []retry.Class{"Bad Class"} }},
		{"strategies.short.maxDelayMs", func(c *Config) { c.Strategies.Short.MaxDelayMs = 1 }},
		{"strategies.long.jitter", func(c *Config) { c.Strategies.Long.Jitter = "x" }},
		{"strategies.immediate.baseDelayMs", func(c *Config) { c.Strategies.Immediate.BaseDelayMs = 0 }},
	} {
		c := DefaultConfig()
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field+": ") {
			t.Errorf("%s: Validate() = %v, want an error naming it", tc.field, err)
			continue
		}
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != tc.field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%s: Validate() = %v, want a retry.FieldError naming it, wrapping ErrInvalidArgument", tc.field, err)
		}
		if _, berr := c.Build(); berr == nil {
			t.Errorf("%s: Build succeeded on an invalid config", tc.field)
		}
	}
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	c := DefaultConfig()
	c.MaxRetries, c.JitterMs = -2, -1
	err := c.Validate()
	var fields []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		f, _, _ := strings.Cut(line, ":")
		fields = append(fields, f)
	}
	if !slices.Equal(fields, []string{"jitterMs", "maxRetries"}) {
		t.Errorf("Validate() = %q, want jitterMs then maxRetries", err)
	}
	if again := c.Validate(); again.Error() != err.Error() {
		t.Errorf("Validate is not deterministic: %q then %q", err, again)
	}
}

func TestConfigBuildDoesNotShareTheRoutes(t *testing.T) {
	c := DefaultConfig()
	r := mustBuild(t, c)
	c.Routes[retry.ClassNetworkBlip] = StrategyNone
	if d := r.Decide(classFailure(retry.ClassNetworkBlip, 0)); d.Strategy != StrategyImmediate {
		t.Errorf("router follows a later change of its config: %+v", d)
	}
}

// FuzzConfigDecide builds routers from arbitrary configuration values and
// retry counts, unclamped: whatever Validate accepts decides without
// panic, overflow or a negative delay, within the documented bound.
func FuzzConfigDecide(f *testing.F) {
	d := DefaultConfig()
	f.Add(d.MaxRetries, d.BaseDelayMs, d.MaxDelayMs, d.JitterMs, d.Multiplier, string(d.Jitter), "long", int64(0), 0, int64(0), false, int64(0), uint64(1))
	f.Add(math.MaxInt, int64(1), maxDelayLimitMs, maxDelayLimitMs, math.MaxFloat64, "decorrelated", "exponential", int64(1), math.MaxInt, int64(math.MaxInt64), true, int64(math.MaxInt64), uint64(7))
	f.Add(3, int64(1), int64(1), int64(0), 1.0, "full", "short", int64(2), math.MaxInt-1, int64(-1), true, int64(-5), uint64(3))
	f.Add(10, int64(1000), int64(300000), int64(1000), 2.0, "equal", "immediate", int64(3), 62, int64(math.MinInt64), false, int64(0), uint64(9))
	f.Add(-1, int64(0), int64(-1), int64(-1), math.NaN(), "bogus", "nope", int64(0), -1, int64(0), false, int64(0), uint64(0))
	f.Fuzz(func(t *testing.T, maxRetries int, baseMs, maxMs, jitterMs int64, mult float64, jitter, strategy string,
		classIdx int64, retryCount int, prev int64, hasRetryAfter bool, retryAfter int64, seed uint64) {
		c := DefaultConfig()
		c.MaxRetries, c.BaseDelayMs, c.MaxDelayMs, c.JitterMs, c.Multiplier, c.Jitter = maxRetries, baseMs, maxMs, jitterMs, mult, Jitter(jitter)
		// The same values for a named strategy, routed to by a class.
		c.Strategies.Long = StrategyConfig{BaseDelayMs: baseMs, MaxDelayMs: maxMs, Multiplier: mult, Jitter: Jitter(jitter), JitterMs: jitterMs}
		c.Routes[retry.ClassRateLimit] = strategy
		o, err := c.RouterOptions()
		if err != nil {
			if c.Validate() == nil {
				t.Fatalf("RouterOptions failed on a valid config: %v", err)
			}
			return
		}
		o.Rand = rand64(seed)
		r, err := NewRouter(o)
		if err != nil {
			t.Fatalf("NewRouter on a valid config: %v", err)
		}
		classes := retry.BuiltinClasses
		class := classes[uint64(classIdx)%uint64(len(classes))]
		fl := retry.Failure{Class: class, RetryCount: retryCount, PrevDelay: time.Duration(prev), HasRetryAfter: hasRetryAfter, RetryAfter: time.Duration(retryAfter)}
		x := r.Explain(fl)
		d := r.Decide(fl)
		if !d.Retry {
			if d.Delay != 0 {
				t.Fatalf("no retry with a delay: %+v", d)
			}
			return
		}
		if retry.Exceeds(retryCount, maxRetries) {
			t.Fatalf("retry past the limit: count %d, max %d: %+v", retryCount, maxRetries, d)
		}
		if x.Strategy == nil || x.Strategy.Name() != d.Strategy {
			t.Fatalf("Explain says %+v, Decide %+v", x, d)
		}
		sc := c.strategies()
		sc[StrategyExponential] = c.exponential()
		s := sc[d.Strategy]
		bound := time.Duration(s.MaxDelayMs) * time.Millisecond
		if s.Jitter == JitterAdditive {
			bound += time.Duration(s.JitterMs) * time.Millisecond
		}
		if d.Delay < 0 || d.Delay > bound {
			t.Fatalf("delay %v outside [0, %v]: %+v", d.Delay, bound, d)
		}
		if !hasRetryAfter && (d.Strategy == StrategyLong || d.Strategy == StrategyExponential) && prev == 0 {
			if lo, hi, _ := x.Strategy.Bounds(retryCount); d.Delay < lo || d.Delay > hi {
				t.Fatalf("delay %v outside Bounds(%d) = [%v, %v]", d.Delay, retryCount, lo, hi)
			}
		}
	})
}

// FuzzExponential calls Exponential.Decide directly with every field
// unclamped, including configurations Validate rejects: those must not
// panic either; those it accepts stay within the documented bound.
func FuzzExponential(f *testing.F) {
	f.Add(int64(time.Second), int64(5*time.Minute), 2.0, 3, uint8(0), int64(time.Second), 0, int64(0), false, int64(0), uint64(1))
	f.Add(int64(1), int64(MaxDelayLimit), 1e308, math.MaxInt, uint8(3), int64(MaxDelayLimit), math.MaxInt-1, int64(math.MaxInt64), false, int64(0), uint64(2))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), math.Inf(1), math.MaxInt, uint8(1), int64(math.MaxInt64), 1<<40, int64(math.MaxInt64), true, int64(math.MaxInt64), uint64(3))
	f.Add(int64(-1), int64(math.MinInt64), math.NaN(), -1, uint8(2), int64(-1), -1, int64(math.MinInt64), false, int64(0), uint64(4))
	f.Fuzz(func(t *testing.T, base, maxDelay int64, mult float64, maxRetries int, jitterIdx uint8, jitterMax int64,
		retryCount int, prev int64, hasRetryAfter bool, retryAfter int64, seed uint64) {
		e := Exponential{
			BaseDelay: time.Duration(base), MaxDelay: time.Duration(maxDelay), Multiplier: mult,
			MaxRetries: maxRetries, Jitter: Jitters[int(jitterIdx)%len(Jitters)], JitterMax: time.Duration(jitterMax),
			Rand: rand64(seed),
		}
		fl := retry.Failure{RetryCount: retryCount, PrevDelay: time.Duration(prev), HasRetryAfter: hasRetryAfter, RetryAfter: time.Duration(retryAfter)}
		d := e.Decide(fl) // must not panic, valid or not
		e.Bounds(retryCount)
		if e.Validate() != nil || !d.Retry {
			return
		}
		bound := e.MaxDelay
		if e.Jitter == JitterAdditive {
			bound += e.JitterMax
		}
		if d.Delay < 0 || d.Delay > bound {
			t.Fatalf("%+v: delay %v outside [0, %v]", e, d.Delay, bound)
		}
		if lo, hi, _ := e.Bounds(retryCount); !hasRetryAfter && prev == 0 && (d.Delay < lo || d.Delay > hi) {
			t.Fatalf("%+v: delay %v outside Bounds(%d) = [%v, %v]", e, d.Delay, retryCount, lo, hi)
		}
	})
}
