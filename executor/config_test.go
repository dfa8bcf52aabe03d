package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/scheduler/memory"
)

func nopHook(context.Context, executor.Event) error { return nil }

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  executor.Config
		want string // "" for valid
	}{
		{executor.Config{}, ""},
		{executor.Config{Mode: executor.ModeSelective, SweepSpec: "*/5 * * * *", Workers: 2, Lease: time.Second}, ""},
		{executor.Config{Workers: -1}, "workers"},
		{executor.Config{Worker: "host-1"}, ""},
		{executor.Config{Worker: "a\x00b"}, `worker: "a\x00b"`},
		{executor.Config{Worker: "a\xffb"}, `worker: "a\xffb"`},
		{executor.Config{Worker: "a\nb"}, `worker: "a\nb"`},
		{executor.Config{Worker: "a\x1b[31mb"}, "worker"},
		{executor.Config{Lease: -time.Second}, "lease"},
		{executor.Config{Lease: time.Nanosecond}, "lease: 1ns: want at least 100ms"},
		{executor.Config{Lease: time.Millisecond}, "lease: 1ms: want at least 100ms"},
		{executor.Config{Lease: 99 * time.Millisecond}, "lease"},
		{executor.Config{Lease: executor.LeaseMin}, ""},
		{executor.Config{SweepGrace: -time.Second}, "sweepGrace"},
		{executor.Config{NodeTimeout: -1}, "nodeTimeout"},
		{executor.Config{ShutdownTimeout: -1}, "shutdownTimeout"},
		{executor.Config{MaxSnoozes: -2}, "maxSnoozes: -2: want -1 (unlimited) or more"},
		{executor.Config{MaxSnoozes: retry.Unlimited}, ""},
		{executor.Config{Mode: "sometimes"}, `mode: "sometimes"`},
		{executor.Config{SweepSpec: "@every soon"}, "sweepSpec"},
		{executor.Config{SweepSpec: "@every 500ms"}, "sweepSpec"},
		{executor.Config{Hooks: []executor.Hook{{Name: "a", Func: nopHook}, {Name: "b", Func: nopHook, Queue: 1}}}, ""},
		{executor.Config{Hooks: []executor.Hook{{Func: nopHook}}}, `hooks: hook 0: name ""`},
		{executor.Config{Hooks: []executor.Hook{{Name: "a\nb", Func: nopHook}}}, "hooks: hook 0"},
		{executor.Config{Hooks: []executor.Hook{{Name: "a", Func: nopHook}, {Name: "a", Func: nopHook}}}, `hooks: hook "a": the name is used twice`},
		{executor.Config{Hooks: []executor.Hook{{Name: "a"}}}, `hooks: hook "a": no Func`},
		{executor.Config{Hooks: []executor.Hook{{Name: "a", Func: nopHook, Queue: -1}}}, `hooks: hook "a": queue -1`},
		{executor.Config{Budget: executor.BudgetConfig{Enabled: true, Ratio: 0.5, MinRetries: 2, Window: time.Second}}, ""},
		{executor.Config{Budget: executor.BudgetConfig{Ratio: 1.5}}, "budget.ratio: 1.5"},
		{executor.Config{Budget: executor.BudgetConfig{MinRetries: -1}}, "budget.minRetries"},
		{executor.Config{Budget: executor.BudgetConfig{Window: time.Millisecond}}, "budget.window"},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if err == nil {
			continue
		}
		field, _, _ := strings.Cut(tc.want, ":")
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("%+v: %v is not a retry.FieldError naming %s, wrapping ErrInvalidArgument", tc.cfg, err, field)
		}
	}
	if _, err := executor.New(executor.Config{Workers: -1}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "workers") {
		t.Errorf("New with a bad config: %v", err)
	}
	sched, _ := memory.New(memory.Config{})
	if _, err := executor.New(executor.Config{}, nil, sched, nil); err == nil {
		t.Error("New without a store succeeded")
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"off", "shadow", "selective", "full"} {
		if m, err := executor.ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "Full", " off", "on"} {
		if _, err := executor.ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) succeeded", s)
		}
	}
}

// FuzzDelayConfig: any delay node config is accepted or refused with an
// error naming the node, never a panic.
func FuzzDelayConfig(f *testing.F) {
	for _, s := range []string{`{"delay":"2s"}`, `{"delayMs":2000}`, `{"delay":"-1s"}`, `{"delayMs":-5}`,
		`{"delay":"1s","delayMs":1}`, `{"wait":1}`, `null`, ``, `{"delay":3}`, `{"delayMs":1e30}`, `{"delayMs":9223372036854775807}`, `{"delay":"2562047h"}`} {
		f.Add(s)
	}
	h := newHarness(f, executor.Config{}, retry.PolicyFunc(func(retry.Failure) retry.Decision { return retry.Decision{} }))
	must(f, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	n := 0
	f.Fuzz(func(t *testing.T, cfg string) {
		n++
		err := h.exec.RegisterJourney(executor.Journey{ID: "j", Version: n, Start: "w", Nodes: []executor.Node{
			{ID: "w", Type: executor.NodeTypeDelay, Config: json.RawMessage(cfg), Next: "a"}, {ID: "a", Type: "ok"}}})
		if err != nil && !strings.Contains(err.Error(), "node w: config") {
			t.Fatalf("%q: %v", cfg, err)
		}
	})
}
