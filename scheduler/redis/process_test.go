package redis_test

import (
	"bufio"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	redisched "github.com/journeyretry/journeyretry/scheduler/redis"
)

// The consumer processes' environment.
const (
	envConsumer = "JRETRY_TEST_CONSUMER" // the file a child logs its deliveries to
	envPrefix   = "JRETRY_TEST_CONSUMER_PREFIX"
	envLease    = "JRETRY_TEST_CONSUMER_LEASE"
)

// TestConsumerProcesses: 4 processes drain 100,000 entries. With none
// killed, each entry is delivered exactly once; with one killed by SIGKILL
// midway, every entry is still delivered, and an entry delivered twice was
// first delivered to the killed process (which held it unacknowledged).
func TestConsumerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	c := testConn(t, false)
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			consumerProcesses(t, c, kill)
		})
	}
}

func consumerProcesses(t *testing.T, c redisched.Conn, kill bool) {
	const entries, procs = 100_000, 4
	lease := time.Minute // longer than the test: no redelivery without a kill
	if kill {
		lease = 2 * time.Second
	}
	prefix := testPrefix(t, c)
	ctx := context.Background()
	// The entries as Schedule leaves them, written in pipelined batches:
	// the test is of the draining, and 100,000 Schedule calls one at a
	// time take most of a minute under the race detector.
	start := time.Now()
	past := start.Add(-time.Hour) // all due, in id order
	rdb := newClient(t, c)
	defer rdb.Close()
	for lo := 0; lo < entries; lo += 1000 {
		_, err := rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := lo; i < lo+1000; i++ {
				at := past.Add(time.Duration(i) * time.Microsecond)
				p.ZAdd(ctx, "{"+prefix+"}:due", goredis.Z{Score: float64(at.UnixMilli()), Member: entryID(i)})
				p.HSet(ctx, "{"+prefix+"}:at", entryID(i), at.UnixNano())
			}
			return nil
		})
		must(t, err)
	}
	t.Logf("scheduled %d entries in %v", entries, time.Since(start))
	start = time.Now()

	dir := t.TempDir()
	var children []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConsumerProcess$")
		cmd.Env = append(os.Environ(), envConsumer+"="+filepath.Join(dir, fmt.Sprint(p)), envPrefix+"="+prefix, envLease+"="+lease.String())
		cmd.Stderr = os.Stderr
		must(t, cmd.Start())
		children = append(children, cmd)
	}
	defer func() {
		for _, cmd := range children {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	left := func() int64 {
		due, err := rdb.ZCard(ctx, "{"+prefix+"}:due").Result()
		must(t, err)
		inflight, err := rdb.ZCard(ctx, "{"+prefix+"}:inflight").Result()
		must(t, err)
		return due + inflight
	}
	killed := -1
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d entries left after 2 minutes", left())
		}
		n := left()
		if kill && killed < 0 && n < entries/2 {
			killed = 0
			must(t, children[0].Process.Signal(syscall.SIGKILL))
			children[0].Wait()
		}
		if n == 0 {
			break
		}
	}
	t.Logf("%d processes drained them in %v", procs, time.Since(start))

	count := map[string]int{}
	byKilled := map[string]bool{}
	for p := range procs {
		f, err := os.Open(filepath.Join(dir, fmt.Sprint(p)))
		must(t, err)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			count[sc.Text()]++
			if p == killed {
				byKilled[sc.Text()] = true
			}
		}
		f.Close()
	}
	dups := 0
	for i := range entries {
		id := entryID(i)
		switch n := count[id]; {
		case n == 0:
			t.Fatalf("%s never delivered", id)
		case n > 1 && !byKilled[id]:
			t.Fatalf("%s delivered %d times, none to the killed process", id, n)
		case n > 1:
			dups++
		}
	}
	if len(count) != entries {
		t.Fatalf("%d distinct ids delivered; want %d", len(count), entries)
	}
	if kill && len(byKilled) == 0 {
		t.Fatal("the killed process had delivered nothing: the kill hit no work")
	}
	t.Logf("killed %d: %d entries delivered twice (the killed process's, held unacknowledged)", killed, dups)
}

func entryID(i int) string { return fmt.Sprintf("e%06d", i) }

