package policy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
)

var errTest = errors.New("test failure")

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in, str string // str: the rule's String()
	}{
		{"timeout", "timeout"},
		{"connection reset by peer", "connection reset by peer"},
		{"Timeout: dial", "Timeout: dial"}, // not a lowercase kind: a substring
		{"msg:http://x", "msg:http://x"},
		{"msg:timeout", "timeout"},
		{"re:(?i)^rate limit", "re:(?i)^rate limit"},
		{"class:validation", "class:validation"},
		{"class:my_custom_1", "class:my_custom_1"},
		{"5xx:", "5xx:"}, // a digit: not a kind
	} {
		r, err := ParseRule(tc.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.str {
			t.Errorf("ParseRule(%q).String() = %q, want %q", tc.in, r.String(), tc.str)
		}
		if back, err := ParseRule(r.String()); err != nil || back.String() != r.String() {
			t.Errorf("ParseRule(%q) does not round-trip: %v, %v", r.String(), back, err)
		}
	}
	for _, tc := range []struct{ in, errHas string }{
		{"", "empty rule"},
		{"re:", "empty pattern"},
		{"class:", "empty pattern"},
		{"msg:", "empty pattern"},
		{"re:(", "invalid regular expression"},
		{"re:a{1,100000}", "invalid regular expression"},
		{"class:Validation", "class name"},
		{"class:has space", "class name"},
		{"regex:timeout", `unknown kind "regex:"`},
		{"http://x", `"msg:http://x"`},
		{strings.Repeat("a", maxRuleLen+1), "longer than"},
	} {
		_, err := ParseRule(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("ParseRule(%.40q) = %v, want an error containing %q", tc.in, err, tc.errHas)
		}
	}
}

func TestParseRulesNamesTheIndex(t *testing.T) {
	_, err := ParseRules([]string{"timeout", "re:("})
	if err == nil || !strings.HasPrefix(err.Error(), "[1]: ") {
		t.Errorf("ParseRules: %v, want an error starting [1]:", err)
	}
}

var errSentinel = errors.New("upstream said no")

// TestRulesMatchThroughWrapping classifies errors wrapped with fmt.Errorf,
// retry.WithClass and go-multierror, as node code returns them.
func TestRulesMatchThroughWrapping(t *testing.T) {
	base := fmt.Errorf("call clinic: %w", retry.WithClass(fmt.Errorf("POST /slots: %w", errSentinel), retry.ClassRateLimit))
	wrapped := fmt.Errorf("node call_api: %w", base)
	joined := combine.Errors(errors.New("cleanup failed"), wrapped)
	deadline := fmt.Errorf("node call_api: %w", context.DeadlineExceeded)

	rule := func(s string) Rule {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		rule Rule
		err  error
		want bool
	}{
		{rule("class:rate_limit"), wrapped, true},
		{rule("class:rate_limit"), joined, true},
		{rule("class:network_blip"), wrapped, false},
		{rule("class:timeout"), deadline, true},
		{rule("upstream said no"), wrapped, true},
		{rule("upstream said no"), joined, true},
		{rule("Upstream"), wrapped, false}, // substrings are case-sensitive
		{rule("re:(?i)upstream SAID"), wrapped, true},
		{rule("re:^node call_api: call clinic"), wrapped, true},
		{rule("re:^call clinic"), wrapped, false},
		{ErrorIs(errSentinel), wrapped, true},
		{ErrorIs(errSentinel), joined, true},
		{ErrorIs(context.DeadlineExceeded), deadline, true},
		{ErrorIs(errSentinel), deadline, false},
		{MessageMatches(regexp.MustCompile(`slots`)), wrapped, true},
		{Rule{}, wrapped, false},
	} {
		f := retry.NewFailure(tc.err, 0, 0)
		if got := tc.rule.Match(f); got != tc.want {
			t.Errorf("%s matching %q (class %s) = %v, want %v", tc.rule, tc.err, f.Class, got, tc.want)
		}
	}
}

func TestRulesMatchStoredFailures(t *testing.T) {
	// A failure read back from the store has a message and a class, no
	// error: message and class rules still work, errors.Is rules do not.
	f := retry.Failure{Message: "dial tcp: i/o timeout", Class: retry.ClassNetworkBlip}
	if !MessageContains("i/o timeout").Match(f) || !ClassIs(retry.ClassNetworkBlip).Match(f) {
		t.Error("message or class rule missed a stored failure")
	}
	if ErrorIs(errSentinel).Match(f) {
		t.Error("errors.Is rule matched a failure without an error")
	}
	// A caller that built a Failure by hand without Message.
	if !MessageContains("boom").Match(retry.Failure{Err: errors.New("boom")}) {
		t.Error("message rule ignored Err when Message is empty")
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"timeout", "re:^a+$", "re:(", "class:validation", "class:X", "msg:a:b", "regex:x", "", ":", "a:", "re:(?i)é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		// A parsed rule prints back to an equivalent rule and matches
		// without panicking.
		back, err := ParseRule(r.String())
		if err != nil || back.String() != r.String() {
			t.Fatalf("ParseRule(%q).String() = %q does not round-trip: %v", s, r.String(), err)
		}
		r.Match(retry.Failure{Message: s, Class: retry.Class(s)})
	})
}
