// Package conformance is the machinery the two conformance suites,
// scheduler/schedulertest and storage/storetest, share: checks run as
// subtests that fail, never crash, on a backend's misbehaviour, and a
// watchdog bounds every call of the backend and every wait.
package conformance

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// Check is one conformance check over a suite's harness H.
type Check[H any] struct {
	Name string
	Run  func(H)
}

// Run runs each check as a subtest of t, on a fresh harness from
// newHarness. A check that panics (an index a backend's short result did
// not have, a nil map) fails with the panic's message and stack: one broken
// backend fails its checks instead of taking the test binary, and every
// later check, down with it.
func Run[H any](t *testing.T, checks []Check[H], newHarness func(*testing.T) H) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.Name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("check panicked (the backend returned something the check did not expect): %v\n%s", r, debug.Stack())
				}
			}()
			c.Run(newHarness(t))
		})
	}
}

// Flatten turns a suite's groups of checks, each a name and a run, into
// the checks Run takes.
func Flatten[C any, H any](groups [][]C, check func(C) (string, func(H))) []Check[H] {
	var all []Check[H]
	for _, g := range groups {
		for _, c := range g {
			name, run := check(c)
			all = append(all, Check[H]{Name: name, Run: run})
		}
	}
	return all
}

// Find returns the check named name, failing t when there is none: the
// suites' own tests pick the check a broken backend must fail.
func Find[H any](t *testing.T, checks []Check[H], name string) Check[H] {
	t.Helper()
	for _, c := range checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return Check[H]{}
}

// ErrWatchdog is what [Call] returns for a call that did not return in time.
var ErrWatchdog = errors.New("watchdog: the call did not return in time")

// Call runs f on its own goroutine and waits at most d for it. A call that
// does not return in time is reported with t.Errorf, naming what, and Call
// returns the zero value and an error wrapping [ErrWatchdog]; the call's
// goroutine is left behind. Call may be used from any goroutine.
func Call[T any](t testing.TB, what string, d time.Duration, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
		t.Errorf("%s did not return within %v", what, d)
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrWatchdog)
	}
}

// Within runs f, which returns nothing, under [Call]'s watchdog and reports
// whether it returned in time.
func Within(t testing.TB, what string, d time.Duration, f func()) bool {
	_, err := Call(t, what, d, func() (struct{}, error) { f(); return struct{}{}, nil })
	return err == nil
}

// Parallel runs f(0) to f(n-1) on n goroutines and waits for all of them at
// most d. It returns the errors the calls returned, in order, and false
// when they did not all return in time (reported as [Within] does).
func Parallel(t testing.TB, what string, n int, d time.Duration, f func(i int) error) ([]error, bool) {
	errs := make([]error, n)
	var mu sync.Mutex
	ok := Within(t, what, d, func() {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				err := f(i)
				mu.Lock()
				errs[i] = err
				mu.Unlock()
			})
		}
		wg.Wait()
	})
	mu.Lock()
	defer mu.Unlock()
	return append([]error(nil), errs...), ok
}
