// Package memory is the in-process [retry.Scheduler]: one timer over a
// min-heap of entries, for a single process whose workers share one
// scheduler value.
//
// It keeps nothing durable. That is by design: the store is the source of
// truth, and the executor rebuilds the scheduler from it on start, so a
// process that dies loses no retry.
//
// Cost: Schedule, Cancel and Ack are O(log n) (an id-to-entry map and an
// indexed heap); Claim is O(k log n) for k deliveries. However many entries
// are pending, there is one [time.Timer], armed for the earliest, and no
// goroutine per entry. A pending entry costs about 160 bytes of heap with a
// 36-byte id, half what one time.AfterFunc per entry costs (BENCHMARKS.md).
package memory

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// LeaseDefault is the default [Config.Lease].
const LeaseDefault = 30 * time.Second

// Config configures a [Scheduler]. The zero value is ready to use.
type Config struct {
	// Lease is how long a delivery may stay unacknowledged before the entry
	// is handed out again: a Claim at now >= (the delivering Claim's now) +
	// Lease redelivers it with a new token. It covers a worker that took a
	// wake-up and died before acting on it. Default LeaseDefault (30s); it
	// must not be negative.
	Lease time.Duration

	// Now is the clock the scheduler's timer follows to decide when to
	// signal Ready. It is read only for that: Claim compares due times with
	// its now argument, never with this clock. Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.Lease = cmp.Or(c.Lease, LeaseDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports a field that cannot be used, naming it.
func (c Config) Validate() error {
	if c.Lease < 0 {
		return fmt.Errorf("memory scheduler: %w", retry.InvalidField("Lease", "%v is negative", c.Lease))
	}
	return nil
}

// Scheduler is an in-memory [retry.Scheduler], safe for concurrent use by
// any number of consumers. Create it with [New].
type Scheduler struct {
	lease time.Duration
	now   func() time.Time
	ready chan struct{}
	timer *time.Timer // armed for armedAt when armed; fires s.fire

	mu      sync.Mutex
	byID    map[string]*entry
	heap    entryHeap
	seq     uint64 // last token handed to an entry
	armed   bool
	armedAt int64 // Unix nanoseconds
	closed  bool
}

var _ retry.Scheduler = (*Scheduler)(nil)

// New returns a running scheduler. Close it to stop its timer.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Scheduler{
		lease: cfg.Lease,
		now:   cfg.Now,
		ready: make(chan struct{}, 1),
		byID:  make(map[string]*entry),
	}
	s.timer = time.AfterFunc(math.MaxInt64, s.fire)
	s.timer.Stop()
	return s, nil
}

// Times are kept as Unix nanoseconds, 8 bytes each, which is what makes a
// pending entry small; those limit them to the years 1678 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano, saturated outside the years it can represent.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Schedule inserts id due at at, or moves it to at. Moving an entry that was
// delivered and not yet acknowledged cancels that delivery: its token goes
// stale and the entry is handed out again at its new time. An empty id, or
// at outside the years 1678 to 2262 (the zero time, say), wraps
// [retry.ErrInvalidArgument].
func (s *Scheduler) Schedule(ctx context.Context, id string, at time.Time) error {
	if id == "" {
		return fmt.Errorf("schedule: empty id: %w", retry.ErrInvalidArgument)
	}
	if at.Before(minTime) || at.After(maxTime) {
		return fmt.Errorf("schedule %q: at %v outside years 1678 to 2262: %w", id, at, retry.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("schedule %q: %w", id, err)
	}
	due := at.UnixNano()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("schedule %q: %w", id, retry.ErrClosed)
	}
	s.seq++
	e, ok := s.byID[id]
	if ok {
		e.at, e.next, e.token, e.delivered = due, due, s.seq, false
		s.heap.fix(int(e.index))
	} else {
		// The map key and the entry share one private copy of the id, so
		// a caller's id that points into a larger buffer does not keep
		// that buffer alive.
		id = strings.Clone(id)
		e = &entry{id: id, at: due, next: due, token: s.seq}
		s.byID[id] = e
		s.heap.push(e)
	}
	if e.index == 0 {
		s.wake(s.now())
	}
	return nil
}

// Cancel removes id; an absent id is not an error. An empty id wraps
// [retry.ErrInvalidArgument].
func (s *Scheduler) Cancel(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("cancel: empty id: %w", retry.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cancel %q: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("cancel %q: %w", id, retry.ErrClosed)
	}
	if e, ok := s.byID[id]; ok {
		s.remove(e)
	}
	return nil
}

