package retry_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/retry"
)

// TestQuoteID: an id is printed quoted, so a newline or an escape cannot
// split or recolour a line, and cut to MaxIDInError bytes at a UTF-8
// boundary, marked.
func TestQuoteID(t *testing.T) {
	long := "a\nb\x1b[31m!" + strings.Repeat("é", 512) // 1 KB and more
	for id, want := range map[string]string{
		"plain":                                 `"plain"`,
		"two\nlines":                            `"two\nlines"`,
		"\x1b[31m":                              `"\x1b[31m"`,
		"a\xffb":                                `"a\xffb"`,
		strings.Repeat("x", retry.MaxIDInError): strconv.Quote(strings.Repeat("x", retry.MaxIDInError)),
		long:                                    strconv.Quote(long[:retry.MaxIDInError-1]) + "...", // 9 ASCII bytes, then é is 2 bytes: 200 would cut one
	} {
		if got := retry.QuoteID(id); got != want {
			t.Errorf("QuoteID(%.40q) = %.300s, want %.300s", id, got, want)
		}
	}
}
