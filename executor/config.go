package executor

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"

	"github.com/journeyretry/journeyretry/retry"
)

// Mode is the rollout mode: the phases a deployment moves through, switched
// by configuration (docs/design.md, "Phases"). A mode governs new failures
// only: a retry already scheduled when the mode changes still runs when it
// is due.
type Mode string

const (
	// ModeOff (phase 2, deployed disabled): errors and their details are
	// recorded and the run ends failed, exactly as the legacy system did.
	// The recorded decision is Strategy "none", Rule "mode:off". State it
	// explicitly for the first deployment over a legacy system.
	ModeOff Mode = "off"
	// ModeShadow: as off, but the decision the policy would have made is
	// recorded with the attempt, marked shadow, so operators see what
	// retries would do before enabling them.
	ModeShadow Mode = "shadow"
	// ModeSelective (phase 3): only failures the policy's
	// [retry.Eligibility] accepts are retried; a policy without it accepts
	// none. Others end failed with Rule "mode:selective".
	ModeSelective Mode = "selective"
	// ModeFull (phase 4, the default): every failure goes to the policy.
	ModeFull Mode = "full"
)

// ParseMode returns the mode spelled s (off, shadow, selective or full).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeOff, ModeShadow, ModeSelective, ModeFull:
		return m, nil
	}
	return "", fmt.Errorf("mode %q: want off, shadow, selective or full", s)
}

// Defaults of [Config].
const (
	WorkersDefault         = 8
	LeaseDefault           = 30 * time.Second
	NodeTimeoutDefault     = time.Minute
	ModeDefault            = ModeFull
	SweepSpecDefault       = "@every 30s"
	SweepGraceDefault      = 5 * time.Second
	ShutdownTimeoutDefault = 30 * time.Second
	// MaxSnoozesDefault bounds the snoozes of one node in one run.
	MaxSnoozesDefault = 100
	// MaxRetriesDefault is the retry limit the store keeps for new runs
	// when the policy states none ([retry.Limit]).
	MaxRetriesDefault = 3
)

// LeaseMin is the shortest Lease. A shorter one is renewed (every Lease/3)
// more often than a loaded machine schedules the renewer and store write in
// time: the run would lose its claim and stall until a sweep.
const LeaseMin = 100 * time.Millisecond

// Config configures an [Executor]. The zero value of every field means its
// default; JSON keys are those of the configuration file (package config
// reads durations as a JSON number of milliseconds or a Go duration string).
type Config struct {
	// Worker names this process in claims; default hostname-pid.
	Worker string `json:"worker"`
	// Workers is the worker pool size: the most runs executing at once.
	// Default [WorkersDefault].
	Workers int `json:"workers"`
	// Lease is how long a claim lasts without renewal; a run whose worker
	// died is recovered by the sweeper once it expires. It is renewed every
	// Lease/3 while a node runs. At least [LeaseMin]; default [LeaseDefault].
	Lease time.Duration `json:"lease"`
	// NodeTimeout bounds one node execution (a Node.Timeout overrides it);
	// an overrun is classified retry.ClassTimeout. Default
	// [NodeTimeoutDefault].
	NodeTimeout time.Duration `json:"nodeTimeout"`
	// Mode is the rollout mode; default [ModeFull]: a zero Config retries.
	// Off, shadow and selective are explicit rollout settings.
	Mode Mode `json:"mode"`
	// SweepSpec is the sweeper's robfig/cron/v3 schedule (standard spec or
	// descriptor such as "@every 30s"). Default [SweepSpecDefault].
	SweepSpec string `json:"sweepSpec"`
	// SweepGrace is how long a due run is left to the scheduler before a
	// sweep takes it. The sweeper is the safety net for wake-ups the
	// scheduler lost (a restart, a flushed Redis) and for expired leases,
	// not a second consumer racing the scheduler for work that is on time:
	// a sweep claims the runs that were due, or whose lease had expired,
	// SweepGrace before it. Set it above the scheduler's normal lateness
	// (a polling scheduler's interval). A run created Deferred or replayed
	// by an operator, which no scheduler hears of, is picked up by the
	// first sweep at least SweepGrace after it became due. Default
	// [SweepGraceDefault].
	SweepGrace time.Duration `json:"sweepGrace"`
	// MaxSnoozes bounds the snoozes ([retry.Snooze]) of one node in one
	// run, so that a handler that always snoozes cannot keep a run
	// waiting for ever: the snooze past it fails the node as exhausted,
	// rule "max_snoozes" (the run ends failed_max_retries, or failed with
	// retries disabled). -1 ([retry.Unlimited]) sets no bound. Default
	// [MaxSnoozesDefault].
	MaxSnoozes int `json:"maxSnoozes"`
	// ShutdownTimeout is how long Run waits for in-flight nodes after its
	// context is cancelled before cancelling them. Default
	// [ShutdownTimeoutDefault].
	ShutdownTimeout time.Duration `json:"shutdownTimeout"`
	// Budget configures the retry budgets all workers share; off unless
	// Budget.Enabled.
	Budget BudgetConfig `json:"budget"`

	// Now is the clock for store writes and claims; default time.Now.
	Now func() time.Time `json:"-"`
	// Logger receives operational messages; default slog.Default().
	Logger *slog.Logger `json:"-"`
	// Observer, when set, is told of every [Event] synchronously, for
	// metrics and logs (package metrics, [LogObserver]).
	Observer Observer `json:"-"`
	// Hooks are told of every Event off the attempt path, each through
	// its own bounded queue (see [Hook]).
	Hooks []Hook `json:"-"`
}

