package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Strategy names, stored in [retry.Decision].Strategy with every attempt.
const (
	StrategyImmediate   = "immediate"
	StrategyShort       = "short"
	StrategyLong        = "long"
	StrategyNone        = "none"
	StrategyExponential = "exponential"
)

// Rules reported in [retry.Decision].Rule and by [Router.Eligible]. A
// [Router] keeps a strategy's first three and replaces the others with the
// routing rule that chose the strategy ("class:rate_limit", "default").
const (
	// RulePermanent: the error was marked [retry.Permanent].
	RulePermanent = "permanent"
	// RuleMaxRetries: the node's retries ran out (Decision.Exhausted).
	RuleMaxRetries = "max_retries"
	// RuleMaxElapsed: the node's time across its retries ran out
	// (Decision.Exhausted): a [Router]'s MaxElapsed.
	RuleMaxElapsed = "max_elapsed"
	// RuleRetryAfter: the delay is the one the error asked for.
	RuleRetryAfter = "retry_after"
	// RuleBackoff: the delay is the strategy's computed backoff.
	RuleBackoff = "backoff"
	// RuleStrategyNone: the [Never] strategy declined.
	RuleStrategyNone = "strategy:none"
	// RuleDefault: a [Router] chose its fallback strategy for a class with
	// no route. Other routing rules are "class:<name>".
	RuleDefault = "default"
	// RuleNoMatch: [Router.Eligible] found no retryable rule matching.
	// Other eligibility rules are "retryable:<i>" and "nonretryable:<i>",
	// i indexing the configured list.
	RuleNoMatch = "no_match"
)

// MaxDelayLimit bounds every configured delay (base, max, jitter). Ten
// years is far beyond any sensible retry and far enough below the ~292
// years a time.Duration holds that the delay arithmetic cannot overflow.
const MaxDelayLimit = 10 * 365 * 24 * time.Hour

// Strategy is a named [retry.Policy] whose computed delays have known
// bounds, so operators can check a configuration before enabling it.
type Strategy interface {
	retry.Policy
	// Name is the stable name stored in Decision.Strategy.
	Name() string
	// Bounds returns lo <= hi such that Decide's computed delay for a
	// failure with RetryCount n (retry n+1) lies in [lo, hi] when the
	// failure has no Retry-After and its PrevDelay was chosen by this
	// strategy. It ignores the retry limit; ok is false when the strategy
	// never retries.
	Bounds(n int) (lo, hi time.Duration, ok bool)
}

// Rand is the randomness jitter draws from. *rand.Rand of math/rand/v2
// satisfies it; tests inject one with a fixed seed so delays repeat. A
// source shared by goroutines must be safe for concurrent use (*rand.Rand
// is not).
type Rand interface {
	// Int64N returns a uniform value in [0, n); n > 0.
	Int64N(n int64) int64
}

// NewRand returns a seeded Rand that is safe for concurrent use: the same
// seed draws the same sequence, so a router shared by a pool of workers in
// a test is still reproducible when the workers' order is.
func NewRand(seed uint64) Rand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) Int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

// Jitter is a kind of randomisation of the computed delay v = min(base x
// multiplier^n, max).
type Jitter string

const (
	// JitterAdditive is the design's: v plus a uniform value in
	// [0, JitterMax), so a delay is at most MaxDelay + JitterMax.
	JitterAdditive Jitter = "additive"
	// JitterFull is AWS's "Full Jitter": uniform in [0, v].
	JitterFull Jitter = "full"
	// JitterEqual is AWS's "Equal Jitter": v/2 plus uniform in [0, v/2].
	JitterEqual Jitter = "equal"
	// JitterDecorrelated is AWS's "Decorrelated Jitter": min(max,
	// uniform in [base, 3 x prev]), prev being the previous delay
	// (Failure.PrevDelay, at least base). It ignores the multiplier.
	JitterDecorrelated Jitter = "decorrelated"
	// JitterNone uses v as is.
	JitterNone Jitter = "none"
)

// Jitters lists the jitter kinds.
var Jitters = []Jitter{JitterAdditive, JitterFull, JitterEqual, JitterDecorrelated, JitterNone}

// ParseJitter returns the Jitter spelled s, or an error listing the kinds.
func ParseJitter(s string) (Jitter, error) {
	for _, j := range Jitters {
		if string(j) == s {
			return j, nil
		}
	}
	return "", fmt.Errorf("unknown jitter %q (want additive, full, equal, decorrelated or none)", s)
}

// UnmarshalText parses a jitter kind, so a configuration file with a bad
// one is rejected where it is read.
func (j *Jitter) UnmarshalText(b []byte) error {
	v, err := ParseJitter(string(b))
	if err != nil {
		return err
	}
	*j = v
	return nil
}

