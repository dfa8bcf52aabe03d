package redis

import (
	"context"
	"crypto/rand"
	"testing"
	"time"
)

// TestLossWhoseReplyWasLost: the call that creates a new generation may
// never hear its reply (a timeout, a dropped connection). The handle that
// made it still reports the loss, once, at its next call; another handle
// on the same keys does not, so one process rebuilds the lost entries.
func TestLossWhoseReplyWasLost(t *testing.T) {
	rdb := benchClient(t)
	ctx := context.Background()
	cfg := Config{Prefix: "jrtest-" + rand.Text()[:12], Poll: time.Hour} // no peek but the test's
	open := func() *Scheduler {
		s, err := New(ctx, rdb, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	t.Cleanup(func() { rdb.Del(ctx, a.keys...) })
	lost := func(s *Scheduler) bool {
		select {
		case <-s.Lost():
			return true
		default:
			return false
		}
	}
	if !lost(a) || lost(b) {
		t.Fatal("at New: want a, which created the generation, to report it, and b not")
	}
	if err := rdb.Del(ctx, a.keys...).Err(); err != nil { // a flush
		t.Fatal(err)
	}
	if err := peekScript.Run(ctx, rdb, a.keys, a.generation()).Err(); err != nil { // a's call, its reply never heard
		t.Fatal(err)
	}
	peek := func(s *Scheduler) bool {
		if err := s.peek(ctx); err != nil {
			t.Fatal(err)
		}
		return lost(s)
	}
	if peek(b) {
		t.Error("b reported a loss that a's call found")
	}
	if !peek(a) {
		t.Error("a did not report the loss its own call found, whose reply it never heard")
	}
	if peek(a) {
		t.Error("a reported the one loss twice")
	}
}
