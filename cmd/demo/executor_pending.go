package main

import (
	"context"
	"errors"
	"time"

	"github.com/journeyretry/journeyretry/storage"
)

// TEMPORARY until executor/ lands: the documented plan of executor.Config.
type executorConfig struct {
	Mode      string        `json:"mode"`
	Workers   int           `json:"workers"`
	Lease     time.Duration `json:"lease"`
	SweepSpec string        `json:"sweepSpec"`
}

func (c executorConfig) Validate() error {
	switch {
	case c.Mode != "off" && c.Mode != "shadow" && c.Mode != "selective" && c.Mode != "full":
		return errors.New("mode: want off, shadow, selective or full")
	case c.Workers < 1:
		return errors.New("workers: want at least 1")
	case c.Lease <= 0:
		return errors.New("lease: want > 0")
	case len(c.SweepSpec) < 1 || c.SweepSpec[0] != '@':
		return errors.New("sweepSpec: bad cron spec")
	}
	return nil
}

func demoExecutorConfig() executorConfig {
	return executorConfig{Mode: "full", Workers: 8, Lease: 5 * time.Second, SweepSpec: "@every 1s"}
}

type engine interface {
	Run(ctx context.Context) error
	SweeperCaught() int64
	Name() string
}

func newEngine(cfg demoConfig, s *storage.Store, f faults) (engine, error) {
	return nil, errors.New("executor not available yet")
}

// haveExecutor is false until executor/ lands: the tests that run journeys skip.
const haveExecutor = false
