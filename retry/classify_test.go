package retry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
)

var errBase = errors.New("connection reset")

func TestClassOf(t *testing.T) {
	tagged := WithClass(errBase, ClassNetworkBlip)
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassUnknown},
		{"plain", errBase, ClassUnknown},
		{"tagged", tagged, ClassNetworkBlip},
		{"wrapped with %w", fmt.Errorf("node sms: %w", tagged), ClassNetworkBlip},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", tagged)), ClassNetworkBlip},
		{"joined", multierror.Append(errors.New("other"), tagged), ClassNetworkBlip},
		{"outermost tag wins", WithClass(fmt.Errorf("retag: %w", tagged), ClassRateLimit), ClassRateLimit},
		{"through Permanent", Permanent(tagged), ClassNetworkBlip},
		{"through RetryAfter", RetryAfter(tagged, time.Second), ClassNetworkBlip},
		{"deadline is timeout", context.DeadlineExceeded, ClassTimeout},
		{"wrapped deadline", fmt.Errorf("node call_api: %w", context.DeadlineExceeded), ClassTimeout},
		{"joined deadline", multierror.Append(errBase, context.DeadlineExceeded), ClassTimeout},
		{"tag beats deadline", WithClass(context.DeadlineExceeded, ClassDownstreamMaintenance), ClassDownstreamMaintenance},
		{"canceled is not timeout", context.Canceled, ClassUnknown},
		{"custom class", WithClass(errBase, "billing_hold"), Class("billing_hold")},
	} {
		if got := ClassOf(tc.err); got != tc.want {
			t.Errorf("%s: ClassOf = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMarkersKeepTheErrorChain(t *testing.T) {
	sentinel := errors.New("upstream 503")
	err := fmt.Errorf("call: %w", RetryAfter(Permanent(WithClass(fmt.Errorf("post: %w", sentinel), ClassServiceUnavailable)), time.Minute))
	if !errors.Is(err, sentinel) {
		t.Error("errors.Is lost the sentinel through the markers")
	}
	if err.Error() != "call: post: upstream 503" {
		t.Errorf("markers changed the message: %q", err)
	}
	if !IsPermanent(err) || ClassOf(err) != ClassServiceUnavailable {
		t.Errorf("IsPermanent %v, ClassOf %q", IsPermanent(err), ClassOf(err))
	}
	if d, ok := RequestedDelay(err); !ok || d != time.Minute {
		t.Errorf("RequestedDelay = %v, %v", d, ok)
	}
}

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errBase, false},
		{"marked", Permanent(errBase), true},
		{"wrapped", fmt.Errorf("validate: %w", Permanent(errBase)), true},
		{"joined", multierror.Append(errBase, Permanent(errors.New("bad patient"))), true},
		{"class is not permanence", WithClass(errBase, ClassValidation), false},
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// delayCase is an error and what a marker's reader should find in it.
type delayCase struct {
	name string
	err  error
	want time.Duration
	ok   bool
}

// checkDelays checks that read, named what, finds each case's delay.
func checkDelays(t *testing.T, what string, read func(error) (time.Duration, bool), cases []delayCase) {
	t.Helper()
	for _, tc := range cases {
		if got, ok := read(tc.err); got != tc.want || ok != tc.ok {
			t.Errorf("%s: %s = %v, %v; want %v, %v", tc.name, what, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	checkDelays(t, "RequestedDelay", RequestedDelay, []delayCase{
		{"nil", nil, 0, false},
		{"plain", errBase, 0, false},
		{"asked", RetryAfter(errBase, 30*time.Second), 30 * time.Second, true},
		{"zero", RetryAfter(errBase, 0), 0, true},
		{"negative is zero", RetryAfter(errBase, -time.Second), 0, true},
		{"wrapped", fmt.Errorf("rate limited: %w", RetryAfter(errBase, time.Minute)), time.Minute, true},
		{"joined", multierror.Append(errBase, RetryAfter(errBase, 2*time.Second)), 2 * time.Second, true},
		{"outermost wins", RetryAfter(RetryAfter(errBase, time.Second), time.Hour), time.Hour, true},
	})
}

func TestMarkersOfNilAreNil(t *testing.T) {
	if WithClass(nil, ClassRateLimit) != nil || Permanent(nil) != nil || RetryAfter(nil, time.Second) != nil {
		t.Error("a marker of a nil error is not nil: a node that succeeded would fail")
	}
}

func TestValidateClassName(t *testing.T) {
	for _, c := range BuiltinClasses {
		if err := ValidateClassName(string(c)); err != nil {
			t.Errorf("built-in %q: %v", c, err)
		}
		if !c.Builtin() {
			t.Errorf("%q.Builtin() = false", c)
		}
	}
	for _, s := range []string{"a", "billing_hold", "x9", "a_1_b", strings.Repeat("a", 64)} {
		if err := ValidateClassName(s); err != nil {
			t.Errorf("ValidateClassName(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "Rate_limit", "1abc", "_x", "rate-limit", "rate limit", " x", "x ", "é", "a.b", strings.Repeat("a", 65)} {
		err := ValidateClassName(s)
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ValidateClassName(%q) = %v, want ErrInvalidArgument quoting it", s, err)
		}
	}
	if Class("billing_hold").Builtin() {
		t.Error("a custom class reported as built-in")
	}
	if len(BuiltinClasses) != 13 {
		t.Errorf("%d built-in classes, want the proposal's 11 plus timeout and unknown", len(BuiltinClasses))
	}
}

func FuzzValidateClassName(f *testing.F) {
	for _, c := range BuiltinClasses {
		f.Add(string(c))
	}
	f.Add("Bad Name")
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateClassName(s)
		valid := len(s) >= 1 && len(s) <= 64 && s[0] >= 'a' && s[0] <= 'z' &&
			strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == ""
		if (err == nil) != valid {
			t.Fatalf("ValidateClassName(%q) = %v, want valid %v", s, err, valid)
		}
	})
}

func TestNewFailure(t *testing.T) {
	err := fmt.Errorf("call api: %w", RetryAfter(WithClass(errBase, ClassRateLimit), 45*time.Second))
	f := NewFailure(err, 2, 4*time.Second)
	want := Failure{
		Err: err, Message: "call api: connection reset", Class: ClassRateLimit,
		RetryAfter: 45 * time.Second, HasRetryAfter: true, RetryCount: 2, PrevDelay: 4 * time.Second,
	}
	if f != want {
		t.Errorf("NewFailure = %+v\nwant %+v", f, want)
	}
	f = NewFailure(Permanent(fmt.Errorf("node: %w", context.DeadlineExceeded)), 0, 0)
	if !f.Permanent || f.Class != ClassTimeout || f.HasRetryAfter || f.Message != "node: context deadline exceeded" {
		t.Errorf("permanent timeout: %+v", f)
	}
	if f := NewFailure(nil, 1, 0); f.Class != ClassUnknown || f.Message != "" || f.Permanent || f.HasRetryAfter || f.RetryCount != 1 {
		t.Errorf("nil error: %+v", f)
	}
}

func TestPolicyFunc(t *testing.T) {
	var p Policy = PolicyFunc(func(f Failure) Decision {
		return Decision{Retry: f.RetryCount < 1, Strategy: "custom", Rule: "func"}
	})
	if d := p.Decide(Failure{}); !d.Retry || d.Strategy != "custom" {
		t.Errorf("PolicyFunc: %+v", d)
	}
}

func TestSnooze(t *testing.T) {
	checkDelays(t, "RequestedSnooze", RequestedSnooze, []delayCase{
		{"nil", nil, 0, false},
		{"plain", errBase, 0, false},
		{"asked", Snooze(errBase, time.Minute), time.Minute, true},
		{"negative is zero", Snooze(errBase, -time.Second), 0, true},
		{"wrapped", fmt.Errorf("lab: %w", Snooze(errBase, time.Hour)), time.Hour, true},
		{"not a retry-after", RetryAfter(errBase, time.Minute), 0, false},
	})
	// A snooze is never a success, and keeps the chain it wraps.
	err := Snooze(nil, 90*time.Second)
	if err == nil || err.Error() != "snoozed for 1m30s" {
		t.Errorf("Snooze(nil, 90s) = %v; want an error saying so", err)
	}
	tagged := Snooze(WithClass(errBase, ClassRateLimit), time.Second)
	if !errors.Is(tagged, errBase) || ClassOf(tagged) != ClassRateLimit || tagged.Error() != errBase.Error() {
		t.Errorf("Snooze changed the chain: %v, class %s", tagged, ClassOf(tagged))
	}
	if _, ok := RequestedDelay(tagged); ok {
		t.Error("a snooze reads as a Retry-After")
	}
}
