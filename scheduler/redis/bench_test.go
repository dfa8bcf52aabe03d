package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Benchmarks beside raw Redis, measured in the same run: the same Lua
// claim script called directly, and ZADD one call at a time from the same
// number of goroutines. Run them interleaved, for instance:
//
//	RETRY_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench . -count 3 ./scheduler/redis/

// benchClient is a client of RETRY_TEST_REDIS_URL's server, closed when t
// ends, with a pool for many goroutines; t skips when the variable is
// unset.
func benchClient(t testing.TB) goredis.UniversalClient {
	t.Helper()
	u := os.Getenv("RETRY_TEST_REDIS_URL")
	if u == "" {
		t.Skip("RETRY_TEST_REDIS_URL is unset: no Redis to test against (.ci/run starts one)")
	}
	opts, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 64
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// benchScheduler opens a scheduler on a prefix of its own, whose keys are
// deleted when b ends.
func benchScheduler(b *testing.B, rdb goredis.UniversalClient, cfg Config) *Scheduler {
	b.Helper()
	cfg.Prefix = "jrbench-" + rand.Text()[:12]
	s, err := New(context.Background(), rdb, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close()
		if err := rdb.Del(context.Background(), s.keys...).Err(); err != nil {
			b.Error(err)
		}
	})
	return s
}

