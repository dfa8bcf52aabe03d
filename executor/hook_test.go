package executor_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/retrytest"
)

// outcome is what a run did, as the store holds it.
type outcome struct {
	status   retry.Status
	attempts []string // node, class, status after
}

// runFlaky runs a journey of two nodes whose first fails once on an
// executor with hooks, and returns what the store and a recording Observer
// (told before cfg.Observer, if any) saw.
func runFlaky(t *testing.T, cfg executor.Config) (outcome, []string, *executor.Executor) {
	t.Helper()
	obs := &recordingObserver{}
	cfg.Mode = executor.ModeFull
	if cfg.Observer != nil {
		cfg.Observer = executor.Observers(obs, cfg.Observer)
	} else {
		cfg.Observer = obs
	}
	h := newHarness(t, cfg, nil)
	must(t, h.exec.Handle("flaky", failing(retry.WithClass(errors.New("503"), retry.ClassServiceUnavailable), 1)))
	must(t, h.exec.Handle("ok", executor.HandlerFunc(ok)))
	must(t, h.exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
		{ID: "a", Type: "flaky", Next: "b"}, {ID: "b", Type: "ok"}}}))
	run, err := h.exec.StartRunSync(context.Background(), "j", nil, executor.WithRunID("r"))
	must(t, err)
	run = h.drive(t, run.ID)
	atts, err := h.store.Attempts(context.Background(), run.ID)
	must(t, err)
	o := outcome{status: run.Status}
	for _, a := range atts {
		o.attempts = append(o.attempts, a.NodeID+" "+string(a.ErrorClass)+" "+string(a.Status))
	}
	return o, eventNames(obs.all()), h.exec
}

// TestPanickingHookChangesNothing: hooks that panic on every event, or
// return an error for every one, change no outcome: the run, its attempt
// history and the Observer's events are those of an executor without
// hooks. Each panic and error is logged and counted. An Observer that
// panics changes nothing either, and is logged.
func TestPanickingHookChangesNothing(t *testing.T) {
	want, wantEvents, _ := runFlaky(t, executor.Config{})
	if want.status != retry.StatusCompleted || len(want.attempts) != 3 {
		t.Fatalf("without hooks: %+v", want)
	}
	var logs retrytest.Buffer
	got, events, ex := runFlaky(t, executor.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Hooks: []executor.Hook{
			{Name: "panics", Func: func(context.Context, executor.Event) error { panic("hook bug") }},
			{Name: "fails", Func: func(context.Context, executor.Event) error { return errors.New("webhook down") }},
		},
	})
	if got.status != want.status || strings.Join(got.attempts, "\n") != strings.Join(want.attempts, "\n") ||
		strings.Join(events, " ") != strings.Join(wantEvents, " ") {
		t.Errorf("with failing hooks: %+v, events %v; without: %+v, events %v", got, events, want, wantEvents)
	}
	ex.Close() // the hooks have handled every event
	n := int64(len(events))
	for _, st := range ex.HookStats() {
		if st.Handled != n || st.Failed != n || st.Dropped != 0 {
			t.Errorf("hook %s: %+v, want %d events handled and failed", st.Name, st, n)
		}
	}
	l := logs.String()
	if c := strings.Count(l, `msg="hook panicked" hook=panics`); c != int(n) || !strings.Contains(l, "panic=\"hook bug\"") {
		t.Errorf("%d panic records, want %d:\n%s", c, n, l)
	}
	if c := strings.Count(l, `msg="hook failed" hook=fails`); c != int(n) || !strings.Contains(l, `err="webhook down"`) {
		t.Errorf("%d error records, want %d:\n%s", c, n, l)
	}

	var obsLogs retrytest.Buffer
	got, events, _ = runFlaky(t, executor.Config{
		Logger:   slog.New(slog.NewTextHandler(&obsLogs, nil)),
		Observer: executor.ObserverFunc(func(executor.Event) { panic("counter bug") }),
	})
	if got.status != want.status || strings.Join(got.attempts, "\n") != strings.Join(want.attempts, "\n") ||
		strings.Join(events, " ") != strings.Join(wantEvents, " ") {
		t.Errorf("with a panicking observer: %+v, events %v; without: %+v, events %v", got, events, want, wantEvents)
	}
	if c := strings.Count(obsLogs.String(), `msg="observer panicked"`); c != len(events) {
		t.Errorf("%d observer panic records, want %d:\n%s", c, len(events), obsLogs.String())
	}
}

