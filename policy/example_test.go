package policy_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

// The executor's default: a Router built from configuration. Node code
// classifies its errors by wrapping; the router picks the strategy.
func ExampleConfig_Build() {
	cfg := policy.DefaultConfig()
	cfg.NonRetryableErrors = []string{"re:(?i)invalid patient"}
	r, err := cfg.Build()
	if err != nil {
		fmt.Println(err)
		return
	}

	// A rate limit with a Retry-After: the long strategy, the asked delay.
	err = fmt.Errorf("call clinic: %w", retry.RetryAfter(retry.WithClass(errors.New("429"), retry.ClassRateLimit), 90*time.Second))
	d := r.Decide(retry.NewFailure(err, 0, 0))
	fmt.Println(d.Retry, d.Delay, d.Strategy, d.Rule)

	// A network blip, third failure of the node: immediate, at most 1 s.
	d = r.Decide(retry.NewFailure(retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip), 2, 0))
	fmt.Println(d.Retry, d.Delay <= time.Second, d.Strategy, d.Rule)

	// The fourth failure: the retries (maxRetries 3) ran out.
	d = r.Decide(retry.NewFailure(retry.WithClass(errors.New("connection reset"), retry.ClassNetworkBlip), 3, 0))
	fmt.Println(d.Retry, d.Exhausted, d.Rule)

	// A non-retryable rule wins over the table.
	d = r.Decide(retry.NewFailure(errors.New("Invalid patient record: no date of birth"), 0, 0))
	fmt.Println(d.Retry, d.Strategy, d.Rule)
	// Output:
	// true 1m30s long retry_after
	// true true immediate class:network_blip
	// false true max_retries
	// false none nonretryable:0
}

// Delay bounds of each strategy, as the demo's explain command prints them.
func ExampleRouter_Strategies() {
	r, _ := policy.DefaultConfig().Build()
	for _, s := range r.Strategies() {
		fmt.Printf("%-12s", s.Name())
		if _, _, ok := s.Bounds(0); !ok {
			fmt.Print(" never retries")
		}
		for n := range 4 {
			if lo, hi, ok := s.Bounds(n); ok {
				fmt.Printf(" [%v %v]", lo, hi)
			}
		}
		fmt.Println()
	}
	// Output:
	// exponential  [1s 2s] [2s 3s] [4s 5s] [8s 9s]
	// immediate    [0s 100ms] [0s 200ms] [0s 400ms] [0s 800ms]
	// long         [1m0s 2m0s] [2m0s 4m0s] [4m0s 8m0s] [5m0s 10m0s]
	// none         never retries
	// short        [1s 2s] [2s 4s] [4s 8s] [5s 10s]
}

// The jitter-free schedule of an exponential policy, for exact checks.
func ExampleExponential_Backoff() {
	e := policy.Default()
	for n := range 4 {
		fmt.Print(e.Backoff(n), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s
}