// load writes n due entries as Schedule leaves them, in pipelined batches.
func load(b *testing.B, s *Scheduler, n int, at time.Time) {
	b.Helper()
	ctx := context.Background()
	for lo := 0; lo < n; lo += 1000 {
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := lo; i < min(lo+1000, n); i++ {
				id := fmt.Sprintf("e%07d", i)
				p.ZAdd(ctx, s.keys[keyDue], goredis.Z{Score: float64(at.UnixMilli()), Member: id})
				p.HSet(ctx, s.keys[keyAt], id, at.UnixNano())
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaim: claimed entries per second, in batches of 100, through
// Claim and through the same script called directly.
func BenchmarkClaim(b *testing.B) {
	const entries, batch = 20_000, 100
	rdb := benchClient(b)
	ctx := context.Background()
	for _, raw := range []bool{false, true} {
		name := "scheduler"
		if raw {
			name = "raw-script"
		}
		b.Run(name, func(b *testing.B) {
			s := benchScheduler(b, rdb, Config{})
			var total time.Duration
			for range b.N {
				now := time.Now()
				load(b, s, entries, now)
				start := time.Now()
				for got := 0; got < entries; {
					var n int
					if raw {
						res, err := claimScript.Run(ctx, rdb, s.keys, s.generation(), now.UnixMilli(), ceilMs(now.Add(time.Minute)), batch).Slice()
						if err != nil {
							b.Fatal(err)
						}
						n = (len(res) - 2) / 3
					} else {
						ds, err := s.Claim(ctx, now, batch)
						if err != nil {
							b.Fatal(err)
						}
						n = len(ds)
					}
					if n == 0 {
						b.Fatalf("ran dry at %d of %d", got, entries)
					}
					got += n
				}
				total += time.Since(start)
				if err := rdb.Del(ctx, s.keys[keyInflight], s.keys[keyToken], s.keys[keyAt]).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(entries*b.N)/total.Seconds(), "entries/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkSchedule: Schedule calls per second from 16 goroutines, one
// call at a time each, beside ZADD called the same way: each Schedule
// returning once Redis has run it (scheduler), and queued, an hour ahead,
// until the last is in Redis (queued).
func BenchmarkSchedule(b *testing.B) {
	const calls, goroutines = 20_000, 16
	rdb := benchClient(b)
	ctx := context.Background()
	for _, name := range []string{"scheduler", "queued", "raw-zadd"} {
		raw := name == "raw-zadd"
		b.Run(name, func(b *testing.B) {
			cfg := Config{QueueAhead: -1}
			if name == "queued" {
				cfg = Config{}
			}
			s := benchScheduler(b, rdb, cfg)
			due := time.Now().Add(time.Hour)
			var total time.Duration
			for i := range b.N {
				var next atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				for range goroutines {
					wg.Go(func() {
						for n := next.Add(1); n <= calls; n = next.Add(1) {
							id := fmt.Sprintf("%d-%06d", i, n)
							at := due.Add(time.Duration(n) * time.Millisecond)
							var err error
							if raw {
								err = rdb.ZAdd(ctx, s.keys[keyDue], goredis.Z{Score: float64(at.UnixMilli()), Member: id}).Err()
							} else {
								err = s.Schedule(ctx, id, at)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if name == "queued" { // a Claim sends the queue first
					if _, err := s.Claim(ctx, due.Add(-time.Millisecond), 1); err != nil {
						b.Fatal(err)
					}
				}
				total += time.Since(start)
				if err := rdb.Del(ctx, s.keys[keyDue], s.keys[keyAt]).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(calls*b.N)/total.Seconds(), "calls/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkWakeLateness: 4 consumers, each a scheduler handle with its own
// connections and waiter, wait on Ready; a fifth handle schedules 1,000
// entries due 20-220 ms ahead, 200 a second. Lateness is from each entry's
// due time to its Claim, by the wall clock; never negative (nothing is
// handed out early).
func BenchmarkWakeLateness(b *testing.B) {
	const entries, consumers = 1000, 4
	rdb := benchClient(b)
	ctx := context.Background()
	var late []time.Duration
	var mu sync.Mutex
	for range b.N {
		producer := benchScheduler(b, rdb, Config{})
		var wg sync.WaitGroup
		var got atomic.Int64
		for range consumers {
			c, err := New(ctx, rdb, Config{Prefix: producer.prefix()})
			if err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				defer c.Close()
				for got.Load() < entries {
					select {
					case <-c.Ready():
					case <-time.After(100 * time.Millisecond):
					}
					now := time.Now()
					ds, err := c.Claim(ctx, now, 100)
					if err != nil {
						b.Error(err)
						return
					}
					for _, d := range ds {
						mu.Lock()
						late = append(late, now.Sub(d.At))
						mu.Unlock()
						if err := c.Ack(ctx, d); err != nil {
							b.Error(err)
						}
					}
					got.Add(int64(len(ds)))
				}
			})
		}
		tick := time.NewTicker(5 * time.Millisecond)
		for i := range entries {
			<-tick.C
			at := time.Now().Add(time.Duration(20+mrand.IntN(200)) * time.Millisecond)
			if err := producer.Schedule(ctx, fmt.Sprint(i), at); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		wg.Wait()
	}
	ReportLateness(b, late)
}

// ReportLateness reports the median, 99th percentile, maximum and minimum
// of late, in milliseconds. (Exported for the benchmarks of package
// redis_test.)
func ReportLateness(b *testing.B, late []time.Duration) {
	slices.Sort(late)
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(late[len(late)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(late[0].Microseconds())/1000, "min-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleCommands: the commands an idle consumer sends per second,
// counted by a hook on its own client over 5 s (the subscription's
// connection, which only listens, aside).
func BenchmarkIdleCommands(b *testing.B) {
	rdb := benchClient(b)
	opts, err := goredis.ParseURL(os.Getenv("RETRY_TEST_REDIS_URL"))
	if err != nil {
		b.Fatal(err)
	}
	own := goredis.NewClient(opts)
	defer own.Close()
	var sent atomic.Int64
	own.AddHook(countHook{&sent})
	prefix := "jrbench-" + rand.Text()[:12]
	s, err := New(context.Background(), own, Config{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		s.Close()
		rdb.Del(context.Background(), s.keys...)
	}()
	var per float64
	for range b.N {
		before := sent.Load()
		time.Sleep(5 * time.Second)
		per = float64(sent.Load()-before) / 5
	}
	b.ReportMetric(per, "commands/s")
	b.ReportMetric(0, "ns/op")
}

// countHook counts the commands a client sends.
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// prefix is the Config.Prefix s was opened with.
func (s *Scheduler) prefix() string { return s.channel[1 : len(s.channel)-len("}:wake")] }
