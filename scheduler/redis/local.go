package redis

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// Bounds of what a handle keeps to itself.
const (
	// HoldMax is how long a handle holds a prefetched entry that none of
	// its Claims takes before it goes back to the due set for every
	// process: a busy process does not sit on due work that another could
	// do. (Held entries are also dropped from the hold at half the lease,
	// by the Claims' now.)
	HoldMax = 100 * time.Millisecond
	// AckDelay is how long a queued Ack or Schedule waits, at most, for a
	// pipeline or a Claim to ride on before it is sent alone.
	AckDelay = 5 * time.Millisecond
)

// local is what one handle keeps to itself: entries claimed ahead of its
// Claims (Config.Prefetch), and the Acks and Schedules not yet sent. The
// held entries are leased deliveries in Redis; the tender sends back what
// waits too long, and sends what is queued within AckDelay.
type local struct {
	mu     sync.Mutex
	held   []held           // earliest first
	acks   []retry.Delivery // queued, oldest first
	scheds []queued         // queued Schedules, oldest first, one per id
	since  time.Time        // when the oldest queued Ack or Schedule was queued
	kick   chan struct{}    // the tender's deadline may have moved
}

// queued is a Schedule not yet sent: its entry's id, due score (Unix ms)
// and time (Unix ns), as scheduleScript takes them.
type queued struct {
	id      string
	due, at int64
}

// held is an entry a Claim took for a later one.
type held struct {
	d       retry.Delivery
	due     int64     // its score, Unix ms: when a Claim may have it
	claimed time.Time // the claiming Claim's now: its lease began then
	at      time.Time // when it was taken, in real time
}

// hold keeps ds, claimed by a Claim at now, for the next Claims.
func (l *local) hold(ds []retry.Delivery, now, at time.Time) {
	l.mu.Lock()
	first := len(l.held) == 0
	for _, d := range ds {
		// Its score is ceilMs(d.At) when this package wrote it, and was
		// due at now in any case.
		due := min(ceilMs(d.At), now.UnixMilli())
		l.held = append(l.held, held{d: d, due: due, claimed: now, at: at})
	}
	l.mu.Unlock()
	if first { // later ones go back after the first: no earlier deadline
		l.poke()
	}
}

// take hands out up to limit held entries due at now, earliest first,
// dropping those whose lease (from their claim) is half gone: Redis hands
// them out again when it ends. more reports entries still held.
func (l *local) take(now time.Time, limit int, lease time.Duration) (out []retry.Delivery, more bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	nowMs := now.UnixMilli()
	l.held = slices.DeleteFunc(l.held, func(h held) bool {
		switch {
		case len(out) == limit || h.due > nowMs:
			return false // not due by this caller's clock: kept
		case now.Sub(h.claimed) >= lease/2:
			return true
		default:
			out = append(out, h.d)
			return true
		}
	})
	return out, len(l.held) > 0
}

// ack queues d's Ack.
func (l *local) ack(d retry.Delivery, now time.Time) {
	l.enqueue(now, func() int {
		l.acks = append(l.acks, d)
		return len(l.acks)
	})
}

// schedule queues q, in place of a queued Schedule of its id, and drops
// the entry's held delivery and queued Ack (see forget).
func (l *local) schedule(q queued, now time.Time) {
	l.enqueue(now, func() int {
		l.forgetLocked(q.id) // at worst the queue keeps an older since: sent sooner
		l.scheds = append(l.scheds, q)
		return len(l.scheds)
	})
}

// enqueue runs add, which appends to a queue and returns its length,
// under the lock, starting the queue's time at now when nothing was
// queued. The tender hears of the first of a queue, whose deadline the
// later ones share, and of a full queue.
func (l *local) enqueue(now time.Time, add func() int) {
	l.mu.Lock()
	first := len(l.acks) == 0 && len(l.scheds) == 0
	if first {
		l.since = now
	}
	full := add() == maxBatch
	l.mu.Unlock()
	if first || full {
		l.poke()
	}
}

// takeQueued returns the queued Acks and Schedules and empties the queue.
func (l *local) takeQueued() ([]retry.Delivery, []queued) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks, scheds := l.acks, l.scheds
	l.acks, l.scheds = nil, nil
	return acks, scheds
}

// forget drops the held entries, queued Acks and queued Schedule of each
// of ids: a Schedule or Cancel of it is on the way, which ends their
// deliveries in Redis and replaces the queued Schedule.
func (l *local) forget(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetLocked(ids...)
}

func (l *local) forgetLocked(ids ...string) {
	of := func(id string) bool { return slices.Contains(ids, id) }
	if len(ids) > 8 { // ScheduleMany's: a set, not a scan per entry
		set := make(map[string]bool, len(ids))
		for _, id := range ids {
			set[id] = true
		}
		of = func(id string) bool { return set[id] }
	}
	l.held = slices.DeleteFunc(l.held, func(h held) bool { return of(h.d.ID) })
	l.acks = slices.DeleteFunc(l.acks, func(d retry.Delivery) bool { return of(d.ID) })
	l.scheds = slices.DeleteFunc(l.scheds, func(q queued) bool { return of(q.id) })
}

