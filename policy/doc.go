// Package policy decides when failed journey nodes are retried: the
// strategies of docs/design.md (immediate, short, long, none), an exponential
// backoff with a choice of jitter, eligibility rules on error messages and
// classes, and a [Router] that picks a strategy by error class.
//
// Every policy is a stateless value, safe for concurrent use, that computes
// its [retry.Decision] from a [retry.Failure] alone (the persisted retry
// count, the error's class and message, the previous delay), so a run that
// resumes in another process is treated the same. Randomness is injectable
// ([Rand]) for deterministic tests.
//
// Configuration is data: [Config] is the design's RetryConfig plus the
// routing table, loaded by package config and turned into a Router by
// [Config.Build]:
//
//	{
//	  "maxRetries": 3, "baseDelayMs": 1000, "maxDelayMs": 300000, "jitterMs": 1000,
//	  "jitter": "additive", "multiplier": 2,
//	  "retryableErrors": ["class:network_blip", "timeout", "re:(?i)^rate limit"],
//	  "nonRetryableErrors": ["class:validation"],
//	  "routes": {"rate_limit": "long", "billing_hold": "none"},
//	  "customClasses": ["billing_hold"],
//	  "strategies": {"short": {"baseDelayMs": 2000, "maxDelayMs": 10000, "multiplier": 2, "jitter": "equal"}}
//	}
//
// Delays never overflow and are never negative: retry n's backoff is
// computed in float64 and capped, and every configured delay is at most
// [MaxDelayLimit].
package policy
