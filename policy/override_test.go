package policy_test

import (
	"errors"
	"testing"

	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

func TestRouterOverride(t *testing.T) {
	r, err := policy.DefaultConfig().Build()
	if err != nil {
		t.Fatal(err)
	}
	blip := retry.Failure{Class: retry.ClassNetworkBlip, RetryCount: 5}
	if d := r.Decide(blip); d.Retry || !d.Exhausted {
		t.Fatalf("without an override, retry 6 of a network blip: %+v; want exhausted (limit 3)", d)
	}
	ten := 10
	for _, tc := range []struct {
		o            retry.PolicyOverride
		f            retry.Failure
		retry        bool
		strategy     string
		rule         string
		wantExhausts bool
	}{
		{retry.PolicyOverride{Strategy: policy.StrategyLong}, retry.Failure{Class: retry.ClassNetworkBlip}, true, policy.StrategyLong, "override:long", false},
		{retry.PolicyOverride{Strategy: policy.StrategyLong}, retry.Failure{Class: retry.ClassNetworkBlip, RetryCount: 3}, false, policy.StrategyLong, policy.RuleMaxRetries, true},
		{retry.PolicyOverride{Strategy: policy.StrategyLong}, retry.Failure{Class: retry.ClassNetworkBlip, Permanent: true}, false, policy.StrategyNone, policy.RulePermanent, false},
		{retry.PolicyOverride{MaxRetries: &ten}, blip, true, policy.StrategyImmediate, "class:network_blip", false},
		{retry.PolicyOverride{MaxRetries: &ten}, retry.Failure{Class: retry.ClassNetworkBlip, RetryCount: 10}, false, policy.StrategyImmediate, policy.RuleMaxRetries, true},
		{retry.PolicyOverride{Strategy: policy.StrategyShort, MaxRetries: &ten}, blip, true, policy.StrategyShort, "override:short", false},
	} {
		p, err := r.Override(tc.o)
		if err != nil {
			t.Fatalf("Override(%+v): %v", tc.o, err)
		}
		d := p.Decide(tc.f)
		if d.Retry != tc.retry || d.Strategy != tc.strategy || d.Rule != tc.rule || d.Exhausted != tc.wantExhausts {
			t.Errorf("Override(%+v).Decide(%+v) = %+v; want retry %v, strategy %s, rule %s, exhausted %v",
				tc.o, tc.f, d, tc.retry, tc.strategy, tc.rule, tc.wantExhausts)
		}
	}
	if d := r.Decide(blip); d.Retry {
		t.Fatalf("an override changed the router itself: %+v", d)
	}
	if _, err := r.Override(retry.PolicyOverride{Strategy: "nope"}); !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("Override with an unknown strategy: %v; want ErrInvalidArgument", err)
	}
	if p, err := r.Override(retry.PolicyOverride{}); err != nil || p != retry.Policy(r) {
		t.Fatalf("Override(zero) = %v, %v; want the router itself", p, err)
	}
}