// TestConsumerProcess is TestConsumerProcesses's child: it claims in
// batches of 100, logs each delivery's id (one write per batch, which a
// SIGKILL does not lose), acknowledges them and claims again, until killed.
func TestConsumerProcess(t *testing.T) {
	path := os.Getenv(envConsumer)
	if path == "" {
		t.Skip("the consumer processes' child")
	}
	lease, err := time.ParseDuration(os.Getenv(envLease))
	must(t, err)
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: os.Getenv(envPrefix), Lease: lease})
	defer s.Close()
	f, err := os.Create(path)
	must(t, err)
	ctx := context.Background()
	for {
		ds, err := s.Claim(ctx, time.Now(), 100)
		must(t, err)
		if len(ds) == 0 {
			select {
			case <-s.Ready():
			case <-time.After(100 * time.Millisecond): // leases of the killed process end
			}
			continue
		}
		var b strings.Builder
		for _, d := range ds {
			b.WriteString(d.ID + "\n")
		}
		_, err = f.WriteString(b.String())
		must(t, err)
		for _, d := range ds {
			must(t, s.Ack(ctx, d))
		}
	}
}

// The wake-up consumer processes' environment.
const (
	envWaker       = "JRETRY_TEST_WAKER" // the file a child logs its lateness to
	envWakerPrefix = "JRETRY_TEST_WAKER_PREFIX"
)

// BenchmarkWakeLatenessProcesses is BenchmarkWakeLateness with each of the
// 4 consumers a process of its own (this test binary, running
// TestWakeConsumerProcess), so that a wake-up crosses processes through
// Redis's pub/sub as it does between worker processes: this process
// schedules 1,000 entries due 20-220 ms ahead, 200 a second, and each
// consumer logs, per delivery, its Claim's wall time minus the entry's due
// time. Never negative: nothing is handed out early.
func BenchmarkWakeLatenessProcesses(b *testing.B) {
	const entries, procs = 1000, 4
	c := testConn(b, false)
	ctx := context.Background()
	var late []time.Duration
	for range b.N {
		prefix := testPrefix(b, c)
		producer := open(b, c, redisched.Config{Prefix: prefix})
		dir := b.TempDir()
		var children []*exec.Cmd
		for p := range procs {
			cmd := exec.Command(os.Args[0], "-test.run=^TestWakeConsumerProcess$")
			cmd.Env = append(os.Environ(), envWaker+"="+filepath.Join(dir, fmt.Sprint(p)), envWakerPrefix+"="+prefix)
			cmd.Stderr = os.Stderr
			must(b, cmd.Start())
			children = append(children, cmd)
		}
		stop := func() {
			for _, cmd := range children {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}
		// A child creates its file once it is subscribed and waiting.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			ready := 0
			for p := range procs {
				if _, err := os.Stat(filepath.Join(dir, fmt.Sprint(p))); err == nil {
					ready++
				}
			}
			if ready == procs {
				break
			}
			if time.Now().After(deadline) {
				stop()
				b.Fatalf("%d of %d consumer processes ready after a minute", ready, procs)
			}
		}
		b.ResetTimer()
		tick := time.NewTicker(5 * time.Millisecond)
		for i := range entries {
			<-tick.C
			at := time.Now().Add(time.Duration(20+mrand.IntN(200)) * time.Millisecond)
			if err := producer.Schedule(ctx, fmt.Sprint(i), at); err != nil {
				stop()
				b.Fatal(err)
			}
		}
		tick.Stop()
		got := 0
		for deadline := time.Now().Add(time.Minute); got < entries; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				b.Fatalf("%d of %d entries delivered after a minute", got, entries)
			}
			got = 0
			for p := range procs {
				data, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(p)))
				must(b, err)
				got += strings.Count(string(data), "\n")
			}
		}
		b.StopTimer()
		stop()
		producer.Close()
		for p := range procs {
			data, err := os.ReadFile(filepath.Join(dir, fmt.Sprint(p)))
			must(b, err)
			for line := range strings.Lines(string(data)) {
				ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
				must(b, err)
				late = append(late, time.Duration(ns))
			}
		}
	}
	redisched.ReportLateness(b, late)
}

// TestWakeConsumerProcess is BenchmarkWakeLatenessProcesses's child: it
// waits on Ready, claims at the wall clock, logs each delivery's lateness
// in nanoseconds (one write per Claim) and acknowledges it, until killed.
func TestWakeConsumerProcess(t *testing.T) {
	path := os.Getenv(envWaker)
	if path == "" {
		t.Skip("the wake-up consumer processes' child")
	}
	c := testConn(t, false)
	s := open(t, c, redisched.Config{Prefix: os.Getenv(envWakerPrefix)})
	defer s.Close()
	f, err := os.Create(path)
	must(t, err)
	ctx := context.Background()
	for {
		select {
		case <-s.Ready():
		case <-time.After(100 * time.Millisecond):
		}
		now := time.Now()
		ds, err := s.Claim(ctx, now, 100)
		must(t, err)
		var b strings.Builder
		for _, d := range ds {
			fmt.Fprintf(&b, "%d\n", now.Sub(d.At).Nanoseconds())
		}
		if _, err := f.WriteString(b.String()); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			must(t, s.Ack(ctx, d))
		}
	}
}
