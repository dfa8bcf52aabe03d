package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Run: go test -run '^$' -bench . -benchmem ./policy/
// Targets (reported in BENCHMARKS.md, never asserted): an exponential
// decision with jitter under 100 ns and 0 allocs; the router with 10
// substring/class rules under 1 µs.

var sink retry.Decision

func BenchmarkExponentialDecide(b *testing.B) {
	for _, j := range Jitters {
		b.Run(string(j), func(b *testing.B) {
			e := Default()
			e.Jitter = j
			e.MaxRetries = 1 << 30
			f := retry.Failure{Class: retry.ClassTimeout, Message: "context deadline exceeded", PrevDelay: 4 * time.Second}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				f.RetryCount = i & 15
				sink = e.Decide(f)
			}
		})
	}
}

// routerRules returns 10 rules of the given kinds, none of which matches
// the benchmark's message: every rule is evaluated on every decision.
func routerRules(kind string) []string {
	var rules []string
	for i := range 5 {
		switch kind {
		case "substring":
			rules = append(rules, fmt.Sprintf("upstream error %d", i), fmt.Sprintf("class:%s", retry.BuiltinClasses[i+6]))
		case "regexp":
			rules = append(rules, fmt.Sprintf(`re:(?i)upstream error \d+ on shard %d`, i), fmt.Sprintf(`re:^node \w+ failed: code %d$`, i))
		}
	}
	return rules
}

func BenchmarkRouterDecide(b *testing.B) {
	msg := "call clinic api: POST https://clinic.example/v1/slots: 429 Too Many Requests (retry later)"
	for _, kind := range []string{"substring", "regexp"} {
		b.Run("10rules-"+kind, func(b *testing.B) {
			c := DefaultConfig()
			c.NonRetryableErrors = routerRules(kind)[:5]
			c.RetryableErrors = routerRules(kind)[5:]
			r, err := c.Build()
			if err != nil {
				b.Fatal(err)
			}
			f := retry.Failure{Class: retry.ClassRateLimit, Message: msg, RetryCount: 1}
			b.ReportAllocs()
			for b.Loop() {
				sink = r.Decide(f)
			}
		})
	}
	b.Run("no-rules", func(b *testing.B) {
		r, err := DefaultConfig().Build()
		if err != nil {
			b.Fatal(err)
		}
		f := retry.Failure{Class: retry.ClassNetworkBlip, Message: msg}
		b.ReportAllocs()
		for b.Loop() {
			sink = r.Decide(f)
		}
	})
}
