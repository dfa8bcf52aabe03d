package policy

import (
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// StrategyFixed names the [Fixed] strategy.
const StrategyFixed = "fixed"

// Fixed retries after the same Delay every time, zero included (a retry
// at once, under the same claim), up to Max: what a test harness or
// a batch job wants when backoff would only slow it down. Like
// [Exponential] it declines a permanent error, stops at Max and
// honours a Retry-After (capped at MaxDelayLimit). It is a plain value,
// stateless and safe for concurrent use.
type Fixed struct {
	// Delay is the wait before every retry; 0 retries at once.
	Delay time.Duration
	// Max is the most retries of one node; 0 never retries,
	// [retry.Unlimited] (-1) always does.
	Max int
}

// Validate reports the first bad field, wrapping retry.ErrInvalidArgument.
func (p Fixed) Validate() error {
	switch {
	case p.Delay < 0 || p.Delay > MaxDelayLimit:
		return retry.InvalidField("delay", "%s: want 0 to %s", p.Delay, MaxDelayLimit)
	case p.Max < retry.Unlimited:
		return retry.InvalidField("max", "%d: want -1 (unlimited) or more", p.Max)
	}
	return nil
}

// Name returns "fixed".
func (Fixed) Name() string { return StrategyFixed }

// Decide implements [retry.Policy].
func (p Fixed) Decide(f retry.Failure) retry.Decision {
	switch {
	case f.Permanent:
		return retry.Decision{Strategy: StrategyNone, Rule: RulePermanent}
	case retry.Exceeds(f.RetryCount, p.Max):
		return retry.Decision{Strategy: StrategyFixed, Rule: RuleMaxRetries, Exhausted: true}
	case f.HasRetryAfter:
		return retry.Decision{Retry: true, Delay: min(max(f.RetryAfter, 0), MaxDelayLimit), Strategy: StrategyFixed, Rule: RuleRetryAfter}
	}
	return retry.Decision{Retry: true, Delay: max(p.Delay, 0), Strategy: StrategyFixed, Rule: RuleBackoff}
}

// Bounds implements [Strategy]: Delay, whatever n.
func (p Fixed) Bounds(int) (lo, hi time.Duration, ok bool) {
	d := max(p.Delay, 0)
	return d, d, true
}

// MaxRetries implements [retry.Limit]: new runs under it keep Max as
// their limit.
func (p Fixed) MaxRetries() int { return max(p.Max, retry.Unlimited) }

var (
	_ Strategy    = Fixed{}
	_ retry.Limit = Fixed{}
)