// nopObserver is the Observer of a Config without one.
type nopObserver struct{}

func (nopObserver) Observe(Event) {}

// BudgetConfig configures the retry budgets (see [retry.BudgetState]):
// one budget per error class (per class and node type with PerNodeType),
// kept in the store, so that every worker on it shares it. Over a Window,
// the retries of a class may be at most Ratio of the attempts (all of
// them, or those of the node type), never fewer than MinRetries; a retry
// over the budget is deferred to the budget's next free slot, recorded
// with the rule "budget:CLASS". They are off by default: a store's
// failure write then reads the run first on PostgreSQL (a round trip
// more), and every attempt is counted (BENCHMARKS.md has the cost).
type BudgetConfig struct {
	// Enabled turns the budgets on.
	Enabled bool `json:"enabled"`
	// Ratio is the share of the attempts retries may make up, 0 to 1;
	// default [retry.BudgetRatioDefault] (20 %).
	Ratio float64 `json:"ratio"`
	// MinRetries is the retries always allowed per window, so that a quiet
	// system is never throttled; default [retry.BudgetMinRetriesDefault].
	MinRetries int `json:"minRetries"`
	// Window is the sliding window, counted in [retry.BudgetBuckets]
	// buckets; default [retry.BudgetWindowDefault] (60 s).
	Window time.Duration `json:"window"`
	// PerNodeType gives each (class, node type) a budget of its own,
	// compared with the attempts of that node type.
	PerNodeType bool `json:"perNodeType"`
	// PauseOnRetryAfter makes a failure that carries a Retry-After
	// ([retry.RetryAfter]: an upstream's rate limit) pause its class, on
	// every worker, until then: each retry of the class decided during the
	// pause is due after it (a retry scheduled before keeps its time).
	PauseOnRetryAfter bool `json:"pauseOnRetryAfter"`
}

// limits returns the budget's [retry.Budget].
func (b BudgetConfig) limits() retry.Budget {
	return retry.Budget{Ratio: b.Ratio, MinRetries: b.MinRetries, Window: b.Window}
}

// use returns what a failure of class on a node of nodeType charges (a
// success passes no class: it only counts in the scope), or nothing when
// the budgets are off.
func (b BudgetConfig) use(class retry.Class, nodeType string) retry.BudgetUse {
	if !b.Enabled {
		return retry.BudgetUse{}
	}
	u := retry.BudgetUse{Key: string(class), Scope: "*", Budget: b.limits()}
	if b.PerNodeType {
		u.Scope += "@" + nodeType
		if class != "" {
			u.Key += "@" + nodeType
		}
	}
	return u
}

