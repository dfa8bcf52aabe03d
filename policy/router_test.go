package policy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

func mustBuild(t testing.TB, c Config) *Router {
	t.Helper()
	o, err := c.RouterOptions()
	if err != nil {
		t.Fatal(err)
	}
	o.Rand = seeded()
	r, err := NewRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func classFailure(c retry.Class, n int) retry.Failure {
	return retry.NewFailure(retry.WithClass(errTest, c), n, 0)
}

// TestDefaultTableIsTheProposals routes every built-in class as the
// proposal's "Retry Strategies" section says.
func TestDefaultTableIsTheProposals(t *testing.T) {
	r := mustBuild(t, DefaultConfig())
	want := map[retry.Class]string{
		retry.ClassNetworkBlip: "immediate", retry.ClassDatabaseLock: "immediate",
		retry.ClassDatabaseConnection: "short", retry.ClassServiceUnavailable: "short", retry.ClassResourceContention: "short",
		retry.ClassRateLimit: "long", retry.ClassDownstreamMaintenance: "long", retry.ClassComplexRecovery: "long",
		retry.ClassValidation: "none", retry.ClassMissingJourney: "none", retry.ClassMalformedNode: "none",
		retry.ClassTimeout: "exponential", retry.ClassUnknown: "exponential",
	}
	for _, c := range retry.BuiltinClasses {
		d := r.Decide(classFailure(c, 0))
		if d.Strategy != want[c] || d.Rule != "class:"+string(c) {
			t.Errorf("%s: %+v, want strategy %s, rule class:%s", c, d, want[c], c)
		}
		if d.Retry != (want[c] != "none") {
			t.Errorf("%s: Retry = %v", c, d.Retry)
		}
		lo, hi, _ := r.Explain(classFailure(c, 0)).Strategy.Bounds(0)
		if d.Retry && (d.Delay < lo || d.Delay > hi) {
			t.Errorf("%s: delay %v outside [%v, %v]", c, d.Delay, lo, hi)
		}
	}
	// An unclassified error is unknown: the default exponential policy.
	if d := r.Decide(retry.NewFailure(errTest, 0, 0)); d.Strategy != StrategyExponential || !d.Retry {
		t.Errorf("plain error: %+v", d)
	}
}

func TestRouterEveryStrategyRespectsMaxRetries(t *testing.T) {
	c := DefaultConfig()
	c.MaxRetries = 2
	r := mustBuild(t, c)
	for _, cl := range retry.BuiltinClasses {
		retried := 0
		var last retry.Decision
		for n := 0; n < 10; n++ {
			last = r.Decide(classFailure(cl, n))
			if !last.Retry {
				break
			}
			retried++
		}
		if c.Routes[cl] == StrategyNone {
			if retried != 0 || last.Exhausted {
				t.Errorf("%s: %d retries, last %+v; want none, not exhausted", cl, retried, last)
			}
			continue
		}
		if retried != 2 || !last.Exhausted || last.Rule != RuleMaxRetries || last.Strategy != c.Routes[cl] {
			t.Errorf("%s: %d retries, last %+v; want 2 then exhausted by max_retries", cl, retried, last)
		}
	}
	c.MaxRetries = 0
	r = mustBuild(t, c)
	if d := r.Decide(classFailure(retry.ClassNetworkBlip, 0)); d.Retry || !d.Exhausted {
		t.Errorf("maxRetries 0: %+v, want exhausted", d)
	}
}

// TestRouterLimitAppliesToCustomPolicies checks that the router's limit
// holds even for a strategy that would retry forever.
func TestRouterLimitAppliesToCustomPolicies(t *testing.T) {
	forever := Default()
	forever.StrategyName = "forever"
	forever.MaxRetries = math.MaxInt
	r, err := NewRouter(RouterOptions{Strategies: []Strategy{forever}, Fallback: "forever", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Decide(retry.Failure{RetryCount: 1}); d.Retry || !d.Exhausted || d.Strategy != "forever" || d.Rule != RuleMaxRetries {
		t.Errorf("%+v, want exhausted", d)
	}
}

func TestNonRetryableBeatsRetryableAndRoutes(t *testing.T) {
	c := DefaultConfig()
	c.RetryableErrors = []string{"timeout", "class:network_blip"}
	c.NonRetryableErrors = []string{"re:(?i)patient .* invalid", "class:network_blip"}
	r := mustBuild(t, c)

	blip := classFailure(retry.ClassNetworkBlip, 0)
	if d := r.Decide(blip); d.Retry || d.Rule != "nonretryable:1" || d.Strategy != StrategyNone || d.Exhausted {
		t.Errorf("blip matching both lists: %+v, want nonretryable:1", d)
	}
	if ok, rule := r.Eligible(blip); ok || rule != "nonretryable:1" {
		t.Errorf("Eligible(blip) = %v, %s", ok, rule)
	}
	bad := retry.NewFailure(retry.WithClass(errors.New("timeout: Patient 42 invalid"), retry.ClassRateLimit), 0, 0)
	if d := r.Decide(bad); d.Retry || d.Rule != "nonretryable:0" {
		t.Errorf("rule beats the rate_limit route: %+v", d)
	}
	to := retry.NewFailure(errors.New("read: timeout"), 0, 0)
	if ok, rule := r.Eligible(to); !ok || rule != "retryable:0" {
		t.Errorf("Eligible(timeout) = %v, %s; want true, retryable:0", ok, rule)
	}
	if ok, rule := r.Eligible(classFailure(retry.ClassRateLimit, 0)); ok || rule != RuleNoMatch {
		t.Errorf("Eligible(no rule) = %v, %s; want false, %s", ok, rule, RuleNoMatch)
	}
	// Permanent beats everything, Retry-After included.
	perm := retry.NewFailure(retry.Permanent(retry.RetryAfter(retry.WithClass(errTest, retry.ClassNetworkBlip), time.Second)), 0, 0)
	if d := r.Decide(perm); d.Retry || d.Rule != RulePermanent {
		t.Errorf("permanent: %+v", d)
	}
}

func TestRouterRetryAfter(t *testing.T) {
	r := mustBuild(t, DefaultConfig())
	err := fmt.Errorf("call api: %w", retry.RetryAfter(retry.WithClass(errTest, retry.ClassRateLimit), 90*time.Second))
	d := r.Decide(retry.NewFailure(err, 0, 0))
	want := retry.Decision{Retry: true, Delay: 90 * time.Second, Strategy: StrategyLong, Rule: RuleRetryAfter}
	if d != want {
		t.Errorf("%+v, want %+v", d, want)
	}
	// Capped by the strategy's max delay (long: 10 minutes).
	err = retry.RetryAfter(retry.WithClass(errTest, retry.ClassRateLimit), 3*time.Hour)
	if d := r.Decide(retry.NewFailure(err, 0, 0)); d.Delay != 10*time.Minute {
		t.Errorf("3h Retry-After: %v, want capped at 10m", d.Delay)
	}
	// A class that is never retried stays so.
	err = retry.RetryAfter(retry.WithClass(errTest, retry.ClassValidation), time.Second)
	if d := r.Decide(retry.NewFailure(err, 0, 0)); d.Retry {
		t.Errorf("validation with Retry-After retried: %+v", d)
	}
}

func TestRouterCustomClassesAndRoutes(t *testing.T) {
	c := DefaultConfig()
	c.CustomClasses = []retry.Class{"billing_hold", "partner_slow"}
	c.Routes["billing_hold"] = StrategyNone
	c.Routes[retry.ClassRateLimit] = StrategyShort
	r := mustBuild(t, c)
	for _, tc := range []struct {
		class          retry.Class
		strategy, rule string
	}{
		{"billing_hold", StrategyNone, "class:billing_hold"},
		{"partner_slow", StrategyExponential, RuleDefault}, // declared, no route
		{retry.ClassRateLimit, StrategyShort, "class:rate_limit"},
	} {
		d := r.Decide(classFailure(tc.class, 0))
		if d.Strategy != tc.strategy || d.Rule != tc.rule {
			t.Errorf("%s: %+v, want %s by %s", tc.class, d, tc.strategy, tc.rule)
		}
	}
}

func TestExplain(t *testing.T) {
	c := DefaultConfig()
	c.RetryableErrors = []string{"class:rate_limit"}
	c.NonRetryableErrors = []string{"bad patient"}
	r := mustBuild(t, c)

	x := r.Explain(classFailure(retry.ClassRateLimit, 0))
	if x.Strategy == nil || x.Strategy.Name() != StrategyLong || x.Rule != "class:rate_limit" || !x.Eligible || x.EligibleRule != "retryable:0" || x.MaxRetries != 3 {
		t.Errorf("rate limit: %+v", x)
	}
	lo, hi, ok := x.Strategy.Bounds(0)
	if !ok || lo != time.Minute || hi != 2*time.Minute {
		t.Errorf("long retry 1 bounds = [%v, %v], want [1m, 2m]", lo, hi)
	}
	x = r.Explain(retry.Failure{Message: "bad patient record"})
	if x.Strategy != nil || x.Rule != "nonretryable:0" || x.Eligible {
		t.Errorf("non-retryable: %+v", x)
	}
	x = r.Explain(retry.Failure{Permanent: true, Class: retry.ClassNetworkBlip})
	if x.Strategy != nil || x.Rule != RulePermanent {
		t.Errorf("permanent: %+v", x)
	}
	var names []string
	for _, s := range r.Strategies() {
		names = append(names, s.Name())
	}
	if want := []string{"exponential", "immediate", "long", "none", "short"}; !slices.Equal(names, want) {
		t.Errorf("Strategies() = %v, want %v", names, want)
	}
}

func TestNewRouterRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]RouterOptions{
		"max retries below -1": {Strategies: []Strategy{None()}, Fallback: "none", MaxRetries: -2},
		"unknown fallback":     {Strategies: []Strategy{None()}, Fallback: "exponential"},
		"unknown route target": {Strategies: []Strategy{None()}, Fallback: "none", Routes: map[retry.Class]string{"x": "short"}},
		"duplicate strategy":   {Strategies: []Strategy{None(), None()}, Fallback: "none"},
		"nil strategy":         {Strategies: []Strategy{nil}, Fallback: "none"},
		"invalid strategy":     {Strategies: []Strategy{Exponential{}}, Fallback: "exponential"},
	} {
		if _, err := NewRouter(o); err == nil {
			t.Errorf("%s: NewRouter succeeded", name)
		}
	}
}

func TestRouterDoesNotShareOptions(t *testing.T) {
	o, err := DefaultConfig().RouterOptions()
	if err != nil {
		t.Fatal(err)
	}
	o.NonRetryable = []Rule{MessageContains("boom")}
	r, err := NewRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	o.NonRetryable[0] = MessageContains("other")
	o.Routes[retry.ClassNetworkBlip] = StrategyNone
	if d := r.Decide(retry.Failure{Message: "boom"}); d.Rule != "nonretryable:0" {
		t.Errorf("router changed by its options after NewRouter: %+v", d)
	}
	if d := r.Decide(classFailure(retry.ClassNetworkBlip, 0)); d.Strategy != StrategyImmediate {
		t.Errorf("router's routes changed after NewRouter: %+v", d)
	}
	if !strings.HasPrefix(r.Decide(retry.Failure{Message: "x"}).Rule, "class:") {
		t.Error("unknown class not routed by its table entry")
	}
}

// TestUnlimitedRetries: a limit of -1 (retry.Unlimited) never exhausts a
// node, in the router, its strategies and Fixed; -2 is refused, naming
// the field (TestNewRouterRejectsBadOptions and the strategies' Validate
// tests refuse it too).
func TestUnlimitedRetries(t *testing.T) {
	c := DefaultConfig()
	c.MaxRetries = retry.Unlimited
	r := mustBuild(t, c)
	if r.MaxRetries() != retry.Unlimited {
		t.Errorf("MaxRetries() = %d, want -1", r.MaxRetries())
	}
	for _, n := range []int{0, 3, 1000, math.MaxInt32} {
		if d := r.Decide(classFailure(retry.ClassRateLimit, n)); !d.Retry || d.Exhausted {
			t.Errorf("router, retry count %d: %+v; want a retry", n, d)
		}
		e := Default()
		e.MaxRetries = retry.Unlimited
		if d := e.Decide(retry.Failure{RetryCount: n}); !d.Retry || d.Delay > e.MaxDelay+e.JitterMax {
			t.Errorf("exponential, retry count %d: %+v; want a retry within the max delay", n, d)
		}
		if d := (Fixed{Max: retry.Unlimited}).Decide(retry.Failure{RetryCount: n}); !d.Retry {
			t.Errorf("fixed, retry count %d: %+v; want a retry", n, d)
		}
	}
	if d := r.Decide(retry.Failure{Class: retry.ClassRateLimit, Permanent: true}); d.Retry {
		t.Errorf("unlimited retried a permanent error: %+v", d)
	}
	if got := (Fixed{Max: retry.Unlimited}).MaxRetries(); got != retry.Unlimited {
		t.Errorf("Fixed{Max: -1}.MaxRetries() = %d", got)
	}
	c.MaxRetries = -2
	if err := c.Validate(); err == nil || err.Error() != "maxRetries: -2: want -1 (unlimited), 0 (none) or more" {
		t.Errorf("Validate with -2: %v", err)
	}
}

// TestRouterMaxElapsed: with maxElapsedMs set, a retry that would start
// after the limit (the node's elapsed time plus the delay) ends the node,
// exhausted by rule max_elapsed, whatever the retry count; one that starts
// in time is made; 0 bounds nothing; a negative limit names the field.
func TestRouterMaxElapsed(t *testing.T) {
	c := DefaultConfig()
	c.MaxRetries = retry.Unlimited
	c.Routes[retry.ClassServiceUnavailable] = StrategyImmediate // at most 1 s
	c.MaxElapsedMs = time.Minute.Milliseconds()
	r := mustBuild(t, c)
	if r.MaxElapsed() != time.Minute {
		t.Errorf("MaxElapsed() = %v", r.MaxElapsed())
	}
	f := classFailure(retry.ClassServiceUnavailable, 0)
	f.Elapsed = 58 * time.Second
	if d := r.Decide(f); !d.Retry || d.Exhausted || d.Delay > time.Second {
		t.Errorf("58s elapsed, retry within 1s: %+v; want a retry", d)
	}
	f.Elapsed = time.Minute
	if d := r.Decide(f); d.Retry || !d.Exhausted || d.Rule != RuleMaxElapsed || d.Strategy != StrategyImmediate {
		t.Errorf("1m elapsed: %+v; want exhausted by max_elapsed", d)
	}
	// A long delay that would start past the limit ends the node early.
	long := classFailure(retry.ClassRateLimit, 0) // long: 1-2 min
	long.Elapsed = time.Second
	if d := r.Decide(long); d.Retry || !d.Exhausted || d.Rule != RuleMaxElapsed {
		t.Errorf("1s elapsed, a 1-2 min delay: %+v; want exhausted by max_elapsed", d)
	}
	// The retry count's limit still applies first.
	c.MaxRetries = 1
	if d := mustBuild(t, c).Decide(classFailure(retry.ClassServiceUnavailable, 1)); d.Rule != RuleMaxRetries {
		t.Errorf("retries out before time: %+v; want max_retries", d)
	}
	c.MaxElapsedMs = 0
	long.Elapsed = 1000 * time.Hour
	if d := mustBuild(t, c).Decide(long); !d.Retry {
		t.Errorf("no limit, 1000h elapsed: %+v; want a retry", d)
	}
	c.MaxElapsedMs = -1
	if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "maxElapsedMs: -1: ") {
		t.Errorf("Validate with maxElapsedMs -1: %v", err)
	}
	if _, err := NewRouter(RouterOptions{Strategies: []Strategy{None()}, Fallback: StrategyNone, MaxElapsed: -time.Second}); err == nil {
		t.Error("NewRouter took a negative MaxElapsed")
	}
}