// TestSlowHookDropsEvents: a hook that does not return holds one event,
// its queue fills, and the rest are dropped and counted, while the runs
// go on at full speed: in a synctest bubble, a worker waiting for the hook
// would be a deadlock the bubble reports. The Observer still sees every
// event. Close then waits for the hooks, and cancels the context of one
// that never returns once ShutdownTimeout has passed.
func TestSlowHookDropsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var seen []executor.Event
		obs := &recordingObserver{}
		var logs retrytest.Buffer
		slow := executor.Hook{Name: "slow", Queue: 2, Func: func(_ context.Context, ev executor.Event) error {
			<-release
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ev)
			return nil
		}}
		stuckCancelled := make(chan struct{})
		stuck := executor.Hook{Name: "stuck", Queue: 1, Func: func(ctx context.Context, ev executor.Event) error {
			<-ctx.Done()
			select {
			case <-stuckCancelled:
			default:
				close(stuckCancelled)
			}
			return ctx.Err()
		}}
		exec, _, _ := bubbleExecutor(t, executor.Config{Observer: obs, Hooks: []executor.Hook{slow, stuck},
			ShutdownTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		must(t, exec.Handle("ok", executor.HandlerFunc(ok)))
		must(t, exec.RegisterJourney(executor.Journey{ID: "j", Start: "a", Nodes: []executor.Node{
			{ID: "a", Type: "ok", Next: "b"}, {ID: "b", Type: "ok", Next: "c"}, {ID: "c", Type: "ok"}}}))
		const runs = 5
		for range runs {
			run, err := exec.StartRunSync(context.Background(), "j", nil)
			must(t, err)
			if run.Status != retry.StatusCompleted {
				t.Fatalf("run %s", run.Status)
			}
		}
		all := obs.all()
		if len(all) != runs*4 { // 3 attempts and a completion each
			t.Fatalf("observer saw %d events, want %d", len(all), runs*4)
		}
		total := int64(len(all))
		synctest.Wait() // the slow hook is blocked on its first event
		st := exec.HookStats()
		// At most one event in hand and two queued; the rest dropped.
		if st[0].Name != "slow" || st[0].Dropped < total-3 || st[0].Handled != 1 {
			t.Errorf("slow hook while blocked: %+v of %d events", st[0], total)
		}
		if st[1].Dropped < total-2 {
			t.Errorf("stuck hook: %+v of %d events", st[1], total)
		}
		if !strings.Contains(logs.String(), `msg="hook queue full: event dropped" hook=slow`) {
			t.Errorf("no record of the drops:\n%s", logs.String())
		}

		close(release)
		start := time.Now()
		must(t, exec.Close())
		if waited := time.Since(start); waited != time.Minute {
			t.Errorf("Close waited %s for the stuck hook, want ShutdownTimeout (1m)", waited)
		}
		<-stuckCancelled
		st = exec.HookStats()
		if st[0].Handled+st[0].Dropped != total || st[0].Handled < 2 || st[0].Handled > 3 {
			t.Errorf("slow hook after release: %+v of %d events", st[0], total)
		}
		// What it saw is in the order of the events, from the first.
		mu.Lock()
		defer mu.Unlock()
		i := 0
		for _, ev := range seen {
			for i < len(all) && all[i] != ev {
				i++
			}
			if i == len(all) {
				t.Fatalf("the slow hook saw %v, not a subsequence of %v", eventNames(seen), eventNames(all))
			}
		}
		if int64(len(seen)) != st[0].Handled || seen[0] != all[0] {
			t.Errorf("the slow hook saw %v; its first event should be the first of %v", eventNames(seen), eventNames(all))
		}
	})
}
