package retry

import (
	"errors"
	"slices"
	"testing"
)

func TestParseStatus(t *testing.T) {
	for _, s := range Statuses {
		got, err := ParseStatus(string(s))
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
		if !s.Valid() {
			t.Errorf("%q not Valid", s)
		}
	}
	// The proposal's five spellings, plus waiting and cancelled.
	for _, s := range []string{"in_progress", "completed", "failed", "retrying", "failed_max_retries", "waiting", "cancelled"} {
		if _, err := ParseStatus(s); err != nil {
			t.Errorf("ParseStatus(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "Failed", "FAILED", " failed", "failed ", "in-progress", "inprogress", "failed_max_retries\n", "retry", "done"} {
		got, err := ParseStatus(s)
		if !errors.Is(err, ErrInvalidStatus) || got != "" {
			t.Errorf("ParseStatus(%q) = %q, %v; want ErrInvalidStatus", s, got, err)
		}
		if Status(s).Valid() {
			t.Errorf("Status(%q).Valid() = true", s)
		}
	}
}

func TestTerminalAndReplayable(t *testing.T) {
	for _, tc := range []struct {
		s                                 Status
		terminal, replayable, cancellable bool
	}{
		{StatusInProgress, false, false, true},
		{StatusWaiting, false, false, true},
		{StatusRetrying, false, false, true},
		{StatusCompleted, true, false, false},
		{StatusFailed, true, true, false},
		{StatusFailedMaxRetries, true, true, false},
		{StatusCancelled, true, true, false},
		{Status("bogus"), false, false, false},
	} {
		if tc.s.Terminal() != tc.terminal || tc.s.Replayable() != tc.replayable || tc.s.Cancellable() != tc.cancellable {
			t.Errorf("%q: Terminal %v Replayable %v Cancellable %v, want %v %v %v", tc.s, tc.s.Terminal(), tc.s.Replayable(), tc.s.Cancellable(),
				tc.terminal, tc.replayable, tc.cancellable)
		}
	}
}

func TestStatusLists(t *testing.T) {
	if len(Statuses) != 7 {
		t.Errorf("Statuses = %v, want 7", Statuses)
	}
	for _, s := range LegacyStatuses {
		if !slices.Contains(Statuses, s) {
			t.Errorf("legacy status %q not in Statuses", s)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range Statuses {
		f.Add(string(s))
	}
	f.Add(" Failed")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if (err == nil) != slices.Contains(Statuses, Status(s)) || (err == nil && string(st) != s) {
			t.Fatalf("ParseStatus(%q) = %q, %v", s, st, err)
		}
	})
}
