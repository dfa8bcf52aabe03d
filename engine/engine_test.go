package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage/pgtest"
)

// A journey whose one node fails once with a database lock: the default
// policy retries it at once (immediate strategy), so the run completes.
// It returns the run and its attempts, read while the engine runs.
func startLockedOnce(t *testing.T, eng *engine.Engine) (retry.Run, []retry.Attempt) {
	t.Helper()
	failed := false
	err := eng.Handle("save", executor.HandlerFunc(func(context.Context, executor.NodeInput) (json.RawMessage, error) {
		if !failed {
			failed = true
			return nil, retry.WithClass(errors.New("database is locked"), retry.ClassDatabaseLock)
		}
		return json.RawMessage(`{"ok":true}`), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.RegisterJourney(executor.Journey{ID: "j", Start: "save", Nodes: []executor.Node{{ID: "save", Type: "save"}}}); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	run, err := eng.StartRun(t.Context(), "j", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The default policy retries a lock after about 100 ms.
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if run, err = eng.Wait(wctx, run.ID); err != nil {
		t.Fatal(err)
	}
	atts, err := eng.Store().Attempts(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return run, atts
}

func TestOpenByConfiguration(t *testing.T) {
	sqlite := func(t *testing.T) string { return filepath.Join(t.TempDir(), "runs.db") }
	for _, tc := range []struct {
		name  string
		dsn   func(t *testing.T) string
		sched func(t *testing.T) engine.SchedulerConfig
	}{
		{"sqlite", sqlite, nil},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }, nil},
		{"sqlite+redis", sqlite, redisScheduler},
		{"sqlite+sqlpoll", sqlite, func(*testing.T) engine.SchedulerConfig {
			return engine.SchedulerConfig{Backend: engine.SchedulerSQLPoll}
		}},
		{"postgres+sqlpoll", func(t *testing.T) string { return pgtest.DSN(t) }, func(*testing.T) engine.SchedulerConfig {
			return engine.SchedulerConfig{Backend: engine.SchedulerSQLPoll}
		}},
		{"sqlite+sqlpoll on postgres", sqlite, func(t *testing.T) engine.SchedulerConfig {
			return engine.SchedulerConfig{Backend: engine.SchedulerSQLPoll, SQLPollDSN: pgtest.DSN(t)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := engine.DefaultConfig()
			cfg.Store.DSN = tc.dsn(t)
			if tc.sched != nil {
				cfg.Scheduler = tc.sched(t)
			}
			cfg.Executor.Mode = executor.ModeFull
			eng, err := engine.Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			run, atts := startLockedOnce(t, eng)
			if run.Status != retry.StatusCompleted || len(atts) != 2 {
				t.Fatalf("run %s after %d attempts, want completed after 2", run.Status, len(atts))
			}
			if err := eng.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The zero Retry section means the policy's defaults, not a policy that
// never retries.
func TestZeroRetrySectionIsTheDefaultPolicy(t *testing.T) {
	eng, err := engine.Open(t.Context(), engine.Config{
		Store:    engineStore(t),
		Executor: executor.Config{Mode: executor.ModeFull},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if got := eng.Policy().MaxRetries(); got != 3 {
		t.Fatalf("policy max retries %d, want the default 3", got)
	}
	if run, _ := startLockedOnce(t, eng); run.Status != retry.StatusCompleted {
		t.Fatalf("run %s, want completed", run.Status)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cfg := engine.DefaultConfig()
	cfg.Scheduler.Backend = "carrier-pigeon"
	cfg.Executor.Workers = -1
	cfg.Retry.MaxDelayMs = -5
	err := cfg.Validate()
	if !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("Validate: %v, want ErrInvalidArgument", err)
	}
	errs := err.(*multierror.Error).WrappedErrors()
	for i, want := range []string{"store.dsn", "scheduler.backend", "executor.workers", "retry.maxDelayMs"} {
		if i >= len(errs) || !strings.HasPrefix(errs[i].Error(), want+": ") {
			t.Fatalf("Validate: %v: error %d does not name %q", err, i, want)
		}
		_, field, _ := strings.Cut(want, ".")
		if fe, ok := errors.AsType[*retry.FieldError](errs[i]); !ok || fe.Field != field || !errors.Is(errs[i], retry.ErrInvalidArgument) {
			t.Errorf("Validate: %v is not a retry.FieldError naming %s, wrapping ErrInvalidArgument", errs[i], field)
		}
	}
	if _, err := engine.Open(t.Context(), cfg); !errors.Is(err, retry.ErrInvalidArgument) {
		t.Fatalf("Open: %v, want ErrInvalidArgument", err)
	}
}

// Package config loads an engine.Config with the keys, environment
// variables and precedence of the demo's file: a program of its own gets
// "swap the backend by configuration".
func TestLoadsThroughPackageConfig(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "runs.db")
	t.Setenv("TEST_ENGINE_STORE_DSN", dsn)
	t.Setenv("TEST_ENGINE_SCHEDULER_BACKEND", "memory")
	t.Setenv("TEST_ENGINE_EXECUTOR_MODE", "shadow")
	cfg := engine.DefaultConfig()
	if err := config.New(&cfg, "TEST_ENGINE").Load(); err != nil {
		t.Fatal(err)
	}
	if cfg.Store.DSN != dsn || cfg.Executor.Mode != executor.ModeShadow {
		t.Fatalf("loaded %+v", cfg)
	}
	t.Setenv("TEST_ENGINE_SCHEDULER_BACKEND", "carrier-pigeon")
	err := config.New(&cfg, "TEST_ENGINE").Load()
	if err == nil || !strings.Contains(err.Error(), "scheduler.backend") || !strings.Contains(err.Error(), "TEST_ENGINE_SCHEDULER_BACKEND") {
		t.Fatalf("unknown scheduler: %v", err)
	}
}

// The redis backend names what its configuration lacks, and never shows
// a password.
func TestRedisSchedulerConfig(t *testing.T) {
	for _, tc := range []struct {
		sched engine.SchedulerConfig
		want  string
	}{
		{engine.SchedulerConfig{Backend: "redis"}, "scheduler.redisUrl: required"},
		{engine.SchedulerConfig{Backend: "redis", RedisURL: "redis://u:s3cr3t@h:1/0", RedisCluster: []string{"h"}}, "scheduler.redisCluster: "},
		{engine.SchedulerConfig{Backend: "redis", RedisURL: "redis://u:s3cr3t@h:1/1", RedisCluster: []string{"h:2"}}, "only database 0"},
		{engine.SchedulerConfig{Backend: "redis", RedisURL: "http://u:s3cr3t@h:1"}, "scheduler.redisUrl: http://u:xxxxx@h:1"},
		{engine.SchedulerConfig{Backend: "redis", RedisURL: "redis://h:1", RedisPrefix: "{x}"}, "scheduler.redisPrefix: "},
	} {
		cfg := engine.DefaultConfig()
		cfg.Scheduler = tc.sched
		err := cfg.Validate()
		if !errors.Is(err, retry.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%+v: Validate = %v; want %q, no password", tc.sched, err, tc.want)
		}
	}
}
