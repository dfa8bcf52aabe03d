package retrytest_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retrytest"
)

// A handler's behaviour on a given retry is tested alone: RunNode calls it
// once with the NodeInput the executor would give that attempt, the same
// idempotency key on every attempt of the node.
func ExampleRunNode() {
	send := executor.HandlerFunc(func(ctx context.Context, in executor.NodeInput) (json.RawMessage, error) {
		return json.Marshal(map[string]any{"key": in.IdempotencyKey, "attempt": in.Attempt})
	})
	out, err := retrytest.RunNode(context.Background(), send, retrytest.Attempt{
		RunID: "r1", Node: executor.Node{ID: "send", Type: "send"}, RetryCount: 2,
	})
	fmt.Println(string(out), err)
	// Output: {"attempt":3,"key":"r1/send"} <nil>
}
