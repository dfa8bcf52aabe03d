package redis

import (
	"context"
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
	// AckDelay is how long a queued Ack waits, at most, for a pipeline or
	// a Claim to ride on before it is sent alone.
	AckDelay = 5 * time.Millisecond
)

// local is what one handle keeps to itself: entries claimed ahead of its
// Claims (Config.Prefetch), and Acks not yet sent. Both are leased
// deliveries in Redis; the tender sends back what waits too long.
type local struct {
	mu    sync.Mutex
	held  []held           // earliest first
	acks  []retry.Delivery // queued, oldest first
	since time.Time        // when the oldest queued Ack was queued
	kick  chan struct{}    // the tender's deadline may have moved
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

// ack queues d's Ack. The tender hears of the first of a queue, whose
// deadline the later ones share, and of a full queue.
func (l *local) ack(d retry.Delivery, now time.Time) {
	l.mu.Lock()
	if len(l.acks) == 0 {
		l.since = now
	}
	l.acks = append(l.acks, d)
	n := len(l.acks)
	l.mu.Unlock()
	if n == 1 || n == maxBatch {
		l.poke()
	}
}

// takeAcks returns the queued Acks and empties the queue.
func (l *local) takeAcks() []retry.Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	acks := l.acks
	l.acks = nil
	return acks
}

// forget drops the held entries and queued Acks of id: its Schedule or
// Cancel is on the way, and ends their deliveries in Redis.
func (l *local) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = slices.DeleteFunc(l.held, func(h held) bool { return h.d.ID == id })
	l.acks = slices.DeleteFunc(l.acks, func(d retry.Delivery) bool { return d.ID == id })
}

// hasAck reports whether an Ack of id is queued.
func (l *local) hasAck(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.acks, func(d retry.Delivery) bool { return d.ID == id })
}

// due takes what is due for sending at now (every held entry and Ack when
// all is set) and returns the next deadline, zero for none.
func (l *local) due(now time.Time, all bool) (acks []retry.Delivery, back []held, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.acks) > 0 && (all || !now.Before(l.since.Add(AckDelay)) || len(l.acks) >= maxBatch) {
		acks, l.acks = l.acks, nil
	}
	l.held = slices.DeleteFunc(l.held, func(h held) bool {
		if all || !now.Before(h.at.Add(HoldMax)) {
			back = append(back, h)
			return true
		}
		return false
	})
	if len(l.acks) > 0 {
		next = l.since.Add(AckDelay)
	}
	for _, h := range l.held {
		if d := h.at.Add(HoldMax); next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return acks, back, next
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

// tend sends the queued Acks that found nothing to ride on within
// AckDelay, and gives back the entries held past HoldMax, until Close.
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
// held entries (all of them when all is set: Close), and returns when
// the next is due. Nothing is retried: a lost Ack or release leaves the
// entry in flight until its lease ends, when any process claims it.
func (s *Scheduler) sendLocal(ctx context.Context, all bool) (next time.Time) {
	acks, back, next := s.local.due(time.Now(), all)
	if next.IsZero() {
		next = time.Now().Add(time.Hour)
	}
	var sends []*scriptCall
	if len(acks) > 0 {
		sends = append(sends, &scriptCall{script: ackScript, args: ackArgs(acks)})
	}
	if len(back) > 0 {
		args := make([]any, 0, 1+3*len(back))
		args = append(args, s.channel)
		for _, h := range back {
			args = append(args, h.d.ID, h.d.Token, h.due)
		}
		sends = append(sends, &scriptCall{script: releaseScript, args: args})
	}
	if len(sends) > 0 {
		s.pipeline(ctx, sends)
	}
	return next
}

// sendAcksOf sends the queued Acks at once if one is of id.
func (s *Scheduler) sendAcksOf(ctx context.Context, id string) error {
	if !s.local.hasAck(id) {
		return nil
	}
	return ackScript.Run(ctx, s.rdb, s.keys, ackArgs(s.local.takeAcks())...).Err()
}