// WithDefaults returns c with every zero field set to its default: the
// configuration New runs with. A program prints it to say what it runs
// with (the generated worker id, say) without restating the defaults.
func (c Config) WithDefaults() Config {
	if c.Worker == "" {
		host, _ := os.Hostname()
		c.Worker = cmp.Or(host, "worker") + "-" + strconv.Itoa(os.Getpid())
	}
	c.Workers = cmp.Or(c.Workers, WorkersDefault)
	c.Lease = cmp.Or(c.Lease, LeaseDefault)
	c.NodeTimeout = cmp.Or(c.NodeTimeout, NodeTimeoutDefault)
	c.Mode = cmp.Or(c.Mode, ModeDefault)
	c.SweepSpec = cmp.Or(c.SweepSpec, SweepSpecDefault)
	c.SweepGrace = cmp.Or(c.SweepGrace, SweepGraceDefault)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
	c.MaxSnoozes = cmp.Or(c.MaxSnoozes, MaxSnoozesDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	c.Hooks = append([]Hook(nil), c.Hooks...)
	for i := range c.Hooks {
		c.Hooks[i].Queue = cmp.Or(c.Hooks[i].Queue, HookQueueDefault)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// printable reports whether s is text a store keeps as it is
// ([retry.StorableText]) without control characters, which would split or
// recolour a line that names it.
func printable(s string) bool {
	return retry.StorableText(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// Validate reports the first bad field, by its JSON key, wrapping
// retry.ErrInvalidArgument. Zero values are valid (they mean the defaults).
func (c Config) Validate() error {
	switch {
	case c.Worker != "" && !printable(c.Worker):
		return retry.InvalidField("worker", "%q: want printable UTF-8 text (no NUL, no control characters)", c.Worker)
	case c.Workers < 0:
		return retry.InvalidField("workers", "%d: want at least 1 (0 for the default)", c.Workers)
	case c.Lease < 0 || c.Lease > 0 && c.Lease < LeaseMin:
		return retry.InvalidField("lease", "%s: want at least %s (0 for the default)", c.Lease, LeaseMin)
	case c.NodeTimeout < 0:
		return retry.InvalidField("nodeTimeout", "%s: want > 0 (0 for the default)", c.NodeTimeout)
	case c.SweepGrace < 0:
		return retry.InvalidField("sweepGrace", "%s: want > 0 (0 for the default)", c.SweepGrace)
	case c.ShutdownTimeout < 0:
		return retry.InvalidField("shutdownTimeout", "%s: want > 0 (0 for the default)", c.ShutdownTimeout)
	case c.MaxSnoozes < retry.Unlimited:
		return retry.InvalidField("maxSnoozes", "%d: want -1 (unlimited) or more (0 for the default)", c.MaxSnoozes)
	}
	names := map[string]bool{}
	for i, h := range c.Hooks {
		switch {
		case h.Name == "" || !printable(h.Name):
			return retry.InvalidField("hooks", "hook %d: name %q: want printable text", i, h.Name)
		case names[h.Name]:
			return retry.InvalidField("hooks", "hook %q: the name is used twice", h.Name)
		case h.Func == nil:
			return retry.InvalidField("hooks", "hook %q: no Func", h.Name)
		case h.Queue < 0:
			return retry.InvalidField("hooks", "hook %q: queue %d: want at least 1 (0 for the default)", h.Name, h.Queue)
		}
		names[h.Name] = true
	}
	if err := c.Budget.limits().Validate(); err != nil {
		if fe, ok := errors.AsType[*retry.FieldError](err); ok {
			return retry.InvalidField("budget."+fe.Field, "%w", fe.Err)
		}
		return err
	}
	if c.Mode != "" {
		if _, err := ParseMode(string(c.Mode)); err != nil {
			return retry.InvalidField("mode", "%q: want off, shadow, selective or full", c.Mode)
		}
	}
	if c.SweepSpec != "" {
		if _, err := cron.ParseStandard(c.SweepSpec); err != nil {
			return retry.InvalidField("sweepSpec", "%q: %w", c.SweepSpec, err)
		}
		// cron rounds a shorter interval up to a second without a word.
		if d, err := time.ParseDuration(strings.TrimPrefix(c.SweepSpec, "@every ")); err == nil && d < time.Second {
			return retry.InvalidField("sweepSpec", "%q: the sweeper runs at most once a second: want @every 1s or longer", c.SweepSpec)
		}
	}
	return nil
}
