package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

// The benchmarks compare, in one run, the heap scheduler with the naive
// design it replaces: one time.AfterFunc per entry. BENCHMARKS.md has the
// commands and figures.

// design is what the benchmarks drive, whatever the implementation.
type design interface {
	Schedule(ctx context.Context, id string, at time.Time) error
	Ready() <-chan struct{}
	// take hands out and acknowledges everything due at now.
	take(now time.Time) []retry.Delivery
	Close() error
}

var designs = []struct {
	name string
	new  func() design
}{
	{"heap", func() design {
		s, err := memory.New(memory.Config{})
		if err != nil {
			panic(err)
		}
		return heapDesign{s}
	}},
	{"afterfunc", func() design { return newAfterFunc() }},
}

type heapDesign struct{ *memory.Scheduler }

func (h heapDesign) take(now time.Time) []retry.Delivery {
	var all []retry.Delivery
	for {
		ds, err := h.Claim(context.Background(), now, 1024)
		if err != nil || len(ds) == 0 {
			return all
		}
		for _, d := range ds {
			_ = h.Ack(context.Background(), d)
		}
		all = append(all, ds...)
	}
}

// afterFunc is the naive design: one runtime timer per entry, whose
// function moves the entry to a due list and signals Ready.
type afterFunc struct {
	mu     sync.Mutex
	timers map[string]*time.Timer
	due    []retry.Delivery
	ready  chan struct{}
}

func newAfterFunc() *afterFunc {
	return &afterFunc{timers: make(map[string]*time.Timer), ready: make(chan struct{}, 1)}
}

func (a *afterFunc) Schedule(_ context.Context, id string, at time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.timers[id]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(at), func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.timers[id] != t {
			return // replaced after it fired
		}
		delete(a.timers, id)
		a.due = append(a.due, retry.Delivery{ID: id, At: at})
		select {
		case a.ready <- struct{}{}:
		default:
		}
	})
	a.timers[id] = t
	return nil
}

func (a *afterFunc) Ready() <-chan struct{} { return a.ready }

func (a *afterFunc) take(time.Time) []retry.Delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := a.due
	a.due = nil
	return ds
}

func (a *afterFunc) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.timers {
		t.Stop()
	}
	a.timers = nil
	return nil
}

// runID returns a run id shaped like the store's: a 36-byte UUID string.
func runID(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(i*2654435761), i&0xffff, i&0xfff, (i>>12)&0xfff, i)
}

// future returns a time one to two hours ahead, so no entry comes due
// while a benchmark runs.
func future(r *rand.Rand) time.Time {
	return time.Now().Add(time.Hour + time.Duration(r.Int64N(int64(time.Hour))))
}

const pending = 1_000_000

// BenchmarkPending measures the heap that pending entries with 36-byte ids
// keep alive, ids included. One pass outlasts the default -benchtime, so it
// runs once.
func BenchmarkPending(b *testing.B) {
	for _, d := range designs {
		b.Run(d.name, func(b *testing.B) {
			for b.Loop() {
				before := heapAlloc()
				s := d.new()
				r := rand.New(rand.NewPCG(1, 2))
				for i := range pending {
					if err := s.Schedule(context.Background(), runID(i), future(r)); err != nil {
						b.Fatal(err)
					}
				}
				held := heapAlloc() - before
				runtime.KeepAlive(s)
				b.ReportMetric(float64(held)/pending, "B/entry")
				b.ReportMetric(float64(held)/1e6, "MB/1M")
				_ = s.Close()
			}
		})
	}
}

func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkSchedule measures one Schedule: insert grows a scheduler to a
// million entries (then starts a new one), reschedule moves entries of a
// full one.
func BenchmarkSchedule(b *testing.B) {
	ids := make([]string, pending)
	for i := range ids {
		ids[i] = runID(i)
	}
	r := rand.New(rand.NewPCG(3, 4))
	times := make([]time.Time, pending)
	for i := range times {
		times[i] = future(r)
	}
	ctx := context.Background()
	for _, d := range designs {
		b.Run(d.name+"/insert", func(b *testing.B) {
			s, i := d.new(), 0
			for b.Loop() {
				if i == pending {
					b.StopTimer()
					_ = s.Close()
					s, i = d.new(), 0
					runtime.GC()
					b.StartTimer()
				}
				_ = s.Schedule(ctx, ids[i], times[i])
				i++
			}
			_ = s.Close()
		})
		b.Run(d.name+"/reschedule", func(b *testing.B) {
			s := d.new()
			for i, id := range ids {
				_ = s.Schedule(ctx, id, times[i])
			}
			runtime.GC()
			i := 0
			for b.Loop() {
				_ = s.Schedule(ctx, ids[i%pending], times[(i+pending/2)%pending])
				i++
			}
			_ = s.Close()
		})
	}
}

// BenchmarkLateness schedules entries at 10,000 a second for five seconds
// on the real clock, each due 1 to 100 ms after it is scheduled, while a
// consumer loops on Ready and takes what is due, and reports the time of
// the take minus the due time. With background, a million entries due in
// hours wait in the scheduler too. One pass outlasts the default
// -benchtime, so it runs once.
func BenchmarkLateness(b *testing.B) {
	for _, background := range []int{0, pending} {
		for _, d := range designs {
			b.Run(fmt.Sprintf("%s/background=%d", d.name, background), func(b *testing.B) {
				for b.Loop() {
					lateness(b, d.new(), background)
				}
			})
		}
	}
}

func lateness(b *testing.B, s design, background int) {
	const rate, seconds = 10_000, 5
	const total = rate * seconds
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range background {
		_ = s.Schedule(ctx, runID(i), future(r))
	}
	runtime.GC()

	late := make([]time.Duration, 0, total)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for len(late) < total {
			<-s.Ready()
			ds := s.take(time.Now())
			// Stamped once the entries are in hand, which also counts
			// the Claim and Ack of the heap design against it.
			now := time.Now()
			for _, d := range ds {
				late = append(late, now.Sub(d.At))
			}
		}
	}()

	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	for n := 0; n < total; {
		now := <-tick.C
		for target := min(total, int(now.Sub(start).Seconds()*rate)); n < target; n++ {
			due := time.Now().Add(time.Millisecond + time.Duration(r.Int64N(int64(99*time.Millisecond))))
			_ = s.Schedule(ctx, runID(background+n), due)
		}
	}
	tick.Stop()
	<-consumed
	_ = s.Close()

	slices.Sort(late)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.ReportMetric(ms(late[len(late)/2]), "ms-p50")
	b.ReportMetric(ms(late[len(late)*99/100]), "ms-p99")
	b.ReportMetric(ms(late[len(late)-1]), "ms-max")
	b.ReportMetric(ms(late[0]), "ms-min")
}
