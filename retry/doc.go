// Package retry is the shared vocabulary of the journey retry framework: the
// run record and its statuses, error classification, retry decisions, and the
// three small interfaces that the rest of the module plugs together:
//
//   - [Policy] decides whether and when a failed node is retried. Policies are
//     stateless: they compute from the persisted retry count, so a run may
//     resume in another process.
//   - [Store] is the source of truth for runs and their attempt history. Every
//     retry decision is written to the store, atomically, before any scheduler
//     hears of it.
//   - [Scheduler] only wakes things up. It may lose everything (a process
//     restart, a flushed Redis) and be rebuilt from the store.
//
// The package does no I/O and imports nothing outside the standard library, so
// every backend, policy and conformance suite can depend on it.
//
// Time is always passed in: every method that compares times takes a now
// argument, so backends are deterministic under test.
package retry