// hasQueued reports whether an Ack or a Schedule of id is queued.
func (l *local) hasQueued(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.acks, func(d retry.Delivery) bool { return d.ID == id }) ||
		slices.ContainsFunc(l.scheds, func(q queued) bool { return q.id == id })
}

// due takes what is due for sending at now (every held entry, Ack and
// Schedule when all is set) and returns the next deadline, zero for none.
// The queue goes whole: its later calls ride on the oldest's pipeline.
func (l *local) due(now time.Time, all bool) (acks []retry.Delivery, scheds []queued, back []held, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if all || !now.Before(l.since.Add(AckDelay)) || len(l.acks) >= maxBatch || len(l.scheds) >= maxBatch {
		acks, scheds = l.acks, l.scheds
		l.acks, l.scheds = nil, nil
	}
	l.held = slices.DeleteFunc(l.held, func(h held) bool {
		if all || !now.Before(h.at.Add(HoldMax)) {
			back = append(back, h)
			return true
		}
		return false
	})
	if len(l.acks) > 0 || len(l.scheds) > 0 {
		next = l.since.Add(AckDelay)
	}
	for _, h := range l.held {
		if d := h.at.Add(HoldMax); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return acks, scheds, back, next
}

func (l *local) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// ackArgs is acks as the scripts take them: id, token, id, token...
func ackArgs(acks []retry.Delivery) []any {
	args := make([]any, 0, 2*len(acks))
	for _, d := range acks {
		args = append(args, d.ID, d.Token)
	}
	return args
}

// tend sends the queued Acks and Schedules that found nothing to ride on
// within AckDelay, and gives back the entries held past HoldMax, until
// Close.
// Its deadlines are real time, whatever Config.Now says: they bound how
// long this process keeps entries from the others.
func (s *Scheduler) tend() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.local.kick:
		case <-timer.C:
		}
		timer.Reset(time.Until(s.sendLocal(s.stopCtx, false)))
	}
}

// sendLocal sends, in one pipeline, what is due of the queued Acks and
// Schedules and of the held entries (all of them when all is set: Close),
// and returns when the next is due. Nothing is retried: a lost Ack or
// release leaves the entry in flight until its lease ends, when any
// process claims it; a lost Schedule leaves the entry as a failed one
// does (see [Scheduler.Schedule]).
func (s *Scheduler) sendLocal(ctx context.Context, all bool) (next time.Time) {
	acks, scheds, back, next := s.local.due(time.Now(), all)
	if next.IsZero() {
		next = time.Now().Add(time.Hour)
	}
	sends := s.queuedCalls(acks, scheds)
	if len(back) > 0 {
		args := make([]any, 0, 1+3*len(back))
		args = append(args, s.channel)
		for _, h := range back {
			args = append(args, h.d.ID, h.d.Token, h.due)
		}
		sends = append(sends, &scriptCall{script: releaseScript, args: args})
	}
	if len(sends) > 0 {
		s.sendQueued(ctx, sends)
	}
	return next
}

// sendQueuedOf sends the queue at once if an Ack or a Schedule of id is
// in it.
func (s *Scheduler) sendQueuedOf(ctx context.Context, id string) error {
	if !s.local.hasQueued(id) {
		return nil
	}
	return s.sendQueued(ctx, s.queuedCalls(s.local.takeQueued()))
}

// queuedCalls is the script calls that send acks and scheds: one ack
// script, and one schedule script per maxBatch Schedules.
func (s *Scheduler) queuedCalls(acks []retry.Delivery, scheds []queued) []*scriptCall {
	var sends []*scriptCall
	if len(acks) > 0 {
		sends = append(sends, &scriptCall{script: ackScript, args: ackArgs(acks)})
	}
	for chunk := range slices.Chunk(scheds, maxBatch) {
		sc := &scriptCall{script: scheduleScript, args: make([]any, 0, 1+3*len(chunk)), earliest: math.MaxInt64}
		sc.args = append(sc.args, s.channel)
		for _, q := range chunk {
			sc.args = append(sc.args, q.id, q.due, q.at)
			sc.earliest = min(sc.earliest, q.due)
		}
		sends = append(sends, sc)
	}
	return sends
}

// sendQueued sends calls in one pipeline, and returns the first error.
// Redis failing marks the scheduler down, so that Schedules go at once
// and report it; Redis answering marks it up.
func (s *Scheduler) sendQueued(ctx context.Context, calls []*scriptCall) error {
	s.pipeline(ctx, calls)
	var err error
	for _, sc := range calls {
		err = cmp.Or(err, sc.err)
	}
	s.down.Store(err != nil)
	return err
}
