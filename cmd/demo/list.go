package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/journeyretry/journeyretry/retry"
)

// listPage is the page size of run listings.
const listPage = 500

// eachPage calls fn with every run in status st ("" for all), in id order,
// a page at a time.
func eachPage(ctx context.Context, s retry.Inspector, st retry.Status, fn func([]retry.Run) error) error {
	after := ""
	for {
		page, err := s.ListRuns(ctx, retry.RunFilter{Status: st, AfterID: after, Limit: listPage})
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
		after = page[len(page)-1].ID
	}
}

// oneLine keeps a message on one line for tables.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
