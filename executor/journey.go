package executor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// NodeTypeDelay is the built-in delay node. Its Config is {"delay":"2s"} (a
// Go duration) or {"delayMs":2000}. It parks the run durably: the store holds
// the run StatusWaiting with its wake-up time and the scheduler wakes it, so
// a delay survives a restart. A delay node needs a Next.
const NodeTypeDelay = "delay"

// Journey is a workflow definition: nodes with stable ids joined by next
// links. Each run pins the Version it started with and resumes on it.
type Journey struct {
	ID string `json:"id"`
	// Version distinguishes definitions of one ID; 0 means 1. StartRun
	// uses the highest registered version.
	Version int    `json:"version"`
	Start   string `json:"start"`
	Nodes   []Node `json:"nodes"`
	// Policy, when set, decides the failures of this journey's nodes that
	// have no Node.Policy; otherwise the executor's policy decides.
	Policy retry.Policy `json:"-"`

	byID map[string]*Node
}

// Node is one step of a journey.
type Node struct {
	// ID is stable: stored runs refer to it.
	ID string `json:"id"`
	// Type selects the Handler registered with Executor.Handle, or the
	// built-in [NodeTypeDelay].
	Type string `json:"type"`
	// Config is handed to the handler as is.
	Config json.RawMessage `json:"config,omitempty"`
	// Next is the node after this one; empty ends the run.
	Next string `json:"next,omitempty"`
	// Branches maps a value of the output's "branch" field to the next
	// node; an output whose branch is absent or not in the map goes to
	// Next.
	Branches map[string]string `json:"branches,omitempty"`
	// Policy overrides the journey's and the executor's policy for this
	// node.
	Policy retry.Policy `json:"-"`
	// Timeout overrides Config.NodeTimeout for this node.
	Timeout time.Duration `json:"timeout,omitempty"`

	delay time.Duration
}

// next returns the node to run after n produced out.
func (n *Node) next(out json.RawMessage) string {
	if len(n.Branches) > 0 && len(out) > 0 {
		var b struct {
			Branch *string `json:"branch"`
		}
		if json.Unmarshal(out, &b) == nil && b.Branch != nil {
			if to, ok := n.Branches[*b.Branch]; ok {
				return to
			}
		}
	}
	return n.Next
}

// parseDelay reads a delay node's config.
func parseDelay(raw json.RawMessage) (time.Duration, error) {
	var c struct {
		Delay   *string `json:"delay"`
		DelayMs *int64  `json:"delayMs"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) == 0 || dec.Decode(&c) != nil {
		return 0, fmt.Errorf(`config: want {"delay":"2s"} or {"delayMs":2000}`)
	}
	var d time.Duration
	switch {
	case c.Delay != nil && c.DelayMs != nil:
		return 0, fmt.Errorf("config: give delay or delayMs, not both")
	case c.Delay != nil:
		var err error
		if d, err = time.ParseDuration(*c.Delay); err != nil {
			return 0, fmt.Errorf("config: delay %q: want a Go duration", *c.Delay)
		}
	case c.DelayMs != nil && *c.DelayMs <= maxDelay.Milliseconds():
		d = time.Duration(*c.DelayMs) * time.Millisecond
	default:
		return 0, fmt.Errorf(`config: want {"delay":"2s"} or {"delayMs":2000}, at most %s`, maxDelay)
	}
	if d < 0 || d > maxDelay {
		return 0, fmt.Errorf("config: delay %s: want 0 to %s", d, maxDelay)
	}
	return d, nil
}

// maxDelay bounds a delay node (ten years), so a wake-up time never
// overflows.
const maxDelay = 10 * 365 * 24 * time.Hour

// validate checks j and indexes its nodes; known reports whether a node
// type has a handler. The error names the journey and the node.
func (j *Journey) validate(known func(string) bool) error {
	if j.ID == "" {
		return fmt.Errorf("journey: empty id")
	}
	if !retry.StorableText(j.ID) {
		return fmt.Errorf("journey %q: id holds a NUL byte or invalid UTF-8", j.ID)
	}
	if j.Version < 0 {
		return fmt.Errorf("journey %s: version %d: want >= 0", j.ID, j.Version)
	}
	j.Version = max(j.Version, 1)
	j.byID = make(map[string]*Node, len(j.Nodes))
	for i := range j.Nodes {
		n := &j.Nodes[i]
		if n.ID == "" {
			return fmt.Errorf("journey %s: node %d: empty id", j.ID, i)
		}
		if !retry.StorableText(n.ID) {
			return fmt.Errorf("journey %s: node %q: id holds a NUL byte or invalid UTF-8", j.ID, n.ID)
		}
		if _, dup := j.byID[n.ID]; dup {
			return fmt.Errorf("journey %s: node %s: duplicate id", j.ID, n.ID)
		}
		j.byID[n.ID] = n
		if n.Timeout < 0 {
			return fmt.Errorf("journey %s: node %s: timeout %s: want >= 0", j.ID, n.ID, n.Timeout)
		}
		if n.Type == NodeTypeDelay {
			d, err := parseDelay(n.Config)
			if err != nil {
				return fmt.Errorf("journey %s: node %s: %w", j.ID, n.ID, err)
			}
			if n.Next == "" {
				return fmt.Errorf("journey %s: node %s: a delay node needs a next node", j.ID, n.ID)
			}
			n.delay = d
		} else if !known(n.Type) {
			return fmt.Errorf("journey %s: node %s: no handler for type %q (register handlers first)", j.ID, n.ID, n.Type)
		}
	}
	if j.Start == "" {
		return fmt.Errorf("journey %s: no start node", j.ID)
	}
	if j.byID[j.Start] == nil {
		return fmt.Errorf("journey %s: start node %s does not exist", j.ID, j.Start)
	}
	for i := range j.Nodes {
		n := &j.Nodes[i]
		for _, to := range n.targets() {
			if j.byID[to] == nil {
				return fmt.Errorf("journey %s: node %s: next node %s does not exist", j.ID, n.ID, to)
			}
		}
	}
	// Cycle check: depth-first with colours. A delay-then-retry loop is a
	// cycle too; retries belong to the policy, not to the graph.
	const (
		white = iota
		grey
		black
	)
	colour := make(map[string]int, len(j.Nodes))
	var visit func(id string) error
	visit = func(id string) error {
		colour[id] = grey
		for _, to := range j.byID[id].targets() {
			switch colour[to] {
			case grey:
				return fmt.Errorf("journey %s: node %s: next node %s closes a cycle", j.ID, id, to)
			case white:
				if err := visit(to); err != nil {
					return err
				}
			}
		}
		colour[id] = black
		return nil
	}
	for i := range j.Nodes {
		if colour[j.Nodes[i].ID] == white {
			if err := visit(j.Nodes[i].ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *Node) targets() []string {
	var ts []string
	if n.Next != "" {
		ts = append(ts, n.Next)
	}
	for _, to := range n.Branches {
		ts = append(ts, to)
	}
	return ts
}
