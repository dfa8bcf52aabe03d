package redis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
)

// pipelineHook counts the pipelines a client sends, their commands and
// the largest.
type pipelineHook struct{ pipelines, commands, largest atomic.Int64 }

func (h *pipelineHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *pipelineHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *pipelineHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.pipelines.Add(1)
		h.commands.Add(int64(len(cmds)))
		for n := int64(len(cmds)); ; {
			l := h.largest.Load()
			if n <= l || h.largest.CompareAndSwap(l, n) {
				break
			}
		}
		return next(ctx, cmds)
	}
}

// The tests of this file are of the calls that go at once: their
// schedulers queue no Schedule (Config.QueueAhead negative).

// TestConcurrentCallsShareRoundTrips: Schedules and Acks of many
// goroutines at once go out in shared pipelines (a worker pool's calls
// do not queue for connections one round trip each), the Schedules of one
// pipeline as one script call, and each still returns once Redis has run
// it: every entry is due after its Schedule returned, and gone after its
// Ack returned.
func TestConcurrentCallsShareRoundTrips(t *testing.T) {
	c := testConn(t, false)
	rdb := newClient(t, c)
	defer rdb.Close()
	var hook pipelineHook
	rdb.AddHook(&hook)
	s, err := redisched.New(context.Background(), rdb, redisched.Config{Prefix: testPrefix(t, c), QueueAhead: -1})
	must(t, err)
	defer s.Close()
	ctx := context.Background()
	const n = 200
	all := func(call func(i int) error) {
		t.Helper()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				if err := call(i); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	all(func(i int) error { return s.Schedule(ctx, fmt.Sprint(i), base) })
	if cmds := hook.commands.Load(); cmds >= n {
		t.Fatalf("%d concurrent Schedules sent %d script calls; want fewer, a batch's as one", n, cmds)
	}
	ds, err := s.Claim(ctx, base, 2*n)
	must(t, err)
	if len(ds) != n {
		t.Fatalf("Claim after %d Schedules returned: %d entries", n, len(ds))
	}
	all(func(i int) error { return s.Ack(ctx, ds[i]) })
	if left, err := s.Claim(ctx, base.Add(redisched.LeaseDefault), 2*n); err != nil || len(left) != 0 {
		t.Fatalf("after the Acks returned, Claim past the lease = %d entries, %v; want none", len(left), err)
	}
	if p := hook.pipelines.Load(); p >= 2*n || hook.largest.Load() < 2 {
		t.Fatalf("%d calls in %d pipelines, the largest of %d; want them shared", 2*n, p, hook.largest.Load())
	}
}

// TestScriptsReloaded: after SCRIPT FLUSH (or a restart) Redis knows none
// of the scripts; a batch that meets NOSCRIPT runs its calls again, which
// loads them, its Schedules joined in one call and ScheduleMany's
// included.
func TestScriptsReloaded(t *testing.T) {
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: testPrefix(t, c), QueueAhead: -1})
	defer s.Close()
	rdb := newClient(t, c)
	defer rdb.Close()
	ctx := context.Background()
	must(t, s.Schedule(ctx, "a", base))
	must(t, rdb.ScriptFlush(ctx).Err())
	must(t, s.Schedule(ctx, "b", base))
	must(t, rdb.ScriptFlush(ctx).Err())
	ds, err := s.Claim(ctx, base, 10)
	must(t, err)
	if len(ds) != 2 {
		t.Fatalf("Claim = %+v; want a and b", ds)
	}
	must(t, rdb.ScriptFlush(ctx).Err())
	must(t, s.Ack(ctx, ds[0]))
	must(t, rdb.ScriptFlush(ctx).Err())
	must(t, s.Cancel(ctx, "b"))
	if left, err := s.Claim(ctx, base.Add(redisched.LeaseDefault), 10); err != nil || len(left) != 0 {
		t.Fatalf("after Ack and Cancel, Claim = %+v, %v; want none", left, err)
	}
	must(t, rdb.ScriptFlush(ctx).Err())
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Schedule(ctx, fmt.Sprint("c", i), base); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ds, err := s.Claim(ctx, base, 2*n); err != nil || len(ds) != n {
		t.Fatalf("after %d concurrent Schedules on a flushed Redis, Claim = %d entries, %v; want %d", n, len(ds), err, n)
	}

	// ScheduleMany, in two script calls of one pipeline, each run again.
	must(t, rdb.ScriptFlush(ctx).Err())
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprint("m", i)
	}
	must(t, s.ScheduleMany(ctx, many, base))
	if ds, err := s.Claim(ctx, base, 2*len(many)); err != nil || len(ds) != len(many) {
		t.Fatalf("after ScheduleMany of %d on a flushed Redis, Claim = %d entries, %v; want %d", len(many), len(ds), err, len(many))
	}
}

// overlapHook holds a client's first pipeline of scripts until a second
// one is in flight beside it, or until a while has passed.
type overlapHook struct {
	inflight atomic.Int64
	first    atomic.Bool
	once     sync.Once
	overlap  chan struct{} // closed when two pipelines were in flight at once
}

func (h *overlapHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *overlapHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }

func (h *overlapHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if cmds[0].Name() != "evalsha" {
			return next(ctx, cmds) // a new connection's HELLO, not the scheduler's
		}
		defer h.inflight.Add(-1)
		if h.inflight.Add(1) > 1 {
			h.once.Do(func() { close(h.overlap) })
		}
		if h.first.CompareAndSwap(false, true) {
			select {
			case <-h.overlap:
			case <-time.After(5 * time.Second):
			}
		}
		return next(ctx, cmds)
	}
}

// TestPipelinesOverlap: the calls of many ids do not wait for one another's
// round trip: while one pipeline is in flight, another is sent.
func TestPipelinesOverlap(t *testing.T) {
	c := testConn(t, false)
	rdb := newClient(t, c)
	defer rdb.Close()
	hook := &overlapHook{overlap: make(chan struct{})}
	rdb.AddHook(hook)
	s, err := redisched.New(context.Background(), rdb, redisched.Config{Prefix: testPrefix(t, c), QueueAhead: -1})
	must(t, err)
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if err := s.Schedule(context.Background(), fmt.Sprint(i), base); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case <-hook.overlap:
	default:
		t.Fatal("64 concurrent Schedules of distinct ids: no pipeline was sent while another was in flight")
	}
}
