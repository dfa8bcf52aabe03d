package conformance

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records a check's failures instead of
// failing the test: the suites' own tests run a check against a broken
// backend through it and expect it to fail.
type recorder struct {
	testing.TB // the real test: Helper, Cleanup, Context, TempDir, Name

	mu      sync.Mutex
	failed  bool
	skipped bool
	msgs    []string
}

func (r *recorder) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, msg)
}

func (r *recorder) Fail()                             { r.record("Fail") }
func (r *recorder) FailNow()                          { r.record("FailNow"); runtime.Goexit() }
func (r *recorder) Error(args ...any)                 { r.record(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Log(args ...any)                   {}
func (r *recorder) Logf(format string, args ...any)   {}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Skip(args ...any)                 { r.skip(fmt.Sprint(args...)) }
func (r *recorder) Skipf(format string, args ...any) { r.skip(fmt.Sprintf(format, args...)) }
func (r *recorder) SkipNow()                         { r.skip("SkipNow") }
func (r *recorder) Skipped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

func (r *recorder) skip(msg string) {
	r.mu.Lock()
	r.skipped = true
	r.msgs = append(r.msgs, "skipped: "+msg)
	r.mu.Unlock()
	runtime.Goexit()
}

// ExpectFailure runs check with a testing.TB that records failures instead
// of reporting them, and fails t unless the check failed (a skip is not a
// failure). It returns the check's failure messages, joined: the message a
// backend broken that way gets. A check that panics counts as failing.
func ExpectFailure(t *testing.T, check func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.record(fmt.Sprintf("panic: %v", p))
			}
		}()
		check(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := strings.Join(r.msgs, "\n")
	switch {
	case r.skipped && !r.failed:
		t.Fatalf("the check skipped instead of failing: %s", msg)
	case !r.failed:
		t.Fatal("the check passed on a backend broken the way it exists to catch")
	}
	return msg
}