// Exponential retries with exponential backoff: retry n+1 (n =
// Failure.RetryCount, from 0) waits v = min(BaseDelay x Multiplier^n,
// MaxDelay), randomised by Jitter. It is a plain value, stateless and safe
// for concurrent use (as long as Rand is).
//
// Its decision, in order: a permanent error is not retried (Rule
// "permanent"); RetryCount >= MaxRetries (unless [retry.Unlimited]) ends the node (Exhausted, Rule
// "max_retries"); an error that asked for a delay ([retry.RetryAfter]) gets
// it, capped at MaxDelay, without jitter (Rule "retry_after"); otherwise
// the jittered backoff (Rule "backoff").
type Exponential struct {
	// StrategyName is stored in Decision.Strategy; empty means
	// "exponential".
	StrategyName string
	// BaseDelay is the delay of the first retry before jitter; > 0.
	BaseDelay time.Duration
	// MaxDelay caps the computed delay (before additive jitter); >= BaseDelay.
	MaxDelay time.Duration
	// Multiplier is the growth per retry; >= 1.
	Multiplier float64
	// MaxRetries is the most retries of one node; 0 never retries,
	// [retry.Unlimited] (-1) always does.
	MaxRetries int
	// Jitter is the randomisation; empty means JitterNone.
	Jitter Jitter
	// JitterMax is the additive jitter's bound (the design's jitterMs);
	// other kinds ignore it.
	JitterMax time.Duration
	// Rand is the jitter's source; nil means math/rand/v2's top-level
	// functions, safe for concurrent use.
	Rand Rand
}

// Default returns the design's backoff: 1 s base doubling up to
// 5 minutes, plus up to 1 s of additive jitter, 3 retries.
func Default() Exponential {
	return Exponential{
		StrategyName: StrategyExponential,
		BaseDelay:    time.Second, MaxDelay: 5 * time.Minute, Multiplier: 2,
		MaxRetries: 3, Jitter: JitterAdditive, JitterMax: time.Second,
	}
}

// Immediate returns the design's immediate retry (0-1 s) for network
// blips and database locks: full jitter over 100 ms doubling up to 1 s.
func Immediate() Exponential {
	return Exponential{
		StrategyName: StrategyImmediate,
		BaseDelay:    100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2,
		MaxRetries: 3, Jitter: JitterFull,
	}
}

// Short returns the design's short backoff (1-10 s) for connection
// problems and services briefly unavailable: equal jitter over 2 s doubling
// up to 10 s, so retry 1 waits 1-2 s and no retry more than 10 s.
func Short() Exponential {
	return Exponential{
		StrategyName: StrategyShort,
		BaseDelay:    2 * time.Second, MaxDelay: 10 * time.Second, Multiplier: 2,
		MaxRetries: 3, Jitter: JitterEqual,
	}
}

// Long returns the design's long backoff (minutes) for rate limits and
// maintenance: equal jitter over 2 min doubling up to 10 min, so retry 1
// waits 1-2 min and no retry more than 10 min.
func Long() Exponential {
	return Exponential{
		StrategyName: StrategyLong,
		BaseDelay:    2 * time.Minute, MaxDelay: 10 * time.Minute, Multiplier: 2,
		MaxRetries: 3, Jitter: JitterEqual,
	}
}

// Name returns StrategyName, or "exponential" when it is empty.
func (e Exponential) Name() string {
	if e.StrategyName == "" {
		return StrategyExponential
	}
	return e.StrategyName
}

// Validate reports the first bad field. Every Exponential that passes it
// decides without overflow or panic for any Failure.
func (e Exponential) Validate() error {
	switch {
	case e.BaseDelay <= 0 || e.BaseDelay > MaxDelayLimit:
		return retry.InvalidField("BaseDelay", "%v: want > 0 and <= %v", e.BaseDelay, MaxDelayLimit)
	case e.MaxDelay < e.BaseDelay || e.MaxDelay > MaxDelayLimit:
		return retry.InvalidField("MaxDelay", "%v: want >= BaseDelay %v and <= %v", e.MaxDelay, e.BaseDelay, MaxDelayLimit)
	case !(e.Multiplier >= 1) || math.IsInf(e.Multiplier, 0):
		return retry.InvalidField("Multiplier", "%v: want a finite number >= 1", e.Multiplier)
	case e.MaxRetries < retry.Unlimited:
		return retry.InvalidField("MaxRetries", "%d: want -1 (unlimited) or more", e.MaxRetries)
	case e.JitterMax < 0 || e.JitterMax > MaxDelayLimit:
		return retry.InvalidField("JitterMax", "%v: want >= 0 and <= %v", e.JitterMax, MaxDelayLimit)
	}
	if e.Jitter != "" {
		if _, err := ParseJitter(string(e.Jitter)); err != nil {
			return retry.InvalidField("Jitter", "%w", err)
		}
	}
	return nil
}

