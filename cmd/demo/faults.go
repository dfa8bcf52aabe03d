package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// faultRates are the chances of each fault the demo's node handlers inject.
type faultRates struct {
	// NetworkBlip is the chance that an SMS or clinic API call fails with a
	// connection reset (class network_blip, retried at once), per attempt.
	NetworkBlip float64 `json:"networkBlip"`
	// DatabaseLock is the chance that registering or recording hits a
	// database lock (class database_lock, retried at once), per attempt.
	DatabaseLock float64 `json:"databaseLock"`
	// RateLimit is the chance that the SMS gateway or the clinic API answers
	// 429 with a Retry-After (class rate_limit, long backoff), per attempt.
	RateLimit float64 `json:"rateLimit"`
	// Maintenance is the chance that a run's clinic call falls into a
	// maintenance window lasting 1 to 4 attempts (class
	// downstream_maintenance; 4 outlast the default 3 retries).
	Maintenance float64 `json:"maintenance"`
	// BadPatient is the chance that a patient record is invalid (class
	// validation, permanent: never retried).
	BadPatient float64 `json:"badPatient"`
}

func defaultFaultRates() faultRates {
	return faultRates{NetworkBlip: 0.10, DatabaseLock: 0.05, RateLimit: 0.04, Maintenance: 0.05, BadPatient: 0.03}
}

// validate names the first rate outside [0, 1], prefixed by prefix.
func (f faultRates) validate(prefix string) error {
	for _, r := range []struct {
		key string
		v   float64
	}{
		{"networkBlip", f.NetworkBlip}, {"databaseLock", f.DatabaseLock}, {"rateLimit", f.RateLimit},
		{"maintenance", f.Maintenance}, {"badPatient", f.BadPatient},
	} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			return retry.InvalidField(prefix+r.key, "%v: want a probability from 0 to 1", r.v)
		}
	}
	return nil
}

// faults decides, reproducibly, whether an attempt fails: every decision is
// a hash of (seed, run, node, the run's attempt number, fault kind), not a
// draw from a shared random stream, so the same seed gives the same faults
// whatever order the workers run in, in one process or several, before and
// after a restart. The run's attempt number, unlike the node's, keeps
// counting across an operator replay (runs retry), so a replayed run draws
// new faults instead of repeating the ones it failed on.
type faults struct {
	seed  uint64
	rates faultRates
}

// roll returns a uniform value in [0, 1) fixed by its arguments.
func (f faults) roll(run, node string, attempt int, kind string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], f.seed)
	h.Write(b[:])
	for _, s := range []string{run, node, kind} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	binary.LittleEndian.PutUint64(b[:], uint64(attempt))
	h.Write(b[:])
	// splitmix64's finaliser spreads FNV's weak low bits over the word.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// pick returns one of n choices, fixed by its arguments.
func (f faults) pick(run, node string, attempt int, kind string, n int) int {
	return min(int(f.roll(run, node, attempt, kind)*float64(n)), n-1)
}

// The errors the handlers return. Their messages are stable (no ids, no
// times) so that the summary's top errors group them.
var (
	errConnReset   = errors.New("connection reset by peer")
	errLocked      = errors.New("database is locked (SQLITE_BUSY)")
	errTooMany     = errors.New("429 Too Many Requests")
	errMaintenance = errors.New("503 Service Unavailable: scheduled maintenance")
)

// networkBlip fails the attempt with a connection reset, at the network
// rate.
func (f faults) networkBlip(c nodeCall, what string) error {
	if f.roll(c.RunID, c.NodeID, c.RunAttempt, "network") < f.rates.NetworkBlip {
		return retry.WithClass(fmt.Errorf("%s: %w", what, errConnReset), retry.ClassNetworkBlip)
	}
	return nil
}

// databaseLock fails the attempt with a lock, at the database lock rate.
func (f faults) databaseLock(c nodeCall, what string) error {
	if f.roll(c.RunID, c.NodeID, c.RunAttempt, "dblock") < f.rates.DatabaseLock {
		return retry.WithClass(fmt.Errorf("%s: %w", what, errLocked), retry.ClassDatabaseLock)
	}
	return nil
}

// rateLimit fails the attempt with a 429 asking for a Retry-After of 200 to
// 800 ms (seconds, scaled down), at the rate limit rate.
func (f faults) rateLimit(c nodeCall, what string) error {
	if f.roll(c.RunID, c.NodeID, c.RunAttempt, "ratelimit") < f.rates.RateLimit {
		after := time.Duration(200+200*f.pick(c.RunID, c.NodeID, c.RunAttempt, "retryafter", 4)) * time.Millisecond
		err := retry.WithClass(fmt.Errorf("%s: %w", what, errTooMany), retry.ClassRateLimit)
		return retry.RetryAfter(err, after)
	}
	return nil
}

// maintenance fails the first 1 to 4 attempts of a visit of the node when
// that visit falls into a maintenance window, at the maintenance rate. A
// visit is the node's attempts from its first to its last retry; it is
// keyed by the run attempt it began with, so a replay is a new visit.
func (f faults) maintenance(c nodeCall, what string) error {
	visit := c.RunAttempt - c.Attempt + 1
	if f.roll(c.RunID, c.NodeID, visit, "maintenance") >= f.rates.Maintenance {
		return nil
	}
	if window := 1 + f.pick(c.RunID, c.NodeID, visit, "window", 4); c.Attempt <= window {
		return retry.WithClass(fmt.Errorf("%s: %w", what, errMaintenance), retry.ClassDownstreamMaintenance)
	}
	return nil
}

// badPatient reports whether the run's patient record is generated
// invalid, and which defect it has.
func (f faults) badPatient(index int) (defect string, bad bool) {
	key := fmt.Sprint(index)
	if f.roll(key, "patient", 0, "bad") >= f.rates.BadPatient {
		return "", false
	}
	defects := []string{"missing phone number", "birth date in the future", "unknown clinic"}
	return defects[f.pick(key, "patient", 0, "defect", len(defects))], true
}
