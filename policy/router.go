package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// DefaultRoutes returns the design's "Retry Strategies" table:
// which strategy each built-in class gets.
func DefaultRoutes() map[retry.Class]string {
	return map[retry.Class]string{
		retry.ClassNetworkBlip:           StrategyImmediate,
		retry.ClassDatabaseLock:          StrategyImmediate,
		retry.ClassDatabaseConnection:    StrategyShort,
		retry.ClassServiceUnavailable:    StrategyShort,
		retry.ClassResourceContention:    StrategyShort,
		retry.ClassRateLimit:             StrategyLong,
		retry.ClassDownstreamMaintenance: StrategyLong,
		retry.ClassComplexRecovery:       StrategyLong,
		retry.ClassValidation:            StrategyNone,
		retry.ClassMissingJourney:        StrategyNone,
		retry.ClassMalformedNode:         StrategyNone,
		retry.ClassTimeout:               StrategyExponential,
		retry.ClassUnknown:               StrategyExponential,
	}
}

// RouterOptions configure a [Router] from Go. [Config.RouterOptions] builds
// them from configuration data; add [ErrorIs] rules or strategies of your
// own before calling [NewRouter].
type RouterOptions struct {
	// Strategies are the strategies routes may name, by Name(). Names must
	// be unique; a strategy with a Validate method must pass it.
	Strategies []Strategy
	// Routes maps a class to a strategy name.
	Routes map[retry.Class]string
	// Fallback names the strategy of a class with no route.
	Fallback string
	// MaxRetries bounds the retries of a node whatever the strategy
	// (>= 0, or [retry.Unlimited]). A strategy's own limit applies too.
	MaxRetries int
	// MaxElapsed, when above zero, bounds the time a node may take across
	// its retries ([retry.Failure].Elapsed): a retry that would start
	// after it (Elapsed plus the delay) becomes Exhausted, rule
	// "max_elapsed". At most [MaxDelayLimit].
	MaxElapsed time.Duration
	// Retryable and NonRetryable are the eligibility rules. A failure
	// matching a NonRetryable rule is never retried; Retryable rules only
	// decide eligibility in the executor's selective rollout mode.
	Retryable    []Rule
	NonRetryable []Rule
	// Rand, when set, replaces the Rand of every [Exponential] strategy:
	// a seeded source makes a whole router deterministic in tests (use
	// [NewRand] if the router is shared by goroutines).
	Rand Rand
}

// Router is the policy the executor uses by default: it picks a strategy by
// the failure's error class from a table, after the non-retryable rules,
// and enforces one retry limit for all. It implements [retry.Policy] and
// [retry.Eligibility], is immutable once built and safe for concurrent use.
//
// Decide, in order: a permanent error is not retried (Rule "permanent"); a
// failure matching NonRetryable rule i is not retried (Rule
// "nonretryable:i"); otherwise the class's strategy decides, except that a
// retry when RetryCount >= MaxRetries becomes Exhausted (Rule
// "max_retries"), and so does one that would start after MaxElapsed (Rule
// "max_elapsed"). The decision's Rule names the route that chose the
// strategy ("class:rate_limit", or "default" for a class with no route)
// unless the strategy reported "max_retries", "retry_after" or
// "permanent".
type Router struct {
	routes       map[retry.Class]route
	fallback     route
	strategies   []Strategy // sorted by name
	maxRetries   int
	maxElapsed   time.Duration
	retryable    []Rule
	nonRetryable []Rule
	// Precomputed rule ids, so a decision allocates nothing.
	retryableIDs, nonRetryableIDs []string
}

type route struct {
	s    Strategy
	rule string
}

// NewRouter builds a Router, or reports the first bad option.
func NewRouter(o RouterOptions) (*Router, error) {
	if o.MaxRetries < retry.Unlimited {
		return nil, fmt.Errorf("max retries %d: want -1 (unlimited) or more", o.MaxRetries)
	}
	if o.MaxElapsed < 0 || o.MaxElapsed > MaxDelayLimit {
		return nil, fmt.Errorf("max elapsed %v: want 0 (no limit) to %v", o.MaxElapsed, MaxDelayLimit)
	}
	byName := make(map[string]Strategy, len(o.Strategies))
	for i, s := range o.Strategies {
		if s == nil {
			return nil, fmt.Errorf("strategy %d is nil", i)
		}
		if v, ok := s.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return nil, fmt.Errorf("strategy %q: %w", s.Name(), err)
			}
		}
		if _, dup := byName[s.Name()]; dup {
			return nil, fmt.Errorf("strategy %q defined twice", s.Name())
		}
		if e, ok := s.(Exponential); ok && o.Rand != nil {
			e.Rand = o.Rand
			s = e
		}
		byName[s.Name()] = s
	}
	fb, ok := byName[o.Fallback]
	if !ok {
		return nil, fmt.Errorf("fallback: unknown strategy %q", o.Fallback)
	}
	r := &Router{
		routes:       make(map[retry.Class]route, len(o.Routes)),
		fallback:     route{s: fb, rule: RuleDefault},
		maxRetries:   o.MaxRetries,
		maxElapsed:   o.MaxElapsed,
		retryable:    slices.Clone(o.Retryable),
		nonRetryable: slices.Clone(o.NonRetryable),
	}
	for c, name := range o.Routes {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("route %s: unknown strategy %q", c, name)
		}
		r.routes[c] = route{s: s, rule: "class:" + string(c)}
	}
	for _, s := range byName {
		r.strategies = append(r.strategies, s)
	}
	slices.SortFunc(r.strategies, func(a, b Strategy) int { return strings.Compare(a.Name(), b.Name()) })
	r.retryableIDs = ruleIDs("retryable:", len(r.retryable))
	r.nonRetryableIDs = ruleIDs("nonretryable:", len(r.nonRetryable))
	return r, nil
}

func ruleIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

// Decide implements [retry.Policy].
func (r *Router) Decide(f retry.Failure) retry.Decision {
	if f.Permanent {
		return retry.Decision{Strategy: StrategyNone, Rule: RulePermanent}
	}
	if i := firstMatch(r.nonRetryable, f); i >= 0 {
		return retry.Decision{Strategy: StrategyNone, Rule: r.nonRetryableIDs[i]}
	}
	rt := r.route(f.Class)
	d := rt.s.Decide(f)
	if d.Retry && retry.Exceeds(f.RetryCount, r.maxRetries) {
		return retry.Decision{Strategy: d.Strategy, Rule: RuleMaxRetries, Exhausted: true}
	}
	if d.Retry && r.maxElapsed > 0 && f.Elapsed+d.Delay > r.maxElapsed {
		return retry.Decision{Strategy: d.Strategy, Rule: RuleMaxElapsed, Exhausted: true}
	}
	switch d.Rule {
	case RulePermanent, RuleMaxRetries, RuleRetryAfter:
	default:
		d.Rule = rt.rule
	}
	return d
}

// route returns the route of class c; an empty class (a Failure built by
// hand) is unknown.
func (r *Router) route(c retry.Class) route {
	if c == "" {
		c = retry.ClassUnknown
	}
	if rt, ok := r.routes[c]; ok {
		return rt
	}
	return r.fallback
}

func firstMatch(rules []Rule, f retry.Failure) int {
	for i := range rules {
		if rules[i].Match(f) {
			return i
		}
	}
	return -1
}

// Eligible implements [retry.Eligibility]: f must match a retryable rule
// (rule "retryable:i") and no non-retryable rule ("nonretryable:i", which
// wins); "no_match" when no retryable rule matches.
func (r *Router) Eligible(f retry.Failure) (ok bool, rule string) {
	if i := firstMatch(r.nonRetryable, f); i >= 0 {
		return false, r.nonRetryableIDs[i]
	}
	if i := firstMatch(r.retryable, f); i >= 0 {
		return true, r.retryableIDs[i]
	}
	return false, RuleNoMatch
}

// MaxRetries returns the router's retry limit ([retry.Unlimited] for none).
func (r *Router) MaxRetries() int { return r.maxRetries }

// MaxElapsed returns the router's limit on a node's time across its
// retries (0 for none).
func (r *Router) MaxElapsed() time.Duration { return r.maxElapsed }

// Strategies returns the router's strategies sorted by name.
func (r *Router) Strategies() []Strategy { return slices.Clone(r.strategies) }

// Explanation says how a [Router] treats one failure, for operators
// checking a configuration (the demo's explain command).
type Explanation struct {
	// Class is the failure's class.
	Class retry.Class
	// Strategy is the strategy that decides its retries, or nil when the
	// failure is never retried (permanent, or a non-retryable rule).
	Strategy Strategy
	// Rule names what chose: "class:rate_limit", "default",
	// "nonretryable:0", "permanent".
	Rule string
	// MaxRetries is the router's retry limit: retries 1..MaxRetries can
	// happen, with delays in Strategy.Bounds(0..MaxRetries-1);
	// [retry.Unlimited] bounds nothing.
	MaxRetries int
	// MaxElapsed is the router's limit on a node's time across its
	// retries (0 for none).
	MaxElapsed time.Duration
	// Eligible and EligibleRule are the answer of [Router.Eligible], which
	// the executor's selective rollout mode requires.
	Eligible     bool
	EligibleRule string
}

// Explain says which strategy and rule apply to f. It draws no random
// numbers and ignores f.RetryCount and Retry-After.
func (r *Router) Explain(f retry.Failure) Explanation {
	x := Explanation{Class: f.Class, MaxRetries: r.maxRetries, MaxElapsed: r.maxElapsed}
	x.Eligible, x.EligibleRule = r.Eligible(f)
	switch i := firstMatch(r.nonRetryable, f); {
	case f.Permanent:
		x.Rule = RulePermanent
	case i >= 0:
		x.Rule = r.nonRetryableIDs[i]
	default:
		rt := r.route(f.Class)
		x.Strategy, x.Rule = rt.s, rt.rule
	}
	return x
}

var (
	_ retry.Policy      = (*Router)(nil)
	_ retry.Eligibility = (*Router)(nil)
)
