package storetest

import (
	"errors"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

var invalidChecks = []check{
	{"Invalid/Arguments", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		c := r.Claim()
		now := at(time.Second)
		bad := func(f func(*retry.NewRun)) retry.NewRun { nr := newRun("r2"); f(&nr); return nr }
		ok := retry.NodeSuccess{NodeID: "a", FinishedAt: now}
		for what, call := range map[string]func() error{
			"Create without a journey": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.JourneyID = "" }), now)
				return err
			},
			"Create without a start node": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.StartNodeID = "" }), now)
				return err
			},
			"Create with max retries -2": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.MaxRetries = -2 }), now)
				return err
			},
			"Create with max retries 2^40": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.MaxRetries = 1 << 40 }), now)
				return err
			},
			"Create with journey version -1": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.JourneyVersion = -1 }), now)
				return err
			},
			"Create with invalid input": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.Input = []byte("{") }), now)
				return err
			},
			"Get with an empty id":           func() error { _, err := h.s.Get(h.ctx, ""); return err },
			"ClaimRun with an empty id":      func() error { _, err := h.s.ClaimRun(h.ctx, "", "w", now, lease); return err },
			"ClaimRun with a zero lease":     func() error { _, err := h.s.ClaimRun(h.ctx, "r1", "w", at(time.Hour), 0); return err },
			"ClaimDue with limit 0":          func() error { _, err := h.s.ClaimDue(h.ctx, "w", at(time.Hour), at(time.Hour), lease, 0); return err },
			"ClaimDue with a negative lease": func() error { _, err := h.s.ClaimDue(h.ctx, "w", at(time.Hour), at(time.Hour), -lease, 10); return err },
			"ClaimDue due by after now": func() error {
				_, err := h.s.ClaimDue(h.ctx, "w", at(2*time.Hour), at(time.Hour), lease, 10)
				return err
			},
			"ExtendLease with an empty token": func() error {
				_, err := h.s.ExtendLease(h.ctx, retry.Claim{RunID: "r1"}, now, lease)
				return err
			},
			"ExtendLease with a zero lease": func() error { _, err := h.s.ExtendLease(h.ctx, c, now, 0); return err },
			"Release with an empty run id":  func() error { return h.s.Release(h.ctx, retry.Claim{Token: c.Token}, now) },
			"CompleteNode without a node":   func() error { _, err := h.s.CompleteNode(h.ctx, c, retry.NodeSuccess{FinishedAt: now}); return err },
			"CompleteNode without a time":   func() error { _, err := h.s.CompleteNode(h.ctx, c, retry.NodeSuccess{NodeID: "a"}); return err },
			"CompleteNode with bad output": func() error {
				s := ok
				s.Output = []byte("{nope")
				_, err := h.s.CompleteNode(h.ctx, c, s)
				return err
			},
			"RecordFailure without a node": func() error {
				f := retryAfter("", now, 0)
				_, err := h.s.RecordFailure(h.ctx, c, f)
				return err
			},
			"RecordFailure with a negative delay": func() error {
				_, err := h.s.RecordFailure(h.ctx, c, retryAfter("a", now, -time.Second))
				return err
			},
			"ListWakeups with limit 0": func() error { _, err := h.s.ListWakeups(h.ctx, "", 0); return err },
			// Identifiers and JSON that a database cannot store alike.
			"Create with a NUL in its journey id": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.JourneyID = "j\x00" }), now)
				return err
			},
			"Create with invalid UTF-8 in its id": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.ID = "r2\xff" }), now)
				return err
			},
			"Create with \\u0000 in its input": func() error {
				_, err := h.s.Create(h.ctx, bad(func(n *retry.NewRun) { n.Input = []byte(`{"x":"a\u0000b"}`) }), now)
				return err
			},
			"Get with a NUL in the id": func() error { _, err := h.s.Get(h.ctx, "r1\x00"); return err },
			"ClaimDue with a NUL in the worker": func() error {
				_, err := h.s.ClaimDue(h.ctx, "w\x00", at(time.Hour), at(time.Hour), lease, 10)
				return err
			},
			"CompleteNode with a NUL in the node": func() error {
				s := ok
				s.NodeID = "a\x00"
				_, err := h.s.CompleteNode(h.ctx, c, s)
				return err
			},
			"CompleteNode with \\u0000 in its output": func() error {
				s := ok
				s.Output = []byte(`["\u0000"]`)
				_, err := h.s.CompleteNode(h.ctx, c, s)
				return err
			},
			"RecordFailure with a NUL in the node": func() error {
				_, err := h.s.RecordFailure(h.ctx, c, retryAfter("a\x00", now, 0))
				return err
			},
		} {
			h.expectErr(what, call(), retry.ErrInvalidArgument)
		}
		if _, err := h.s.Get(h.ctx, "r2"); !errors.Is(err, retry.ErrNotFound) {
			h.t.Fatalf("a rejected Create left run r2 behind (Get: %v)", err)
		}
		h.unchanged("rejected calls", r, 0)
		if h.s.in != nil {
			in := h.s
			_, err := in.TopErrors(h.ctx, at(0), at(time.Hour), 0)
			h.expectErr("TopErrors with limit 0", err, retry.ErrInvalidArgument)
			_, err = in.ListRuns(h.ctx, retry.RunFilter{Limit: -1})
			h.expectErr("ListRuns with limit -1", err, retry.ErrInvalidArgument)
			_, err = in.Replay(h.ctx, "", at(0))
			h.expectErr("Replay with an empty id", err, retry.ErrInvalidArgument)
		}
	}},
	{"Invalid/Closed", func(h *harness) {
		r := h.createClaimed("r1", at(0))
		if err := h.s.Close(); err != nil {
			h.t.Fatalf("Close: %v", err)
		}
		now := at(time.Second)
		for what, call := range map[string]func() error{
			"Close":       h.s.Close,
			"Create":      func() error { _, err := h.s.Create(h.ctx, newRun("r2"), now); return err },
			"Get":         func() error { _, err := h.s.Get(h.ctx, "r1"); return err },
			"Attempts":    func() error { _, err := h.s.Attempts(h.ctx, "r1"); return err },
			"ClaimRun":    func() error { _, err := h.s.ClaimRun(h.ctx, "r1", "w", now, lease); return err },
			"ClaimDue":    func() error { _, err := h.s.ClaimDue(h.ctx, "w", now, now, lease, 10); return err },
			"ExtendLease": func() error { _, err := h.s.ExtendLease(h.ctx, r.Claim(), now, lease); return err },
			"Release":     func() error { return h.s.Release(h.ctx, r.Claim(), now) },
			"CompleteNode": func() error {
				_, err := h.s.CompleteNode(h.ctx, r.Claim(), retry.NodeSuccess{NodeID: "a", FinishedAt: now})
				return err
			},
			"RecordFailure": func() error { _, err := h.s.RecordFailure(h.ctx, r.Claim(), retryAfter("a", now, 0)); return err },
			"ListWakeups":   func() error { _, err := h.s.ListWakeups(h.ctx, "", 10); return err },
		} {
			h.expectErr(what+" after Close", call(), retry.ErrClosed)
		}
	}},
}
