package storetest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// batchChecks cover the optional retry.BatchCreator.
var batchChecks = []check{
	{"CreateMany/AsCreate", func(h *harness) {
		b := h.batch()
		claimed := newRun("r-claimed")
		claimed.Worker, claimed.Lease = "creator", lease
		plain, generated := newRun("r-plain"), newRun("")
		generated.DisableRetry = true
		runs := h.createMany(b, []retry.NewRun{plain, claimed, generated}, at(0))
		if len(runs) != 3 || runs[0].ID != "r-plain" || runs[1].ID != "r-claimed" || runs[2].ID == "" {
			h.t.Fatalf("CreateMany returned ids %v; want r-plain, r-claimed and a generated one, in order", runIDs(runs))
		}
		want := retry.Run{ID: "r-plain", JourneyID: "journey", JourneyVersion: 2, Status: retry.StatusInProgress,
			CurrentNodeID: "a", Context: retry.RunContext{Input: plain.Input}, MaxRetries: 3, RetryEnabled: true,
			CreatedAt: at(0), UpdatedAt: at(0)}
		if !sameRun(runs[0], want) {
			h.t.Fatalf("CreateMany returned %+v; want %+v", runs[0], want)
		}
		for _, r := range runs {
			if got := h.get(r.ID); !sameRun(got, r) {
				h.t.Fatalf("Get returned %+v; CreateMany %+v", got, r)
			}
		}
		if c := runs[1]; c.ClaimToken == "" || c.ClaimedBy != "creator" || !c.LeaseExpiresAt.Equal(at(lease)) {
			h.t.Fatalf("a run created claimed: token %q, worker %q, lease %v; want a token, creator, %v", c.ClaimToken, c.ClaimedBy, c.LeaseExpiresAt, at(lease))
		}
		if runs[2].RetryEnabled {
			h.t.Fatal("DisableRetry ignored")
		}
		h.claimRun("r-plain", at(0))
		_, err := h.s.ClaimRun(h.ctx, "r-claimed", "other", at(lease-1), lease)
		h.expectErr("ClaimRun of a run created claimed", err, retry.ErrNotClaimable)
		if runs, err := call(h.s, "CreateMany", func() ([]retry.Run, error) { return b.CreateMany(h.ctx, nil, at(0)) }); err != nil || runs != nil {
			h.t.Fatalf("CreateMany of none = %v, %v; want nil, nil", runs, err)
		}
	}},
	{"CreateMany/Many", func(h *harness) {
		// More than one statement's worth on the Bun store, and not a
		// multiple of it.
		nrs := make([]retry.NewRun, 250)
		for i := range nrs {
			nrs[i] = newRun(fmt.Sprintf("r%03d", len(nrs)-i))
		}
		runs := h.createMany(h.batch(), nrs, at(0))
		for i, r := range runs {
			if r.ID != nrs[i].ID || !sameRun(h.get(r.ID), r) {
				h.t.Fatalf("run %d: CreateMany returned %+v, Get %+v", i, r, h.get(nrs[i].ID))
			}
		}
	}},
	{"CreateMany/DuplicateID", func(h *harness) {
		b := h.batch()
		before := h.create(newRun("r2"), at(0))
		h.create(newRun("r4"), at(0))
		_, err := call(h.s, "CreateMany", func() ([]retry.Run, error) {
			return b.CreateMany(h.ctx, []retry.NewRun{newRun("r3"), newRun("r4"), newRun("r2"), newRun("r1")}, at(1))
		})
		h.expectErr("CreateMany with taken ids", err, retry.ErrDuplicateRun)
		h.unchanged("CreateMany with a taken id", before, 0)
		h.missing("CreateMany with a taken id", "r1", "r3")
		if !strings.Contains(err.Error(), `"r2"`) || strings.Contains(err.Error(), `"r4"`) {
			h.t.Fatalf("CreateMany with ids r2 and r4 taken: %v; want it to name r2, the least", err)
		}
	}},
	{"CreateMany/RepeatedID", func(h *harness) {
		h.create(newRun("a"), at(0))
		_, err := call(h.s, "CreateMany", func() ([]retry.Run, error) {
			return h.batch().CreateMany(h.ctx, []retry.NewRun{newRun("c"), newRun("b"), newRun("a"), newRun("c"), newRun("b")}, at(1))
		})
		h.expectErr("CreateMany with an id twice", err, retry.ErrDuplicateRun)
		if !strings.Contains(err.Error(), `"b"`) {
			h.t.Fatalf("CreateMany with b and c twice: %v; want it to name b, the least", err)
		}
		h.missing("CreateMany with an id twice", "b", "c")
	}},
	{"CreateMany/Invalid", func(h *harness) {
		bad := newRun("r\x00")
		_, err := call(h.s, "CreateMany", func() ([]retry.Run, error) {
			return h.batch().CreateMany(h.ctx, []retry.NewRun{newRun("r1"), bad}, at(0))
		})
		h.expectErr("CreateMany with an invalid run", err, retry.ErrInvalidArgument)
		h.missing("CreateMany with an invalid run", "r1")
		if !strings.Contains(err.Error(), "run 1") {
			h.t.Fatalf("CreateMany with run 1 invalid: %v; want it to name run 1", err)
		}
	}},
}

// batch returns the store's BatchCreator, or skips the check.
func (h *harness) batch() retry.BatchCreator {
	h.t.Helper()
	b, ok := h.s.s.(retry.BatchCreator)
	if !ok {
		h.t.Skip("store does not implement retry.BatchCreator")
	}
	return b
}

func (h *harness) createMany(b retry.BatchCreator, nrs []retry.NewRun, now time.Time) []retry.Run {
	h.t.Helper()
	runs, err := call(h.s, "CreateMany", func() ([]retry.Run, error) { return b.CreateMany(h.ctx, nrs, now) })
	if err != nil || len(runs) != len(nrs) {
		h.t.Fatalf("CreateMany of %d runs: %d runs, %v", len(nrs), len(runs), err)
	}
	return runs
}

// missing fails unless none of ids exists.
func (h *harness) missing(what string, ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		if _, err := h.s.Get(h.ctx, id); !errors.Is(err, retry.ErrNotFound) {
			h.t.Fatalf("%s wrote run %s (Get: %v); want nothing written", what, id, err)
		}
	}
}
