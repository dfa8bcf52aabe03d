package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/journeyretry/journeyretry/retry"
)

// RuleOverride prefixes the Rule of a decision made by the strategy an
// operator's replay named ("override:long"): see [Router.Override].
const RuleOverride = "override:"

var _ retry.Overridable = (*Router)(nil)

// Override implements [retry.Overridable]: under o, the permanent and
// non-retryable rules still come first; o.Strategy, when set, then
// decides every class (Rule "override:NAME"); o.MaxRetries, when set,
// replaces the router's limit and the limit of each [Exponential] and
// [Fixed] strategy (a strategy of your own keeps its own). An unknown
// strategy is an error naming the known ones.
func (r *Router) Override(o retry.PolicyOverride) (retry.Policy, error) {
	if o.IsZero() {
		return r, nil
	}
	c := *r
	limit := func(s Strategy) Strategy { return s }
	if o.MaxRetries != nil {
		n := *o.MaxRetries
		c.maxRetries = n
		limit = func(s Strategy) Strategy { return withMaxRetries(s, n) }
	}
	if o.Strategy != "" {
		i := slices.IndexFunc(r.strategies, func(s Strategy) bool { return s.Name() == o.Strategy })
		if i < 0 {
			names := make([]string, len(r.strategies))
			for i, s := range r.strategies {
				names[i] = s.Name()
			}
			return nil, fmt.Errorf("override: unknown strategy %q (known: %s): %w", o.Strategy, strings.Join(names, ", "), retry.ErrInvalidArgument)
		}
		c.routes, c.fallback = nil, route{s: limit(r.strategies[i]), rule: RuleOverride + o.Strategy}
		return &c, nil
	}
	c.routes = make(map[retry.Class]route, len(r.routes))
	for k, rt := range r.routes {
		c.routes[k] = route{s: limit(rt.s), rule: rt.rule}
	}
	c.fallback.s = limit(c.fallback.s)
	return &c, nil
}

// withMaxRetries returns s with its own retry limit n, for the strategies
// that have one.
func withMaxRetries(s Strategy, n int) Strategy {
	switch v := s.(type) {
	case Exponential:
		v.MaxRetries = n
		return v
	case Fixed:
		v.Max = n
		return v
	}
	return s
}
