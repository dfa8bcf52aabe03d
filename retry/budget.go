package retry

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Retry budgets. When a dependency dies, every run that calls it fails and
// asks for a retry at once; per-run backoff spreads each run's retries but
// not their sum. A budget bounds that sum for one error class (optionally
// of one node type), for every worker together: the store keeps its state
// and applies it in the transaction that records the failure, so every
// process sees the same counts and no retry is decided twice. A retry over
// the budget is deferred, never dropped: it is due at the budget's next
// free slot, and its attempt records the rule that deferred it.
//
// As Envoy's retry budget counts every request to a cluster (an attempt is
// not known to touch a dependency until it fails with its class), the
// retries of a class are compared with every attempt of the budget's scope:
// all attempts, or those of the node type for a per-node-type budget.

// BudgetBuckets is the number of buckets a budget's sliding window is
// counted in: a 60 s window moves by 10 s steps.
const BudgetBuckets = 6

// Defaults of [Budget]'s zero fields.
const (
	BudgetRatioDefault      = 0.2
	BudgetMinRetriesDefault = 10
	BudgetWindowDefault     = time.Minute
)

// Budget is the limit of one retry budget: over any Window, the retries of
// its class may be at most Ratio of its scope's attempts, and at least
// MinRetries are always allowed, so that a quiet system is never
// throttled (gRPC's and Envoy's budgets have the same two terms).
type Budget struct {
	// Ratio is the share of the attempts retries may make up; default
	// [BudgetRatioDefault]. Between 0 and 1.
	Ratio float64
	// MinRetries is the floor of retries per window; default
	// [BudgetMinRetriesDefault].
	MinRetries int
	// Window is the sliding window, counted in [BudgetBuckets] buckets;
	// default [BudgetWindowDefault]. A whole number of milliseconds per
	// bucket, at least one.
	Window time.Duration
}

// WithDefaults returns b with its zero fields set to their defaults.
func (b Budget) WithDefaults() Budget {
	if b.Ratio == 0 {
		b.Ratio = BudgetRatioDefault
	}
	if b.MinRetries == 0 {
		b.MinRetries = BudgetMinRetriesDefault
	}
	if b.Window == 0 {
		b.Window = BudgetWindowDefault
	}
	return b
}

// Validate names the first field out of range (zero fields mean their
// defaults), wrapping [ErrInvalidArgument].
func (b Budget) Validate() error {
	switch {
	case b.Ratio < 0 || b.Ratio > 1 || math.IsNaN(b.Ratio):
		return InvalidField("ratio", "%v: want 0 to 1 (0 for the default %v)", b.Ratio, BudgetRatioDefault)
	case b.MinRetries < 0:
		return InvalidField("minRetries", "%d: want at least 1 (0 for the default %d)", b.MinRetries, BudgetMinRetriesDefault)
	case b.Window < 0 || b.Window > 0 && b.Window < BudgetBuckets*time.Millisecond:
		return InvalidField("window", "%s: want at least %s (0 for the default %s)", b.Window, BudgetBuckets*time.Millisecond, BudgetWindowDefault)
	}
	return nil
}

// Limit is the retries b allows in a window that holds attempts attempts.
func (b Budget) Limit(attempts int64) int64 {
	b = b.WithDefaults()
	return max(int64(b.MinRetries), int64(b.Ratio*float64(attempts)))
}

// bucketMS is the width of one bucket of b's window, in milliseconds.
func (b Budget) bucketMS() int64 {
	return max(b.WithDefaults().Window.Milliseconds()/BudgetBuckets, 1)
}

// BudgetBucket returns the bucket now falls in, for b's window: attempts
// are counted per (scope, bucket), and a window is the bucket and the
// BudgetBuckets-1 before it.
func (b Budget) BudgetBucket(now time.Time) int64 { return now.UnixMilli() / b.bucketMS() }

