package executor_test

import "github.com/journeyretry/journeyretry/executor"

// startSync executes a run in line; BenchmarkEndToEnd uses it so that the
// same benchmark runs at commits where StartRun itself did.
var startSync = (*executor.Executor).StartRunSync
