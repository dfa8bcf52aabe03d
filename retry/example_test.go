package retry_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// errBadPhone is a node's own sentinel; classification wraps it, so callers
// still find it with errors.Is.
var errBadPhone = errors.New("invalid phone number")

// Node code classifies its errors by ordinary wrapping: a class picks the
// retry strategy, Permanent stops retries whatever the class, and
// RetryAfter passes on an upstream's requested delay. Policies read them
// back with ClassOf, IsPermanent and RequestedDelay, through any further
// wrapping with %w.
func Example() {
	limited := retry.RetryAfter(retry.WithClass(errors.New("clinic api: 429 Too Many Requests"), retry.ClassRateLimit), 30*time.Second)
	invalid := retry.Permanent(retry.WithClass(errBadPhone, retry.ClassValidation))
	plain := errors.New("something odd")

	for _, err := range []error{limited, invalid, plain} {
		err = fmt.Errorf("send reminder: %w", err) // callers wrap as usual
		delay, requested := retry.RequestedDelay(err)
		fmt.Printf("%-14s permanent=%-5v requested=%v %v  is errBadPhone=%v\n",
			retry.ClassOf(err), retry.IsPermanent(err), requested, delay, errors.Is(err, errBadPhone))
	}
	// Output:
	// rate_limit     permanent=false requested=true 30s  is errBadPhone=false
	// validation     permanent=true  requested=false 0s  is errBadPhone=true
	// unknown        permanent=false requested=false 0s  is errBadPhone=false
}
