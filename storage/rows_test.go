package storage

import (
	"testing"
	"time"
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
