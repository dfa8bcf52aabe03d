package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// hangingProxy forwards TCP connections to target until hang is called:
// from then on it forwards nothing, in either direction, and closes
// nothing, as a database host that stopped answering (a cable pulled, a
// frozen VM) looks to its clients.
type hangingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	hung   chan struct{}
	once   sync.Once
}

func newHangingProxy(t *testing.T, target string) *hangingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangingProxy{ln: ln, target: target, hung: make(chan struct{})}
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			conns = append(conns, c, up)
			p.mu.Unlock()
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p
}

// pipe copies from src to dst until the proxy hangs, then holds what it
// read.
func (p *hangingProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.hung:
			<-make(chan struct{}) // never forwards again; the test's end closes the connections
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

func (p *hangingProxy) hang() { p.once.Do(func() { close(p.hung) }) }

// within runs f and fails the test unless it returns within limit: a
// write the deadline failed to stop would otherwise hang the test.
func within[T any](t *testing.T, limit time.Duration, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() { v, err := f(); ch <- result{v, err} }()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(limit):
		t.Fatalf("%s did not return within %v", what, limit)
		panic("unreachable")
	}
}

// TestWritesHonourDeadlinesOnAHungConnection: with the PostgreSQL server
// behind a proxy that stops forwarding, every kind of write (a create, a
// claim, which runs outside the batches, and a lease renewal) returns by
// its deadline, the write timeout or the caller's sooner one, with an
// error wrapping context.DeadlineExceeded, and Close returns.
func TestWritesHonourDeadlinesOnAHungConnection(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newHangingProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	const timeout = 300 * time.Millisecond
	// Deadlines are the point, not speed: a write that ignored its
	// deadline would wait for PostgreSQL forever.
	const limit = 20 * time.Second
	s, err := Open(t.Context(), Config{DSN: u.String(), WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	nr := retry.NewRun{JourneyID: "j", StartNodeID: "a", Worker: "w", Lease: time.Hour}
	claimed, err := s.Create(t.Context(), nr, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(t.Context(), retry.NewRun{ID: "free", JourneyID: "j", StartNodeID: "a"}, now); err != nil {
		t.Fatal(err)
	}

	proxy.hang()
	start := time.Now()
	_, err = within(t, limit, "Create", func() (retry.Run, error) { return s.Create(context.Background(), nr, now) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create on a hung connection: %v; want an error wrapping context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("Create failed after %v, before its %v deadline: %v", el, timeout, err)
	}
	_, err = within(t, limit, "ExtendLease", func() (retry.Claim, error) {
		return s.ExtendLease(context.Background(), claimed.Claim(), now, time.Hour)
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ExtendLease on a hung connection: %v; want an error wrapping context.DeadlineExceeded", err)
	}
	_, err = within(t, limit, "ClaimRun", func() (retry.Run, error) {
		return s.ClaimRun(context.Background(), "free", "w", now, time.Hour)
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ClaimRun on a hung connection: %v; want an error wrapping context.DeadlineExceeded", err)
	}

	// A caller's deadline sooner than the write timeout is the one kept.
	s.writeTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = within(t, limit, "Create under the caller's deadline", func() (retry.Run, error) { return s.Create(ctx, nr, now) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create under a %v deadline on a hung connection: %v; want an error wrapping context.DeadlineExceeded", timeout, err)
	}
	_, err = within(t, limit, "Close", func() (struct{}, error) { return struct{}{}, s.Close() })
	t.Logf("Close: %v", err)
}
