package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// envPrefix starts every environment variable the demo reads
// (JRETRY_EXECUTOR_WORKERS, JRETRY_DEMO_RUNS, ...): the project's one prefix.
const envPrefix = "JRETRY"

// demoConfig is everything the binary can be configured with: one JSON file
// (--config), the environment, then flags, through package config. Each
// section is its component's own Config, so the demo's file is the core
// configuration file with a "demo" section added.
type demoConfig struct {
	Store     storage.Config         `json:"store"`
	Scheduler engine.SchedulerConfig `json:"scheduler"`
	Executor  executor.Config        `json:"executor"`
	Retry     policy.Config          `json:"retry"`
	Demo      demoSettings           `json:"demo"`
	Log       logConfig              `json:"log"`
	Metrics   metricsConfig          `json:"metrics"`
	Serve     serveConfig            `json:"serve"`
}

// defaultDSN is where the demo keeps its database when --store is not
// given: a SQLite file in a data folder under the working directory
// (ignored by git).
const defaultDSN = "demo-data/journeys.db"

// defaultConfig returns the demo's defaults: the library's, except that the
// retry delays are scaled down (long backoff 0.5-2 s instead of minutes), the
// sweeper runs every second instead of every 30 s and the rollout mode is
// full, so a few hundred journeys finish in seconds and every retry path is
// visible.
func defaultConfig() demoConfig {
	cfg := demoConfig{
		Store:     storage.Config{DSN: defaultDSN},
		Scheduler: engine.SchedulerConfig{Backend: engine.SchedulerMemory},
		Executor:  demoExecutorConfig(),
		Retry:     scaledPolicy(),
		Demo:      defaultDemoSettings(),
		Log:       logConfig{Level: "warn", Format: "text"},
		Serve:     serveConfig{Listen: "127.0.0.1:8080"},
	}
	return cfg
}

// scaledPolicy is the design's policy with every delay divided so that a
// demo finishes in seconds: the shape (which class gets which strategy,
// three retries, jitter kinds) is unchanged.
func scaledPolicy() policy.Config {
	p := policy.DefaultConfig()
	p.BaseDelayMs, p.MaxDelayMs, p.JitterMs = 100, 2000, 100
	p.Strategies.Immediate.BaseDelayMs, p.Strategies.Immediate.MaxDelayMs = 10, 100
	p.Strategies.Short.BaseDelayMs, p.Strategies.Short.MaxDelayMs = 200, 1000
	p.Strategies.Long.BaseDelayMs, p.Strategies.Long.MaxDelayMs = 1000, 2000
	return p
}

// demoSettings are the demo's own settings: how many journeys, which
// faults, which seed.
type demoSettings struct {
	// Runs is the number of patient journeys the demo (or start) creates.
	Runs int `json:"runs"`
	// Seed decides the patients and every fault: the same seed gives the
	// same faults whatever order the workers run in.
	Seed uint64 `json:"seed"`
	// Faults are the fault rates of the node handlers.
	Faults faultRates `json:"faults"`
}

func defaultDemoSettings() demoSettings {
	return demoSettings{Runs: 300, Seed: 1, Faults: defaultFaultRates()}
}

// maxRuns bounds --runs: the demo is a demonstration, not a load test.
const maxRuns = 1_000_000

// Validate names the bad field.
func (d demoSettings) Validate() error {
	if d.Runs < 1 || d.Runs > maxRuns {
		return retry.InvalidField("runs", "%d: want 1 to %d", d.Runs, maxRuns)
	}
	return d.Faults.validate("faults.")
}

// flagBinding ties a flag to the dotted key it sets.
type flagBinding struct{ flag, key, usage string }

// singleDash turns each -name of args that names a flag of fs (or help)
// into --name, as the standard library's flag package (whose usage format
// the help shows) accepts both, where pflag reads -name as shorthands.
// Everything after "--" is left as it is.
func singleDash(fs *pflag.FlagSet, args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && (name == "help" || fs.Lookup(name) != nil) {
			out[i] = "-" + a
		}
	}
	return out
}

