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
	// The proposal's five spellings, plus waiting.
	for _, s := range []string{"in_progress", "completed", "failed", "retrying", "failed_max_retries", "waiting"} {
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
		s                    Status
		terminal, replayable bool
	}{
		{StatusInProgress, false, false},
		{StatusWaiting, false, false},
		{StatusRetrying, false, false},
		{StatusCompleted, true, false},
		{StatusFailed, true, true},
		{StatusFailedMaxRetries, true, true},
		{Status("bogus"), false, false},
	} {
		if tc.s.Terminal() != tc.terminal || tc.s.Replayable() != tc.replayable {
			t.Errorf("%q: Terminal %v Replayable %v, want %v %v", tc.s, tc.s.Terminal(), tc.s.Replayable(), tc.terminal, tc.replayable)
		}
	}
}

func TestStatusLists(t *testing.T) {
	if len(Statuses) != 6 {
		t.Errorf("Statuses = %v, want 6", Statuses)
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
