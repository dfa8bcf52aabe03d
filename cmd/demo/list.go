package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/journeyretry/journeyretry/retry"
)

// listPage is the page size of run listings.
const listPage = 500

// eachPage calls fn with every run f keeps (its page bounds aside), in id
// order, a page at a time.
func eachPage(ctx context.Context, s retry.Inspector, f retry.RunFilter, fn func([]retry.Run) error) error {
	for f.Limit = listPage; ; {
		page, err := s.ListRuns(ctx, f)
		if err != nil {
			return fmt.Errorf("list runs: %w", err)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(page) < listPage {
			return nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}

// oneLine keeps a message on one line for tables.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// quoteID is a run id as tables print it: Go-quoted, so that no id (a
// legacy one may hold anything the store accepts) splits or recolours a
// line. Error lines cut it too: [retry.QuoteID].
func quoteID(id string) string { return strconv.Quote(id) }

// lineSafe escapes what would split or recolour an error line: control
// characters and invalid UTF-8, as Go escapes them in a quoted string.
func lineSafe(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch q := strconv.Quote(s[i : i+n]); {
		case r == utf8.RuneError && n == 1, unicode.IsControl(r):
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