// Flag groups; each command binds the groups whose values it uses, so that
// its --help offers no flag it would ignore.
var (
	storeFlags = []flagBinding{
		{"store", "store.dsn", "database: a SQLite file path or a postgres:// URL"},
	}
	// schedulerFlags choose the scheduler: where runs execute, and where
	// they are created for workers, who hear of them through a shared one.
	schedulerFlags = []flagBinding{
		{"scheduler", "scheduler.backend", "scheduler backend: memory, redis or sqlpoll"},
		{"redis", "scheduler.redisUrl", "Redis URL of the redis scheduler: redis://[user:password@]host[:port][/db], rediss:// for TLS"},
		{"redis-cluster", "scheduler.redisCluster", "Redis Cluster seeds of the redis scheduler, host:port,... (credentials and TLS from --redis)"},
		{"redis-prefix", "scheduler.redisPrefix", "key prefix of the redis scheduler: one per application sharing a Redis"},
		{"poll-interval", "scheduler.pollInterval", "longest sleep of the sqlpoll scheduler between two looks at its table, a Go duration (0: 1s)"},
		{"sqlpoll-db", "scheduler.sqlpollDsn", "database of the sqlpoll scheduler's table, a SQLite path or a postgres:// URL (empty: the store's, which writes wake-ups in the store's transactions)"},
	}
	runtimeFlags = append(slices.Clip(schedulerFlags), []flagBinding{
		{"workers", "executor.workers", "worker pool size (0: the library's default)"},
		{"lease", "executor.lease", "claim lease, a Go duration (0: the library's default)"},
		{"sweep", "executor.sweepSpec", "sweeper schedule (a cron spec such as @every 1s)"},
		{"sweep-grace", "executor.sweepGrace", "how long a due run is left to the scheduler before the sweeper takes it (a Go duration)"},
	}...)
	modeFlags = []flagBinding{
		{"mode", "executor.mode", "rollout mode: off, shadow, selective or full"},
	}
	// retryLimitFlags: the policy's retry limit, which is also the store's
	// limit for new runs.
	retryLimitFlags = []flagBinding{
		{"max-retries", "retry.maxRetries", "most retries of one node (0: none, -1: unlimited)"},
	}
	delayFlags = []flagBinding{
		{"base-delay-ms", "retry.baseDelayMs", "exponential strategy's first delay, ms"},
		{"max-delay-ms", "retry.maxDelayMs", "exponential strategy's max delay, ms"},
		{"jitter-ms", "retry.jitterMs", "additive jitter bound, ms"},
		{"jitter", "retry.jitter", "exponential jitter: additive, full, equal, decorrelated or none"},
	}
	ruleFlags = []flagBinding{
		{"retryable", "retry.retryableErrors", "retryable rules, comma-separated (selective mode)"},
		{"non-retryable", "retry.nonRetryableErrors", "non-retryable rules, comma-separated"},
	}
	runsFlags = []flagBinding{
		{"runs", "demo.runs", "number of patient journeys"},
	}
	seedFlags = []flagBinding{
		{"seed", "demo.seed", "seed of the patients and the faults"},
	}
	// patientFlags shape the runs' input: they matter where runs are
	// created.
	patientFlags = []flagBinding{
		{"fault-bad-patient", "demo.faults.badPatient", "chance that a patient record is invalid"},
	}
	// nodeFaultFlags are the handlers' faults: they matter where runs are
	// executed.
	nodeFaultFlags = []flagBinding{
		{"fault-network", "demo.faults.networkBlip", "chance of a network blip per attempt"},
		{"fault-db-lock", "demo.faults.databaseLock", "chance of a database lock per attempt"},
		{"fault-rate-limit", "demo.faults.rateLimit", "chance of a rate limit (with Retry-After) per attempt"},
		{"fault-maintenance", "demo.faults.maintenance", "chance that the clinic API is in a maintenance window for a run's call"},
	}
)

// command is one subcommand's flag set and configuration.
type command struct {
	name, usage string
	fs          *flag.FlagSet
	cfg         demoConfig
	loader      *config.Loader
	jsonOut     bool
	sur         surroundings
}

// newCommand returns a command whose flag set binds the given groups to the
// configuration, read in the surroundings of ctx (see run). usage is the
// one-line synopsis printed by --help.
func newCommand(ctx context.Context, name, usage string, groups ...[]flagBinding) *command {
	c := &command{name: name, usage: usage, cfg: defaultConfig(), sur: surroundingsOf(ctx)}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.loader = config.New(&c.cfg, envPrefix)
	env := map[string]string{}
	for _, kv := range c.sur.environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	c.loader.LookupEnv = func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	c.loader.FileFlag(c.fs, "config", "configuration file (JSON; unknown keys are errors)")
	for _, g := range groups {
		for _, b := range g {
			c.loader.Flag(c.fs, b.flag, b.key, b.usage)
		}
	}
	c.fs.Usage = func() {
		out := c.fs.Output()
		fmt.Fprintf(out, "usage: demo %s\n\nFlags (over environment %s_..., over --config file, over defaults):\n", c.usage, envPrefix)
		c.fs.PrintDefaults()
	}
	return c
}

// jsonFlag adds --json.
func (c *command) jsonFlag() {
	c.fs.BoolVar(&c.jsonOut, "json", false, "print machine-readable JSON")
}

// errUsage marks an error in the command line or the configuration: the
// program exits with status 2 and has written nothing.
var errUsage = errors.New("usage")

