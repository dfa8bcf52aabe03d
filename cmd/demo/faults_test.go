package main

import (
	"errors"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// TestFaultsAreAFunctionOfTheAttempt: the same (seed, run, node, attempt)
// always gives the same outcome, in any order, and another seed other
// faults; the rates hold over many attempts.
func TestFaultsAreAFunctionOfTheAttempt(t *testing.T) {
	f := faults{seed: 7, rates: defaultFaultRates()}
	type key struct {
		run     string
		attempt int
	}
	first := map[key]string{}
	outcome := func(f faults, k key) string {
		_, err := f.handle(typeClinic, nodeCall{RunID: k.run, NodeID: nodeCallClinic, Attempt: k.attempt})
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

func TestFaultClasses(t *testing.T) {
	all := faultRates{NetworkBlip: 1, DatabaseLock: 1, RateLimit: 1, Maintenance: 1, BadPatient: 1}
	f := faults{seed: 1, rates: all}
	if err := f.networkBlip("r", "n", 1, "x"); retry.ClassOf(err) != retry.ClassNetworkBlip || !errors.Is(err, errConnReset) {
		t.Errorf("network blip: %v", err)
	}
	if err := f.databaseLock("r", "n", 1, "x"); retry.ClassOf(err) != retry.ClassDatabaseLock {
		t.Errorf("database lock: %v", err)
	}
	err := f.rateLimit("r", "n", 1, "x")
	if d, ok := retry.RequestedDelay(err); retry.ClassOf(err) != retry.ClassRateLimit || !ok || d < 200*time.Millisecond || d > 800*time.Millisecond {
		t.Errorf("rate limit: %v, Retry-After %v %v", err, d, ok)
	}
	if err := f.maintenance("r", "n", 1, "x"); retry.ClassOf(err) != retry.ClassDownstreamMaintenance {
		t.Errorf("maintenance: %v", err)
	}
	if err := f.maintenance("r", "n", 5, "x"); err != nil {
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
