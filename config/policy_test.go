package config_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

type demoConfig struct {
	Retry policy.Config `json:"retry"`
}

// loadPolicy loads policy.Config under "retry" with a file, an environment
// and a command line, as the demo does.
func loadPolicy(t *testing.T, file string, env map[string]string, args ...string) (demoConfig, error) {
	t.Helper()
	cfg := demoConfig{Retry: policy.DefaultConfig()}
	l := config.New(&cfg, "JRETRY")
	l.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.FileFlag(fs, "config", "configuration file")
	l.Flag(fs, "max-retries", "retry.maxRetries", "retries per node")
	l.Flag(fs, "jitter", "retry.jitter", "jitter kind")
	l.Flag(fs, "routes", "retry.routes", "class=strategy,...")
	if file != "" {
		p := filepath.Join(t.TempDir(), "demo.json")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg, l.Load()
}

func TestPolicyConfigPrecedence(t *testing.T) {
	file := `{"retry": {"maxRetries": 5, "baseDelayMs": 200, "jitter": "full",
		"nonRetryableErrors": ["class:validation", "re:(?i)invalid patient"],
		"routes": {"rate_limit": "short"}, "strategies": {"long": {"maxDelayMs": 900000}}}}`

	cfg, err := loadPolicy(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := policy.DefaultConfig()
	if cfg.Retry.MaxRetries != d.MaxRetries || cfg.Retry.MaxDelayMs != d.MaxDelayMs || cfg.Retry.Jitter != d.Jitter {
		t.Errorf("defaults: %+v", cfg.Retry)
	}

	cfg, err = loadPolicy(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retry
	if r.MaxRetries != 5 || r.BaseDelayMs != 200 || r.MaxDelayMs != 300000 || r.Jitter != policy.JitterFull ||
		len(r.NonRetryableErrors) != 2 || r.Routes[retry.ClassRateLimit] != "short" || r.Routes[retry.ClassNetworkBlip] != "immediate" ||
		r.Strategies.Long.MaxDelayMs != 900000 || r.Strategies.Long.BaseDelayMs != 120000 {
		t.Errorf("file: %+v", r)
	}

	env := map[string]string{"JRETRY_RETRY_MAX_RETRIES": "7", "JRETRY_RETRY_JITTER": "equal", "JRETRY_RETRY_RETRYABLE_ERRORS": "timeout,class:network_blip"}
	cfg, err = loadPolicy(t, file, env)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Retry; r.MaxRetries != 7 || r.Jitter != policy.JitterEqual || r.BaseDelayMs != 200 || len(r.RetryableErrors) != 2 {
		t.Errorf("env over file: %+v", r)
	}

	cfg, err = loadPolicy(t, file, env, "--max-retries", "1", "--routes", "validation=short")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Retry; r.MaxRetries != 1 || r.Jitter != policy.JitterEqual || r.Routes[retry.ClassValidation] != "short" || r.Routes[retry.ClassRateLimit] != "short" {
		t.Errorf("flags over env: %+v", r)
	}
	if _, err := cfg.Retry.Build(); err != nil {
		t.Errorf("Build of the loaded config: %v", err)
	}
}

func TestPolicyConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		env  map[string]string
		args []string
		want string
	}{
		{`{"retry": {"maxRetrys": 5}}`, nil, nil, "retry.maxRetrys: unknown key (did you mean retry.maxRetries?)"},
		{`{"retry": {"strategies": {"long": {"maxDelay": 5}}}}`, nil, nil, "retry.strategies.long.maxDelay: unknown key (did you mean retry.strategies.long.maxDelayMs?)"},
		{`{"retry": {"maxDelayMs": "5m"}}`, nil, nil, `retry.maxDelayMs: want a number, got string "5m"`},
		{`{"retry": {"jitter": "fulll"}}`, nil, nil, `retry.jitter: invalid value "fulll"`},
		{"", map[string]string{"JRETRY_RETRY_MAX_RETRIES": "three"}, nil, `environment JRETRY_RETRY_MAX_RETRIES: invalid integer "three"`},
		{"", nil, []string{"--jitter", "gauss"}, `flag --jitter: invalid value "gauss"`},
		{`{"retry": {"maxDelayMs": 10}}`, nil, nil, "invalid configuration: retry.maxDelayMs: 10: want >= baseDelayMs (1000)"},
		{"", nil, []string{"--routes", "rate_limt=long"}, `invalid configuration: retry.routes.rate_limt: unknown class "rate_limt"`},
		{`{"retry": {"retryableErrors": ["re:("]}}`, nil, nil, "invalid configuration: retry.retryableErrors[0]: rule \"re:(\": invalid regular expression"},
	} {
		_, err := loadPolicy(t, tc.file, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load = %v, want an error containing %q", err, tc.want)
		}
	}
}
