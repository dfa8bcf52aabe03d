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

// BudgetHorizon is how many windows of bookings a budget keeps: a retry
// due later than that past the first booked bucket is not counted (its own
// delay spreads it).
const BudgetHorizon = 5

// slotBuckets is the length of BudgetState.Slots: two windows before the
// latest decision's bucket (a worker whose clock is behind another's by
// up to a window still books in its own bucket), and the horizon.
const slotBuckets = BudgetBuckets * (2 + BudgetHorizon)

// BudgetState is the persisted state of one budget key, which a store
// reads, changes with [BudgetState.Apply] and writes back in the
// transaction that records the failure. Its JSON is what the SQL store
// keeps; the field names are short because it is written on every
// budgeted failure.
//
// Each retry the budget lets through is booked in the bucket it is due
// in, and a bucket takes a retry only while it and the BudgetBuckets-1
// buckets before it hold fewer than the limit: so every BudgetBuckets
// consecutive buckets (a window) hold at most the limit, however many
// workers ask. A retry whose bucket is full is deferred to the first
// bucket with room, spread evenly inside it, so that the deferred retries
// come back at the budget's pace instead of all at the window's end. The
// bookings move forward with the storm: buckets dropped from their start
// while still ahead of now are full (the search passed them), so a
// backlog of any length keeps the pace. A retry due beyond the bookings'
// end (a policy delay longer than the horizon) is not counted.
type BudgetState struct {
	// Scope is the scope of the key's last use, whose attempts the status
	// compares with.
	Scope string `json:"sc,omitempty"`
	// WindowMS is the window of the key's last use; WidthMS the width of
	// a bucket of it. Bucket is the bucket the newest entries of Retries
	// and Deferred count (the last decision's).
	WindowMS int64 `json:"win"`
	WidthMS  int64 `json:"w"`
	Bucket   int64 `json:"b"`
	// Retries and Deferred count the decisions per bucket, oldest first:
	// retries let through as asked, and deferred ones.
	Retries  [BudgetBuckets]int64 `json:"r"`
	Deferred [BudgetBuckets]int64 `json:"d"`
	// RetriesTotal and DeferredTotal count them since the key was first
	// used.
	RetriesTotal  int64 `json:"rt,omitempty"`
	DeferredTotal int64 `json:"dt,omitempty"`
	// Slots counts the retries booked per bucket, by due time, from
	// bucket SlotFirst on: at least the two windows before now, and the
	// buckets ahead.
	SlotFirst int64              `json:"sf"`
	Slots     [slotBuckets]int64 `json:"sl"`
	// PausedUntil (Unix ms) ends the key's pause.
	PausedUntil int64 `json:"p,omitempty"`
}

// shift drops the first n entries of a, moving the rest to its start.
func shift(a []int64, n int64) {
	if n >= int64(len(a)) {
		clear(a)
		return
	}
	copy(a, a[n:])
	clear(a[int64(len(a))-n:])
}

// roll moves the rings to the bucket of t (Unix ms) for buckets of
// widthMS: entries older than the window are dropped. A clock behind the
// newest bucket counts in it.
func (s *BudgetState) roll(widthMS, t int64) {
	cur := t / widthMS
	if s.WidthMS != widthMS {
		*s = BudgetState{Scope: s.Scope, RetriesTotal: s.RetriesTotal, DeferredTotal: s.DeferredTotal,
			PausedUntil: s.PausedUntil, WidthMS: widthMS, Bucket: cur, SlotFirst: cur - 2*BudgetBuckets + 1}
		return
	}
	if n := cur - s.Bucket; n > 0 {
		shift(s.Retries[:], n)
		shift(s.Deferred[:], n)
		s.Bucket = cur
	}
	s.moveSlots(cur - 2*BudgetBuckets + 1)
}

// moveSlots moves the start of the bookings to bucket first, if later.
func (s *BudgetState) moveSlots(first int64) {
	if n := first - s.SlotFirst; n > 0 {
		shift(s.Slots[:], n)
		s.SlotFirst = first
	}
}