// BudgetUse is what a failure or a success asks of a store's budgets (the
// executor fills it when budgets are enabled; the zero value asks
// nothing).
type BudgetUse struct {
	// Key names the budget a retry is charged to: the error class, or
	// "class@nodeType" for a per-node-type budget. Empty: no budget.
	Key string
	// Scope names the attempts the retries are compared with: "*" for
	// every attempt, "*@nodeType" for a per-node-type budget. The attempt
	// recorded counts in it (a success too). Empty: not counted.
	Scope string
	// Budget is the limit.
	Budget Budget
	// PauseUntil, when set, pauses Key's retries until then, for every
	// worker: an upstream's Retry-After on a rate limit.
	PauseUntil time.Time
}

// BudgetRule is the decision rule of a retry that budget key deferred;
// BudgetPausedRule that of a retry deferred by the pause of key.
func BudgetRule(key string) string       { return "budget:" + key }
func BudgetPausedRule(key string) string { return "budget:" + key + ":paused" }

// BudgetState is the persisted state of one budget key, which a store
// reads, changes with [BudgetState.Apply] and writes back in the
// transaction that records the failure. Its JSON is what the SQL store
// keeps; the field names are short because it is written on every
// budgeted failure.
//
// Deferral is GCRA (the generic cell rate algorithm, a leaky bucket kept
// as one time): with L retries allowed per window W, NextSlot is the time
// the budget is next free, advanced by W/L for each retry; a retry may run
// at once while NextSlot is at most W - W/L ahead of now (a burst of L),
// and is due at NextSlot - (W - W/L) otherwise. So the retries of a class
// in any window are at most about L, however many workers ask, and the
// deferred ones are spread over the following windows instead of all
// coming back at the end of this one.
type BudgetState struct {
	// Scope is the scope of the key's last use, whose attempts the status
	// compares with.
	Scope string `json:"sc,omitempty"`
	// Bucket is the bucket the newest entries of the rings count, of
	// width WidthMS.
	Bucket  int64 `json:"b"`
	WidthMS int64 `json:"w"`
	// Retries and Deferred count the retries allowed at once and those
	// deferred, per bucket, oldest first.
	Retries  [BudgetBuckets]int64 `json:"r"`
	Deferred [BudgetBuckets]int64 `json:"d"`
	// RetriesTotal and DeferredTotal count them since the key was first
	// used.
	RetriesTotal  int64 `json:"rt,omitempty"`
	DeferredTotal int64 `json:"dt,omitempty"`
	// NextSlot (Unix ms) is GCRA's theoretical arrival time.
	NextSlot int64 `json:"s,omitempty"`
	// PausedUntil (Unix ms) ends the key's pause.
	PausedUntil int64 `json:"p,omitempty"`
}

// roll moves the rings to the bucket of t (Unix ms) for buckets of
// widthMS: entries older than the window are dropped. A clock behind the
// newest bucket counts in it.
func (s *BudgetState) roll(widthMS, t int64) {
	cur := t / widthMS
	if s.WidthMS != widthMS {
		s.Retries, s.Deferred = [BudgetBuckets]int64{}, [BudgetBuckets]int64{}
		s.WidthMS, s.Bucket = widthMS, cur
		return
	}
	shift := cur - s.Bucket
	if shift <= 0 {
		return
	}
	if shift >= BudgetBuckets {
		s.Retries, s.Deferred = [BudgetBuckets]int64{}, [BudgetBuckets]int64{}
	} else {
		copy(s.Retries[:], s.Retries[shift:])
		copy(s.Deferred[:], s.Deferred[shift:])
		clear(s.Retries[BudgetBuckets-shift:])
		clear(s.Deferred[BudgetBuckets-shift:])
	}
	s.Bucket = cur
}

// Apply is what a store does with a budgeted failure recorded at now with
// decision d: it records u.PauseUntil and, when the failure leaves the run
// retrying, admits the retry against the budget, its scope's window
// holding attempts attempts (this one included). It returns the decision
// to record: d, or d deferred (a longer Delay, and Rule [BudgetRule] or
// [BudgetPausedRule]).
func (s *BudgetState) Apply(u BudgetUse, now time.Time, retrying bool, d Decision, attempts int64) Decision {
	s.pause(u)
	if !retrying {
		return d
	}
	if delay, rule := s.admit(u, now, d.Delay, attempts); rule != "" {
		d.Delay, d.Rule = delay, rule
	}
	return d
}

