package storetest

import (
	"strconv"
	"strings"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// hostileID is a run id a legacy row may hold: a newline and an escape
// sequence, then 1 KB.
var hostileID = "a\nb\x1b[31m" + strings.Repeat("x", 1024)

var idChecks = []check{
	{"IDs/QuotedAndCutInErrors", func(h *harness) {
		now := at(time.Second)
		missing := hostileID + "-missing"
		r := h.createClaimed(hostileID, at(0))
		c := r.Claim()
		lost := retry.Claim{RunID: hostileID, Token: "not-the-token"}
		errs := map[string]error{}
		_, errs["Create of a taken id"] = h.s.Create(h.ctx, newRun(hostileID), now)
		_, errs["Get of a missing run"] = h.s.Get(h.ctx, missing)
		_, errs["Attempts of a missing run"] = h.s.Attempts(h.ctx, missing)
		_, errs["ClaimRun of a missing run"] = h.s.ClaimRun(h.ctx, missing, "w", now, lease)
		_, errs["ClaimRun of a claimed run"] = h.s.ClaimRun(h.ctx, hostileID, "w", now, lease)
		_, errs["ExtendLease of a lost claim"] = h.s.ExtendLease(h.ctx, lost, now, lease)
		_, errs["CompleteNode under a lost claim"] = h.s.CompleteNode(h.ctx, lost, retry.NodeSuccess{NodeID: "a", FinishedAt: now})
		_, errs["CompleteNode without a node"] = h.s.CompleteNode(h.ctx, c, retry.NodeSuccess{FinishedAt: now})
		_, errs["RecordFailure under a lost claim"] = h.s.RecordFailure(h.ctx, lost, retryAfter("a", now, 0))
		errs["Release with an empty token"] = h.s.Release(h.ctx, retry.Claim{RunID: hostileID}, now)
		if h.s.in != nil {
			_, errs["Replay of a run in progress"] = h.s.Replay(h.ctx, hostileID, now)
			_, errs["Replay without a time"] = h.s.Replay(h.ctx, hostileID, time.Time{})
		}
		for what, err := range errs {
			checkQuotedID(h, what, err, hostileID)
		}
	}},
}

// checkQuotedID fails unless err is one line naming id as [retry.QuoteID]
// prints it: quoted, cut to [retry.MaxIDInError] bytes.
func checkQuotedID(h *harness, what string, err error, id string) {
	h.t.Helper()
	if err == nil {
		h.t.Errorf("%s: no error", what)
		return
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\x1b") || !strings.Contains(msg, retry.QuoteID(id)) || len(msg) > 2*retry.MaxIDInError+200 {
		h.t.Errorf("%s: %d bytes, %.400q; want one line naming the id as %.60s... (quoted, cut to %d bytes)",
			what, len(msg), msg, strconv.Quote(id), retry.MaxIDInError)
	}
}