// Apply is what a store does with a budgeted failure recorded at now with
// decision d: it records u.PauseUntil and, when the failure leaves the run
// retrying, admits the retry against the budget, its scope's window
// holding attempts() attempts (this one included; called only when the
// window holds the floor already, so that a quiet budget costs no count).
// It returns the decision
// to record: d, or d deferred (a longer Delay, and Rule [BudgetRule] or
// [BudgetPausedRule]).
func (s *BudgetState) Apply(u BudgetUse, now time.Time, retrying bool, d Decision, attempts func() int64) Decision {
	if !u.PauseUntil.IsZero() {
		s.PausedUntil = max(s.PausedUntil, u.PauseUntil.UnixMilli())
	}
	b := u.Budget.WithDefaults()
	s.roll(b.bucketMS(), now.UnixMilli())
	s.Scope, s.WindowMS = u.Scope, b.Window.Milliseconds()
	if !retrying {
		return d
	}
	if delay, rule := s.admit(u, now, d.Delay, attempts); rule != "" {
		d.Delay, d.Rule = delay, rule
	}
	return d
}

// admit books a retry of u's budget asked at now with the policy's delay.
// It returns the delay the retry gets and, when that is later than asked,
// the rule that deferred it; the rule is "" when the retry goes as asked.
func (s *BudgetState) admit(u BudgetUse, now time.Time, delay time.Duration, attempts func() int64) (time.Duration, string) {
	b := u.Budget.WithDefaults()
	w, t := b.bucketMS(), now.UnixMilli()
	limit, counted := int64(b.MinRetries), false // the floor, until a window holds it
	due := t + delay.Milliseconds()
	arrive := max(due, s.PausedUntil) // a pause moves the retry to its end
	// Slots[i] is bucket SlotFirst+i. A bucket's window must be in the
	// bookings: the search starts at the first such bucket.
	window := func(bucket int64) (n int64) {
		for i := bucket - BudgetBuckets + 1 - s.SlotFirst; i <= bucket-s.SlotFirst; i++ {
			n += s.Slots[i]
		}
		return n
	}
	slot := arrive
	if bucket := max(arrive/w, s.SlotFirst+BudgetBuckets-1); bucket-s.SlotFirst < slotBuckets+BudgetBuckets {
		for { // else due beyond the bookings and the window after them: not counted
			if bucket-s.SlotFirst >= slotBuckets {
				s.moveSlots(bucket - slotBuckets + 1) // the buckets passed are full
			}
			n := window(bucket)
			if n >= limit && !counted {
				limit, counted = b.Limit(attempts()), true
			}
			if n < limit {
				break
			}
			bucket++
		}
		i := bucket - s.SlotFirst
		if bucket > arrive/w { // deferred: the k-th booked at k/limit of the bucket
			slot = bucket*w + s.Slots[i]*w/limit
		}
		s.Slots[i]++
	}
	rule := ""
	if slot > due {
		delay, rule = time.Duration(slot-t)*time.Millisecond, BudgetRule(u.Key)
		if s.PausedUntil > due { // the pause held it back, the budget maybe after it
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

// Status is s read at now, for key, its scope's window holding attempts
// attempts.
func (s BudgetState) Status(key string, now time.Time, attempts int64) BudgetStatus {
	if s.WidthMS > 0 {
		s.roll(s.WidthMS, now.UnixMilli())
	}
	st := BudgetStatus{Key: key, Scope: s.Scope, Attempts: attempts,
		RetriesTotal: s.RetriesTotal, DeferredTotal: s.DeferredTotal,
		Window: time.Duration(s.WindowMS) * time.Millisecond}
	for i := range BudgetBuckets {
		st.Retries += s.Retries[i]
		st.Deferred += s.Deferred[i]
	}
	for i := slotBuckets - 1; i >= 0; i-- {
		if end := (s.SlotFirst + int64(i) + 1) * s.WidthMS; s.Slots[i] > 0 && end > now.UnixMilli() {
			st.BookedUntil = time.UnixMilli(end).UTC()
			break
		}
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
	// BookedUntil is the end of the last bucket holding a retry booked
	// ahead of the read's now (deferred retries still to come); zero when
	// none.
	BookedUntil time.Time
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
	s := fmt.Sprintf("%s: %d retries, %d deferred, %d attempts (scope %s) in the last %s; %d retried, %d deferred in all",
		b.Key, b.Retries, b.Deferred, b.Attempts, b.Scope, b.Window, b.RetriesTotal, b.DeferredTotal)
	if !b.BookedUntil.IsZero() {
		s += ", booked until " + b.BookedUntil.Format(time.RFC3339)
	}
	if !b.PausedUntil.IsZero() {
		s += ", paused until " + b.PausedUntil.Format(time.RFC3339)
	}
	return s
}
