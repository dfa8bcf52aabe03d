package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TestFaultsAreAFunctionOfTheAttempt: the same (seed, run, node, attempt
// numbers) always gives the same outcome, in any order, and another seed
// other faults; the rates hold over many attempts.
func TestFaultsAreAFunctionOfTheAttempt(t *testing.T) {
	f := faults{seed: 7, rates: defaultFaultRates()}
	type key struct {
		run     string
		attempt int
	}
	first := map[key]string{}
	outcome := func(f faults, k key) string {
		// The clinic call is the run's fourth node: its attempts follow
		// the run's first three.
		_, err := f.handle(typeClinic, nodeCall{RunID: k.run, NodeID: nodeCallClinic, Attempt: k.attempt, RunAttempt: 3 + k.attempt})
		if err == nil {
			return "ok"
		}
		return string(retry.ClassOf(err)) + ": " + err.Error()
	}
	const n = 20000
	failed := 0
	for i := range n {
		k := key{demoRunID(i % 5000), 1 + i/5000}
		first[k] = outcome(f, k)
		if first[k] != "ok" {
			failed++
		}
	}
	for i := n - 1; i >= 0; i-- { // reverse order: same answers
		k := key{demoRunID(i % 5000), 1 + i/5000}
		if got := outcome(f, k); got != first[k] {
			t.Fatalf("%v: %q, then %q", k, first[k], got)
		}
	}
	other := faults{seed: 8, rates: f.rates}
	same := 0
	for k, v := range first {
		if outcome(other, k) == v {
			same++
		}
	}
	if same == len(first) {
		t.Error("seed 8 gives exactly the faults of seed 7")
	}
	// Blips 10% and rate limits 4% per attempt, plus maintenance windows:
	// well over 10% and under 30% of clinic calls fail.
	if rate := float64(failed) / n; rate < 0.10 || rate > 0.30 {
		t.Errorf("clinic call failure rate %.3f", rate)
	}
}

// TestReplayDrawsNewFaults: after an operator replay a node's attempts
// count from 1 again, but the run's attempt numbers go on (the replay is
// one of them), so the replayed run draws other faults than the ones it
// failed on, reproducibly.
func TestReplayDrawsNewFaults(t *testing.T) {
	f := faults{seed: 1, rates: defaultFaultRates()}
	for _, tt := range []struct{ typ, node string }{
		{typeRegister, nodeRegister},
		{typeSMS, nodeSendReminder},
		{typeClinic, nodeCallClinic},
		{typeRecord, nodeConfirmed},
	} {
		t.Run(tt.node, func(t *testing.T) {
			const runs, tries = 2000, 4 // the first try and 3 retries
			// visit is the outcomes of the node's tries 1-4, the first
			// being the run's attempt number first.
			visit := func(id string, input json.RawMessage, first int) string {
				var b strings.Builder
				for a := 1; a <= tries; a++ {
					_, err := f.handle(tt.typ, nodeCall{RunID: id, NodeID: tt.node, Attempt: a, RunAttempt: first + a - 1, Input: input})
					fmt.Fprintf(&b, "%v; ", err)
				}
				return b.String()
			}
			changed := 0
			for i := 1; i <= runs; i++ {
				id, input := demoRunID(i), mustMarshal(t, faults{seed: 1}.newPatient(i))
				// Before the replay the node's tries are the run's
				// attempts 2-5; the replay is attempt 6.
				before, after := visit(id, input, 2), visit(id, input, 2+tries+1)
				if before != after {
					changed++
				}
				if again := visit(id, input, 2+tries+1); again != after {
					t.Fatalf("run %s after a replay: %s, then %s", id, after, again)
				}
			}
			if changed == 0 {
				t.Errorf("a replay repeats the faults of every one of %d runs", runs)
			}
		})
	}
}

func TestFaultClasses(t *testing.T) {
	all := faultRates{NetworkBlip: 1, DatabaseLock: 1, RateLimit: 1, Maintenance: 1, BadPatient: 1}
	f := faults{seed: 1, rates: all}
	c := nodeCall{RunID: "r", NodeID: "n", Attempt: 1, RunAttempt: 1}
	if err := f.networkBlip(c, "x"); retry.ClassOf(err) != retry.ClassNetworkBlip || !errors.Is(err, errConnReset) {
		t.Errorf("network blip: %v", err)
	}
	if err := f.databaseLock(c, "x"); retry.ClassOf(err) != retry.ClassDatabaseLock {
		t.Errorf("database lock: %v", err)
	}
	err := f.rateLimit(c, "x")
	if d, ok := retry.RequestedDelay(err); retry.ClassOf(err) != retry.ClassRateLimit || !ok || d < 200*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("rate limit: %v, Retry-After %v %v", err, d, ok)
	}
	if err := f.maintenance(c, "x"); retry.ClassOf(err) != retry.ClassDownstreamMaintenance {
		t.Errorf("maintenance: %v", err)
	}
	if err := f.maintenance(nodeCall{RunID: "r", NodeID: "n", Attempt: 5, RunAttempt: 5}, "x"); err != nil {
		t.Errorf("maintenance window outlasted 4 attempts: %v", err)
	}
	p := f.newPatient(3)
	if err := p.validate(); err == nil {
		t.Errorf("bad patient %+v validates", p)
	}
	_, err = f.handle(typeRegister, nodeCall{RunID: "r", NodeID: nodeRegister, Attempt: 1, Input: mustMarshal(t, p)})
	if !retry.IsPermanent(err) || retry.ClassOf(err) != retry.ClassValidation {
		t.Errorf("register a bad patient: %v", err)
	}
	good := faults{seed: 1}.newPatient(3)
	if err := good.validate(); err != nil {
		t.Errorf("patient %+v: %v", good, err)
	}
}

// TestValidateNamesTheField: each of the demo's own sections names its bad
// field with a retry.FieldError, wrapping retry.ErrInvalidArgument.
func TestValidateNamesTheField(t *testing.T) {
	settings := defaultDemoSettings()
	settings.Runs = 0
	rates := defaultDemoSettings()
	rates.Faults.RateLimit = 2
	for _, tc := range []struct {
		field string
		err   error
	}{
		{"runs", settings.Validate()},
		{"faults.rateLimit", rates.Validate()},
		{"level", logConfig{Level: "loud", Format: "text"}.Validate()},
		{"format", logConfig{Level: "info", Format: "xml"}.Validate()},
		{"listen", metricsConfig{Listen: "nowhere"}.Validate()},
		{"listen", serveConfig{Listen: "nowhere"}.Validate()},
		{"listen", serveConfig{Listen: "192.0.2.1:80"}.Validate()},
	} {
		if fe, ok := errors.AsType[*retry.FieldError](tc.err); !ok || fe.Field != tc.field || !errors.Is(tc.err, retry.ErrInvalidArgument) {
			t.Errorf("%v: want a retry.FieldError naming %s, wrapping ErrInvalidArgument", tc.err, tc.field)
		}
	}
}
