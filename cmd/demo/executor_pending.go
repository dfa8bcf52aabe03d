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

func (c executorConfig) Validate() error { return nil }

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
