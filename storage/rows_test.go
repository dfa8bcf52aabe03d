package storage

import (
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/storecheck"
	"github.com/journeyretry/journeyretry/retry"
)

// TestParseDatetime covers the store's own layout, read by hand, beside
// the legacy forms it falls back to.
func TestParseDatetime(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Time
	}{
		{"2001-09-09 01:46:40.123", time.Date(2001, 9, 9, 1, 46, 40, 123_000_000, time.UTC)},
		{"2024-02-29 23:59:59.999", time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC)},
		{"2024-05-01 10:00:00", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"2024-05-01 10:00:00,500", time.Date(2024, 5, 1, 10, 0, 0, 500_000_000, time.UTC)},
		{"1714557600", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{nil, time.Time{}},
	} {
		got, err := parseDatetime(tc.in)
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("parseDatetime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	// Fixed width but out of range: not read by hand, and no layout reads it.
	for _, in := range []string{"2023-02-29 12:00:00.000", "2023-13-01 00:00:00.000", "2023-12-01 24:00:00.000", "2023-12-01 23:00:60.000", "2023-1a-01 23:00:00.000"} {
		if got, err := parseDatetime(in); err == nil {
			t.Errorf("parseDatetime(%q) = %v; want an error", in, got)
		}
	}
}

// TestCheckJSON: only a real \u0000 escape is refused, not the text
// "\u0000" after an escaped backslash, nor the other escapes.
func TestCheckJSON(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"x":"a\u0000b"}`:       false,
		`"\u0000"`:               false,
		`["\\\u0000"]`:           false, // an escaped backslash, then the escape
		`{"x":"a\\u0000b"}`:      true,  // an escaped backslash, then text
		`{"x":"\u0001 \n \"\\"}`: true,
		`{"\u00000":1}`:          false,
		`[1, 2`:                  false,
		`{}`:                     true,
	} {
		if err := storecheck.CheckJSON("input", []byte(in)); (err == nil) != ok {
			t.Errorf("storecheck.CheckJSON(%s) = %v; want ok %v", in, err, ok)
		}
	}
}

// TestStorable keeps valid text as it is and stores NUL and invalid UTF-8
// as U+FFFD, also in a message cut to the limit.
func TestStorable(t *testing.T) {
	for in, want := range map[string]string{
		"plain é":  "plain é",
		"a\x00b":   "a\uFFFDb",
		"\xff\xfe": "\uFFFD",
		"":         "",
	} {
		if got := storecheck.Storable(in); got != want {
			t.Errorf("storecheck.Storable(%q) = %q; want %q", in, got, want)
		}
	}
	long := strings.Repeat("\xff", 2*retry.MaxErrorMessageLen)
	if got := storecheck.Truncate(long); got != "\uFFFD" {
		t.Errorf("storecheck.Truncate(%d invalid bytes) = %q; want one U+FFFD", len(long), got)
	}
}
