package config_test

import (
	"flag"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/policy"
)

// A command's configuration: component sections filled with their
// defaults, then the file, the environment and the flags set.
func Example() {
	cfg := struct {
		Retry  policy.Config `json:"retry"`
		Worker struct {
			Lease time.Duration `json:"lease"`
			Pool  int           `json:"pool"`
		} `json:"worker"`
	}{Retry: policy.DefaultConfig()}
	cfg.Worker.Lease, cfg.Worker.Pool = 30*time.Second, 8

	l := config.New(&cfg, "JRETRY")
	l.LookupEnv = func(name string) (string, bool) { // os.LookupEnv when nil
		v, ok := map[string]string{"JRETRY_WORKER_POOL": "16", "JRETRY_RETRY_MAX_RETRIES": "5"}[name]
		return v, ok
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	l.FileFlag(fs, "config", "configuration file (JSON)")
	l.Flag(fs, "lease", "worker.lease", "claim lease")
	l.Flag(fs, "max-retries", "retry.maxRetries", "retries per node")
	if err := fs.Parse([]string{"--lease", "1m", "--max-retries", "4"}); err != nil {
		fmt.Println(err)
		return
	}
	if err := l.Load(); err != nil {
		fmt.Println(err) // a command exits with status 2
		return
	}
	fmt.Println(cfg.Worker.Lease, cfg.Worker.Pool, cfg.Retry.MaxRetries)
	fmt.Println(config.EnvName("JRETRY", "retry.maxDelayMs"))
	// Output:
	// 1m0s 16 4
	// JRETRY_RETRY_MAX_DELAY_MS
}