// Backoff returns the jitter-free delay of retry n+1: min(BaseDelay x
// Multiplier^n, MaxDelay), n < 0 counting as 0. Tests check schedules with
// it exactly.
func (e Exponential) Backoff(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	base, ceiling := max(e.BaseDelay, 0), max(e.MaxDelay, 0)
	// In float64, 2^n for a huge n is +Inf, never a wrapped integer; the
	// comparison below also catches NaN (a bad multiplier).
	v := float64(base) * math.Pow(e.Multiplier, float64(n))
	if !(v < float64(ceiling)) {
		return ceiling
	}
	return time.Duration(v)
}

// Decide implements [retry.Policy].
func (e Exponential) Decide(f retry.Failure) retry.Decision {
	switch {
	case f.Permanent:
		return retry.Decision{Strategy: StrategyNone, Rule: RulePermanent}
	case retry.Exceeds(f.RetryCount, e.MaxRetries):
		return retry.Decision{Strategy: e.Name(), Rule: RuleMaxRetries, Exhausted: true}
	case f.HasRetryAfter:
		return retry.Decision{Retry: true, Delay: min(max(f.RetryAfter, 0), max(e.MaxDelay, 0)), Strategy: e.Name(), Rule: RuleRetryAfter}
	}
	return retry.Decision{Retry: true, Delay: e.delay(f.RetryCount, f.PrevDelay), Strategy: e.Name(), Rule: RuleBackoff}
}

// delay is the jittered backoff of retry n+1.
func (e Exponential) delay(n int, prev time.Duration) time.Duration {
	v := e.Backoff(n)
	switch e.Jitter {
	case JitterAdditive:
		return v + e.randN(e.JitterMax)
	case JitterFull:
		return e.randN(v + 1)
	case JitterEqual:
		return v/2 + e.randN(v-v/2+1)
	case JitterDecorrelated:
		base, ceiling := max(e.BaseDelay, 0), max(e.MaxDelay, 0)
		// prev is clamped to [base, max]: the policy's own delays always
		// are, and 3 x max cannot overflow (max <= MaxDelayLimit).
		prev = min(max(prev, base), ceiling)
		return min(ceiling, base+e.randN(3*prev-base+1))
	}
	return v
}

// randN returns a uniform value in [0, n), or 0 when n <= 0.
func (e Exponential) randN(n time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if e.Rand != nil {
		return time.Duration(e.Rand.Int64N(int64(n)))
	}
	return time.Duration(rand.Int64N(int64(n)))
}

// Bounds implements [Strategy].
func (e Exponential) Bounds(n int) (lo, hi time.Duration, ok bool) {
	n = max(n, 0)
	v := e.Backoff(n)
	switch e.Jitter {
	case JitterAdditive:
		return v, v + max(e.JitterMax, 0), true
	case JitterFull:
		return 0, v, true
	case JitterEqual:
		return v / 2, v, true
	case JitterDecorrelated:
		// Growing from base by at most x3 a retry, retry n+1 can reach
		// base x 3^(n+1), capped at max.
		base, ceiling := max(e.BaseDelay, 0), max(e.MaxDelay, 0)
		grown := Exponential{BaseDelay: base, MaxDelay: ceiling, Multiplier: 3}.Backoff(n + 1)
		return min(base, ceiling), grown, true
	}
	return v, v, true
}

// Never is the "none" strategy: it never retries (validation errors, a
// missing journey definition, a malformed node).
type Never struct{}

// None returns the strategy that never retries.
func None() Never { return Never{} }

// Name returns "none".
func (Never) Name() string { return StrategyNone }

// Decide implements [retry.Policy]: never a retry, Rule "strategy:none"
// (or "permanent" for a permanent error).
func (Never) Decide(f retry.Failure) retry.Decision {
	if f.Permanent {
		return retry.Decision{Strategy: StrategyNone, Rule: RulePermanent}
	}
	return retry.Decision{Strategy: StrategyNone, Rule: RuleStrategyNone}
}

// Bounds implements [Strategy]: ok is false.
func (Never) Bounds(int) (lo, hi time.Duration, ok bool) { return 0, 0, false }

var (
	_ Strategy = Exponential{}
	_ Strategy = Never{}
)