// Claim hands out up to limit entries due at or before now, earliest first
// (entries due at the same time in the order they were scheduled). Each is
// leased to the caller until now + Lease; an entry redelivered after its
// lease ran out comes in the order its lease expired. A limit below 1 wraps
// [retry.ErrInvalidArgument]; after Close, Claim wraps [retry.ErrClosed].
func (s *Scheduler) Claim(ctx context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("claim: limit %d below 1: %w", limit, retry.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	n := unixNano(now)
	until := unixNano(now.Add(s.lease))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("claim: %w", retry.ErrClosed)
	}
	var out []retry.Delivery
	for len(out) < limit && len(s.heap) > 0 && s.heap[0].next <= n {
		e := s.heap[0]
		s.seq++
		e.token, e.delivered, e.next = s.seq, true, until
		s.heap.fix(0)
		out = append(out, retry.Delivery{
			ID:    e.id,
			At:    time.Unix(0, e.at).UTC(),
			Token: strconv.FormatUint(e.token, 36),
		})
	}
	// Judged by the caller's now, not the clock: a consumer whose clock is
	// behind the scheduler's still gets a timer for what it was too early
	// for, and one that left due entries behind gets another signal.
	s.wake(now)
	return out, nil
}

// Ack removes the delivered entry, unless it was rescheduled or redelivered
// since d was handed out (d.Token is stale), in which case it does nothing.
// Acknowledging an entry that is gone is not an error. An empty d.ID wraps
// [retry.ErrInvalidArgument].
func (s *Scheduler) Ack(ctx context.Context, d retry.Delivery) error {
	if d.ID == "" {
		return fmt.Errorf("ack: empty id: %w", retry.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ack %q: %w", d.ID, err)
	}
	// A token this scheduler never issued matches no entry.
	token, err := strconv.ParseUint(d.Token, 36, 64)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("ack %q: %w", d.ID, retry.ErrClosed)
	}
	if e, ok := s.byID[d.ID]; ok && err == nil && e.delivered && e.token == token {
		s.remove(e)
	}
	return nil
}

// Ready receives a value when the earliest entry's time comes by the
// configured clock (or, after a Claim whose now was too early for it, by
// that now plus the time it was short), when an entry that is already due
// is scheduled, when an unacknowledged delivery's lease runs out (the
// earliest entry is then that redelivery), and after a Claim that left due
// entries behind. A value may
// be spurious (the
// entry was cancelled, or another consumer took it): Claim and wait again.
// The channel holds one value, so a busy consumer misses nothing, and it is
// closed by Close.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Close stops the timer, drops every entry and closes the Ready channel. It
// returns at once; every later call, Close included, wraps
// [retry.ErrClosed].
func (s *Scheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("close: %w", retry.ErrClosed)
	}
	s.closed = true
	s.timer.Stop()
	s.byID, s.heap = nil, nil
	close(s.ready)
	return nil
}

// Len returns the number of entries held, delivered-not-acknowledged ones
// included: for metrics and tests.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.heap)
}

func (s *Scheduler) remove(e *entry) {
	s.heap.remove(int(e.index))
	delete(s.byID, e.id)
	// Removing the earliest entry leaves the timer armed early: it fires,
	// finds nothing due and re-arms for the new earliest.
}

// fire runs on the timer's goroutine.
func (s *Scheduler) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.armed = false
	s.wake(s.now())
}

// wake signals Ready if the earliest entry is due at now, and otherwise
// makes sure the timer fires no later than its time. Called with s.mu held
// whenever the earliest entry may have changed to an earlier one, and after
// every Claim.
func (s *Scheduler) wake(now time.Time) {
	if len(s.heap) == 0 {
		return
	}
	next := s.heap[0].next
	if s.armed && s.armedAt <= next {
		return // the timer fires in time; fire calls wake again
	}
	if d := time.Unix(0, next).Sub(now); d > 0 {
		s.armed, s.armedAt = true, next
		s.timer.Reset(d)
		return
	}
	select {
	case s.ready <- struct{}{}:
	default: // a signal is already pending
	}
}

// entry is one pending id: 48 bytes, plus the id and a map slot.
type entry struct {
	id        string
	at        int64  // the scheduled time, Unix nanoseconds
	next      int64  // the heap key: at, or the lease's end once delivered
	token     uint64 // sequence of the last schedule or delivery: the token, and the tie-break
	index     int32  // position in the heap
	delivered bool
}

// entryHeap is a min-heap on (next, token) whose entries know their index,
// so an entry anywhere in it is moved or removed in O(log n).
type entryHeap []*entry

func (h entryHeap) less(i, j int) bool {
	a, b := h[i], h[j]
	return a.next < b.next || a.next == b.next && a.token < b.token
}

func (h entryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = int32(i)
	h[j].index = int32(j)
}

func (h *entryHeap) push(e *entry) {
	e.index = int32(len(*h))
	*h = append(*h, e)
	h.up(len(*h) - 1)
}

func (h *entryHeap) remove(i int) {
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	if i != last {
		h.fix(i)
	}
}

func (h entryHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h entryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down reports whether the entry moved.
func (h entryHeap) down(i int) bool {
	start := i
	for {
		child := 2*i + 1
		if child >= len(h) {
			break
		}
		if r := child + 1; r < len(h) && h.less(r, child) {
			child = r
		}
		if !h.less(child, i) {
			break
		}
		h.swap(i, child)
		i = child
	}
	return i > start
}
