package memory_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// FuzzAgainstModel runs a sequence of operations, three bytes each, on the
// scheduler and on a plain model (a map scanned whole) and fails at the
// first difference in what is handed out or held: the heap's indexing
// (reschedule, cancel and ack anywhere in it) must be invisible.
func FuzzAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0, 2, 3, 2, 4, 10, 3, 0, 0, 2, 4, 30})
	f.Add([]byte{0, 1, 5, 0, 1, 9, 2, 0, 9, 0, 1, 2, 1, 1, 0, 2, 4, 40, 3, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 1, 1, 0, 2, 1, 0, 3, 1, 2, 1, 1, 2, 9, 20, 3, 1, 0, 2, 2, 60})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const lease = 10 * time.Second
		base := time.Unix(1_000_000_000, 0).UTC()
		s, err := memory.New(memory.Config{Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m := &model{entries: map[string]*modelEntry{}, lease: lease}
		ctx := context.Background()
		var last []retry.Delivery // the scheduler's last hand-out
		var lastModel []uint64    // the model's tokens for it
		for ; len(ops) >= 3; ops = ops[3:] {
			op, a, b := ops[0]%4, ops[1], ops[2]
			id := fmt.Sprintf("id%d", a%8)
			switch op {
			case 0: // schedule id at base + b seconds
				at := base.Add(time.Duration(b) * time.Second)
				if err := s.Schedule(ctx, id, at); err != nil {
					t.Fatal(err)
				}
				m.schedule(id, at)
			case 1:
				if err := s.Cancel(ctx, id); err != nil {
					t.Fatal(err)
				}
				delete(m.entries, id)
			case 2: // claim at base + b seconds, limit 1 to 4
				now, limit := base.Add(time.Duration(b)*time.Second), int(a%4)+1
				got, err := s.Claim(ctx, now, limit)
				if err != nil {
					t.Fatal(err)
				}
				want, tokens := m.claim(now, limit)
				if !slices.EqualFunc(got, want, func(g, w retry.Delivery) bool { return g.ID == w.ID && g.At.Equal(w.At) }) {
					t.Fatalf("Claim(+%ds, %d) = %v; model says %v", b, limit, got, want)
				}
				last, lastModel = got, tokens
			case 3: // ack the a-th delivery of the last claim
				if len(last) == 0 {
					continue
				}
				i := int(a) % len(last)
				if err := s.Ack(ctx, last[i]); err != nil {
					t.Fatal(err)
				}
				m.ack(last[i].ID, lastModel[i])
			}
			if s.Len() != len(m.entries) {
				t.Fatalf("scheduler holds %d entries; model %d", s.Len(), len(m.entries))
			}
		}
	})
}

// model is the scheduler's contract written the slow, obvious way.
type model struct {
	entries map[string]*modelEntry
	seq     uint64
	lease   time.Duration
}

type modelEntry struct {
	at, next  time.Time
	seq       uint64 // of the last schedule or delivery: ties and tokens
	delivered bool
}

func (m *model) schedule(id string, at time.Time) {
	m.seq++
	m.entries[id] = &modelEntry{at: at, next: at, seq: m.seq}
}

func (m *model) claim(now time.Time, limit int) ([]retry.Delivery, []uint64) {
	var due []string
	for id, e := range m.entries {
		if !e.next.After(now) {
			due = append(due, id)
		}
	}
	slices.SortFunc(due, func(a, b string) int {
		ea, eb := m.entries[a], m.entries[b]
		return cmp.Or(ea.next.Compare(eb.next), cmp.Compare(ea.seq, eb.seq))
	})
	var out []retry.Delivery
	var tokens []uint64
	for _, id := range due[:min(limit, len(due))] {
		e := m.entries[id]
		m.seq++
		e.seq, e.delivered, e.next = m.seq, true, now.Add(m.lease)
		out = append(out, retry.Delivery{ID: id, At: e.at})
		tokens = append(tokens, e.seq)
	}
	return out, tokens
}

func (m *model) ack(id string, token uint64) {
	if e := m.entries[id]; e != nil && e.delivered && e.seq == token {
		delete(m.entries, id)
	}
}
