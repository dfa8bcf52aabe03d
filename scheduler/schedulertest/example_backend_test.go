package schedulertest_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/schedulertest"
)

// A backend written outside this module certifies itself with one test.
// Each call of the factory starts from an empty table; Open gives the suite
// a second consumer on the same table, as a second process would have.
func TestTableScheduler(t *testing.T) {
	const lease = time.Minute
	schedulertest.Run(t, func(t *testing.T) schedulertest.Backend {
		tbl := &table{rows: map[string]*row{}}
		return schedulertest.Backend{
			Scheduler: openHandle(tbl, lease),
			Lease:     lease,
			Open:      func(*testing.T) retry.Scheduler { return openHandle(tbl, lease) },
		}
	})
}

// table is the shared state: a database table or a Redis key in a real
// backend. Claim scans it whole, which is fine for a small example.
type table struct {
	mu   sync.Mutex
	rows map[string]*row
	seq  int
}

type row struct {
	at    time.Time // the scheduled time
	next  time.Time // at, or the end of the current delivery's lease
	token string    // the current delivery's token; "" until delivered
}

// handle is one consumer's connection to the table. It signals Ready by
// polling, as a SQL-polling backend would.
type handle struct {
	tbl   *table
	lease time.Duration
	ready chan struct{}
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func openHandle(tbl *table, lease time.Duration) *handle {
	h := &handle{tbl: tbl, lease: lease, ready: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go h.poll(10 * time.Millisecond)
	return h
}

func (h *handle) poll(every time.Duration) {
	defer close(h.done)
	defer close(h.ready)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-tick.C:
			h.tbl.mu.Lock()
			due := h.anyDueLocked(now)
			h.tbl.mu.Unlock()
			if due {
				select {
				case h.ready <- struct{}{}:
				default:
				}
			}
		}
	}
}

// anyDueLocked reports whether an entry is due at now: a scan, not a
// sort, since it runs on every tick. The caller holds h.tbl.mu.
func (h *handle) anyDueLocked(now time.Time) bool {
	for _, r := range h.tbl.rows {
		if !r.next.After(now) {
			return true
		}
	}
	return false
}

// dueLocked returns the ids due at now, earliest first. The caller holds
// h.tbl.mu.
func (h *handle) dueLocked(now time.Time) (ids []string) {
	for id, r := range h.tbl.rows {
		if !r.next.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(h.tbl.rows[a].next.Compare(h.tbl.rows[b].next), cmp.Compare(a, b))
	})
	return ids
}

// closed wraps retry.ErrClosed once Close was called.
func (h *handle) closed(op string) error {
	select {
	case <-h.stop:
		return fmt.Errorf("%s: %w", op, retry.ErrClosed)
	default:
		return nil
	}
}

func (h *handle) checkID(op, id string) error {
	if id == "" {
		return fmt.Errorf("%s: empty id: %w", op, retry.ErrInvalidArgument)
	}
	return h.closed(op)
}

func (h *handle) Schedule(_ context.Context, id string, at time.Time) error {
	if err := h.checkID("schedule", id); err != nil {
		return err
	}
	h.tbl.mu.Lock()
	defer h.tbl.mu.Unlock()
	h.tbl.rows[id] = &row{at: at, next: at}
	return nil
}

func (h *handle) Cancel(_ context.Context, id string) error {
	if err := h.checkID("cancel", id); err != nil {
		return err
	}
	h.tbl.mu.Lock()
	defer h.tbl.mu.Unlock()
	delete(h.tbl.rows, id)
	return nil
}

func (h *handle) Claim(_ context.Context, now time.Time, limit int) ([]retry.Delivery, error) {
	if limit < 1 {
		return nil, fmt.Errorf("claim: limit %d below 1: %w", limit, retry.ErrInvalidArgument)
	}
	if err := h.closed("claim"); err != nil {
		return nil, err
	}
	h.tbl.mu.Lock()
	defer h.tbl.mu.Unlock()
	ids := h.dueLocked(now)
	var out []retry.Delivery
	for _, id := range ids[:min(limit, len(ids))] {
		r := h.tbl.rows[id]
		h.tbl.seq++
		r.token, r.next = strconv.Itoa(h.tbl.seq), now.Add(h.lease)
		out = append(out, retry.Delivery{ID: id, At: r.at, Token: r.token})
	}
	return out, nil
}

func (h *handle) Ack(_ context.Context, d retry.Delivery) error {
	if err := h.checkID("ack", d.ID); err != nil {
		return err
	}
	h.tbl.mu.Lock()
	defer h.tbl.mu.Unlock()
	if r := h.tbl.rows[d.ID]; r != nil && r.token != "" && r.token == d.Token {
		delete(h.tbl.rows, d.ID)
	}
	return nil
}

func (h *handle) Ready() <-chan struct{} { return h.ready }

func (h *handle) Close() error {
	err := fmt.Errorf("close: %w", retry.ErrClosed)
	h.once.Do(func() { close(h.stop); err = nil })
	<-h.done
	return err
}
