package executor

import (
	"context"
	"encoding/json"

	"github.com/journeyretry/journeyretry/retry"
)

// Handler executes nodes of one type.
//
// Execution is at-least-once: a node whose worker crashed, lost its lease or
// was stopped before its result was committed runs again, with the same
// IdempotencyKey and a higher Attempt. A node whose completion was committed
// never runs again. Handlers with side effects should pass IdempotencyKey
// upstream so a repeat can be deduplicated.
//
// Execute must honour ctx: it is cancelled at the node timeout (the failure
// is then classified retry.ClassTimeout), on a lost lease, and at the end of
// a shutdown's grace period. Return errors tagged with retry.WithClass,
// retry.Permanent or retry.RetryAfter so the policy can route them.
type Handler interface {
	Execute(ctx context.Context, in NodeInput) (json.RawMessage, error)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, in NodeInput) (json.RawMessage, error)

// Execute calls f(ctx, in).
func (f HandlerFunc) Execute(ctx context.Context, in NodeInput) (json.RawMessage, error) {
	return f(ctx, in)
}

// NodeInput is what a handler receives. Everything in it is read-only (maps
// and slices are shared with the executor).
type NodeInput struct {
	// Run is the run as last written, a copy, with the claim the node runs
	// under (LeaseExpiresAt as it stood when the node started).
	Run retry.Run
	// Node is the node being executed; Config is its configuration.
	Node   Node
	Config json.RawMessage
	// Context holds the run's input and the outputs of completed nodes.
	Context retry.RunContext
	// IdempotencyKey is run id + "/" + node id: the same for every attempt
	// of this node in this run.
	IdempotencyKey string
	// Attempt numbers the attempts of this node from 1; RunAttempt numbers
	// the run's attempts, all nodes together, from 1.
	Attempt    int
	RunAttempt int
}