// usageErr is an error of the command line or the configuration.
type usageErr struct{ err error }

func (e usageErr) Error() string        { return e.err.Error() }
func (e usageErr) Unwrap() error        { return e.err }
func (e usageErr) Is(target error) bool { return target == errUsage }

// usageError wraps err (already one line) as a usage error.
func usageError(err error) error { return usageErr{err} }

// helpRequest is what a command returns for --help: run prints its usage
// to standard output and exits 0.
type helpRequest struct{ usage string }

func (h helpRequest) Error() string        { return "help requested" }
func (h helpRequest) Is(target error) bool { return target == flag.ErrHelp }

// parse parses args with pflag, cobra's flag library (flags and positional
// arguments in any order, "--" ending the flags, a bool flag without a
// value), and loads the configuration: flags over environment over file
// over defaults. It returns the positional arguments. Every error is one
// line naming the flag, variable or key, and wraps errUsage.
func (c *command) parse(args []string) ([]string, error) {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by run
	fs.AddGoFlagSet(c.fs)
	if err := fs.Parse(singleDash(fs, args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			var usage strings.Builder
			c.fs.SetOutput(&usage)
			c.fs.Usage()
			return nil, helpRequest{usage.String()}
		}
		return nil, usageError(err)
	}
	pos := fs.Args()
	c.loader.File = c.underDir(c.loader.File)
	if err := c.loader.Load(); err != nil {
		// The loader joins several errors with newlines.
		return nil, usageError(errors.New(strings.ReplaceAll(err.Error(), "\n", "; ")))
	}
	// Every command reads the same settings, so a variable with the
	// prefix that names none is a typo, refused as a file's unknown key is.
	unknown, err := c.loader.UnknownEnv(c.sur.environ)
	if err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		hint := fmt.Sprintf("a setting's variable is its key upper-cased: executor.workers is %s; demo config lists them", config.EnvName(envPrefix, "executor.workers"))
		if best := c.loader.SuggestEnv(unknown[0]); best != "" {
			hint = "did you mean " + best + "?"
		}
		return nil, usageError(fmt.Errorf("environment %s: names no setting (%s)", strings.Join(unknown, ", "), hint))
	}
	if p := sqlitePath(c.cfg.Store.DSN); p != "" && p != ":memory:" {
		c.cfg.Store.DSN = strings.Replace(c.cfg.Store.DSN, p, c.underDir(p), 1)
	}
	return pos, nil
}

// underDir returns the relative path p under the invocation's working
// directory; an absolute or empty path, or any path when the directory is
// the process's, as it is.
func (c *command) underDir(p string) string {
	if p == "" || c.sur.dir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.sur.dir, p)
}

// engine is the library's part of the configuration: what engine.Open
// builds.
func (c demoConfig) engine() engine.Config {
	return engine.Config{Store: c.Store, Scheduler: c.Scheduler, Executor: c.Executor, Retry: c.Retry}
}

// executorConfig is the executor's configuration as it runs (see
// engine.Config.ExecutorConfig). The demo runs with it and prints it, so
// that what it says (a --workers 0 included) is what runs.
func (c demoConfig) executorConfig() executor.Config { return c.engine().ExecutorConfig() }

// delaysScaled reports whether the long backoff is shorter than the
// library's (minutes), as the demo's defaults make it: only then does the
// banner say the delays are scaled down.
func delaysScaled(p policy.Config) bool {
	lib := policy.DefaultConfig().Strategies.Long
	return p.Strategies.Long.BaseDelayMs < lib.BaseDelayMs || p.Strategies.Long.MaxDelayMs < lib.MaxDelayMs
}

// sqlitePath returns the file a SQLite DSN names, or "" for PostgreSQL and
// in-memory databases.
func sqlitePath(dsn string) string {
	switch {
	case storage.IsPostgres(dsn), dsn == ":memory:":
		return ""
	case strings.HasPrefix(dsn, "file:"):
		p := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return p
	}
	return dsn
}

// freshHint says how to get a database with no runs of the demo, for new
// runs.
func freshHint(dsn string) string {
	if p := sqlitePath(dsn); p != "" {
		return "remove " + p
	}
	return "use a fresh database or schema"
}

// storeLabel describes the database for people: the dialect and where it
// is, without a PostgreSQL password.
func storeLabel(dsn string) string {
	if p := sqlitePath(dsn); p != "" {
		return fmt.Sprintf("sqlite %s (data folder %s)", p, filepath.Dir(p)+string(filepath.Separator))
	}
	if dsn == ":memory:" {
		return "sqlite in memory"
	}
	return "postgresql " + redactURL(dsn)
}

// percent formats a rate for the banner.
func percent(r float64) string {
	return fmt.Sprintf("%g%%", math.Round(r*1000)/10)
}