// admit decides a retry of u's budget asked at now with the policy's
// delay, and counts it. It returns the delay the retry gets and, when
// that is later than asked, the rule that deferred it; the rule is "" when
// the retry goes as asked.
func (s *BudgetState) admit(u BudgetUse, now time.Time, delay time.Duration, attempts int64) (time.Duration, string) {
	b := u.Budget.WithDefaults()
	t := now.UnixMilli()
	s.roll(b.bucketMS(), t)
	s.Scope = u.Scope
	w := b.Window.Milliseconds()
	emission := max(w/b.Limit(attempts), 1)
	tau := w - emission
	// A pause moves the retry's arrival to its end: the retries it held
	// back are spread from there, not released at once.
	arrive := max(t, s.PausedUntil)
	tat := max(s.NextSlot, arrive)
	slot := arrive
	if tat-arrive > tau {
		slot = tat - tau
	}
	s.NextSlot = tat + emission
	rule := ""
	if wait := time.Duration(slot-t) * time.Millisecond; wait > delay {
		delay, rule = wait, BudgetRule(u.Key)
		if s.PausedUntil > t && slot == arrive {
			rule = BudgetPausedRule(u.Key)
		}
	}
	if rule == "" {
		s.Retries[BudgetBuckets-1]++
		s.RetriesTotal++
	} else {
		s.Deferred[BudgetBuckets-1]++
		s.DeferredTotal++
	}
	return delay, rule
}

// pause records u.PauseUntil, if later than the pause already recorded.
func (s *BudgetState) pause(u BudgetUse) {
	if !u.PauseUntil.IsZero() {
		s.PausedUntil = max(s.PausedUntil, u.PauseUntil.UnixMilli())
	}
}

// Status is s read at now, for key, its scope's window holding attempts
// attempts.
func (s BudgetState) Status(key string, now time.Time, attempts int64) BudgetStatus {
	if s.WidthMS > 0 {
		s.roll(s.WidthMS, now.UnixMilli())
	}
	st := BudgetStatus{Key: key, Scope: s.Scope, Attempts: attempts,
		RetriesTotal: s.RetriesTotal, DeferredTotal: s.DeferredTotal,
		Window: time.Duration(s.WidthMS*BudgetBuckets) * time.Millisecond}
	for i := range BudgetBuckets {
		st.Retries += s.Retries[i]
		st.Deferred += s.Deferred[i]
	}
	if s.NextSlot > 0 {
		st.NextSlot = time.UnixMilli(s.NextSlot).UTC()
	}
	if s.PausedUntil > now.UnixMilli() {
		st.PausedUntil = time.UnixMilli(s.PausedUntil).UTC()
	}
	return st
}

// BudgetStatus is one budget as [BudgetInspector.Budgets] reads it.
type BudgetStatus struct {
	// Key is the budget's key, Scope the attempts it compares with.
	Key, Scope string
	// Window is the window its counts cover (ending at the read's now).
	Window time.Duration
	// Attempts counts the scope's attempts in the window; Retries the
	// retries allowed at once and Deferred those deferred, in the window.
	Attempts, Retries, Deferred int64
	// RetriesTotal and DeferredTotal count since the key was first used.
	RetriesTotal, DeferredTotal int64
	// NextSlot is when the budget is next free (its GCRA time); zero when
	// never used.
	NextSlot time.Time
	// PausedUntil ends a pause in force at the read's now; zero when none.
	PausedUntil time.Time
}

// BudgetInspector is an optional [Inspector] capability: the budgets a
// store keeps, for operators and metrics.
type BudgetInspector interface {
	// Budgets returns every budget key the store keeps, in key order, as
	// of now.
	Budgets(ctx context.Context, now time.Time) ([]BudgetStatus, error)
}

// String is one line for logs and the CLI.
func (b BudgetStatus) String() string {
	s := fmt.Sprintf("%s: %d retries, %d deferred, %d attempts of %s in the last %s (%d retried, %d deferred in all)",
		b.Key, b.Retries, b.Deferred, b.Attempts, b.Scope, b.Window, b.RetriesTotal, b.DeferredTotal)
	if !b.PausedUntil.IsZero() {
		s += ", paused until " + b.PausedUntil.Format(time.RFC3339)
	}
	return s
}
