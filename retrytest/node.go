package retrytest

import (
	"context"
	"encoding/json"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
)

// Attempt is one synthesised attempt of a node, for [RunNode]: the run and
// node it belongs to and how many retries came before it.
type Attempt struct {
	// RunID and JourneyID name the run; defaults "run-1" and "journey".
	RunID, JourneyID string
	// Node is the node executed; Node.ID defaults to "node".
	Node executor.Node
	// RetryCount is the number of retries of this node before this
	// attempt: the handler sees Attempt = RetryCount + 1.
	RetryCount int
	// Input and Outputs are the run's context: its input and the outputs
	// of the nodes before this one.
	Input   json.RawMessage
	Outputs map[string]json.RawMessage
}

// NodeInput returns the NodeInput the executor would hand the handler for
// a: the same idempotency key every attempt of the node gets, and the
// attempt numbers that follow from its retry count (RunAttempt counts one
// attempt for each node in Outputs).
func (a Attempt) NodeInput() executor.NodeInput {
	a.RunID, a.JourneyID, a.Node.ID = cmpOr(a.RunID, "run-1"), cmpOr(a.JourneyID, "journey"), cmpOr(a.Node.ID, "node")
	rc := retry.RunContext{Input: a.Input, Outputs: a.Outputs}
	run := retry.Run{ID: a.RunID, JourneyID: a.JourneyID, Status: retry.StatusInProgress, CurrentNodeID: a.Node.ID,
		Context: rc, RetryCount: a.RetryCount, AttemptCount: len(a.Outputs) + a.RetryCount, RetryEnabled: true}
	return executor.NodeInput{Run: run, Node: a.Node, Config: a.Node.Config, Context: rc,
		IdempotencyKey: run.IdempotencyKey(), Attempt: a.RetryCount + 1, RunAttempt: run.AttemptCount + 1}
}

// RunNode runs handler once as attempt a and returns what it returned:
// for a unit test of a handler's behaviour on a given retry, without an
// executor or a store.
func RunNode(ctx context.Context, handler executor.Handler, a Attempt) (json.RawMessage, error) {
	return handler.Execute(ctx, a.NodeInput())
}
