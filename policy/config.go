package policy

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/retry"
)

// Config is the retry configuration as data: the design's
// RetryConfig, with exactly its JSON keys and defaults, plus the jitter
// kind, the multiplier, the routing table and the parameters of the
// immediate, short and long strategies. It loads through package config
// (JSON file, environment, flags); [DefaultConfig] fills the defaults and
// [Config.Validate] names every bad field by its JSON key.
//
// The design's delay fields drive the "exponential" strategy, which
// timeout and unknown errors get by default; maxRetries bounds every
// strategy.
type Config struct {
	// MaxRetries is the most retries of one node, every strategy
	// together; 0 disables retries, -1 ([retry.Unlimited]) sets no bound.
	// Default 3.
	MaxRetries int `json:"maxRetries"`
	// MaxElapsedMs bounds the time one node may take across its retries,
	// from the start of its first attempt: a retry that would start later
	// is not made, and the run ends failed_max_retries with rule
	// max_elapsed. 0 (the default) sets no bound.
	MaxElapsedMs int64 `json:"maxElapsedMs"`
	// BaseDelayMs is the exponential strategy's first delay. Default 1000.
	BaseDelayMs int64 `json:"baseDelayMs"`
	// MaxDelayMs caps the exponential strategy's delay (and the
	// Retry-After it honours). Default 300000 (5 minutes).
	MaxDelayMs int64 `json:"maxDelayMs"`
	// JitterMs bounds the additive jitter. Default 1000.
	JitterMs int64 `json:"jitterMs"`
	// RetryableErrors are rules (see [ParseRule]) a failure must match to
	// be retried in the executor's selective rollout mode. Default none.
	RetryableErrors []string `json:"retryableErrors"`
	// NonRetryableErrors are rules whose failures are never retried; they
	// win over RetryableErrors and over the routing table. Default none.
	NonRetryableErrors []string `json:"nonRetryableErrors"`

	// Multiplier is the exponential strategy's growth per retry. Default 2.
	Multiplier float64 `json:"multiplier"`
	// Jitter is the exponential strategy's jitter kind: additive (the
	// design's, the default), full, equal, decorrelated or none.
	Jitter Jitter `json:"jitter"`
	// Routes maps an error class to a strategy: immediate, short, long,
	// none or exponential. A class with no route gets exponential. Default
	// [DefaultRoutes]; a file's entries are merged into it.
	Routes map[retry.Class]string `json:"routes"`
	// CustomClasses declares classes of your own ([retry.ValidateClassName])
	// that Routes and "class:" rules may name; an undeclared class there is
	// taken for a typo.
	CustomClasses []retry.Class `json:"customClasses"`
	// Strategies holds the parameters of the immediate, short and long
	// strategies. Defaults [Immediate], [Short], [Long].
	Strategies StrategiesConfig `json:"strategies"`
}

// StrategiesConfig holds the parameters of the named strategies.
type StrategiesConfig struct {
	Immediate StrategyConfig `json:"immediate"`
	Short     StrategyConfig `json:"short"`
	Long      StrategyConfig `json:"long"`
}

// StrategyConfig is one strategy's backoff: see [Exponential].
type StrategyConfig struct {
	BaseDelayMs int64   `json:"baseDelayMs"`
	MaxDelayMs  int64   `json:"maxDelayMs"`
	Multiplier  float64 `json:"multiplier"`
	Jitter      Jitter  `json:"jitter"`
	// JitterMs bounds additive jitter; other kinds ignore it.
	JitterMs int64 `json:"jitterMs"`
}

// DefaultConfig returns the design's defaults (maxRetries 3, baseDelayMs
// 1000, maxDelayMs 300000, jitterMs 1000, no rules), multiplier 2, additive
// jitter, the design's routing table and the built-in strategies.
func DefaultConfig() Config {
	d := Default()
	return Config{
		MaxRetries:         d.MaxRetries,
		BaseDelayMs:        d.BaseDelay.Milliseconds(),
		MaxDelayMs:         d.MaxDelay.Milliseconds(),
		JitterMs:           d.JitterMax.Milliseconds(),
		RetryableErrors:    []string{},
		NonRetryableErrors: []string{},
		Multiplier:         d.Multiplier,
		Jitter:             d.Jitter,
		Routes:             DefaultRoutes(),
		CustomClasses:      []retry.Class{},
		Strategies: StrategiesConfig{
			Immediate: strategyConfig(Immediate()),
			Short:     strategyConfig(Short()),
			Long:      strategyConfig(Long()),
		},
	}
}

func strategyConfig(e Exponential) StrategyConfig {
	return StrategyConfig{
		BaseDelayMs: e.BaseDelay.Milliseconds(), MaxDelayMs: e.MaxDelay.Milliseconds(),
		Multiplier: e.Multiplier, Jitter: e.Jitter, JitterMs: e.JitterMax.Milliseconds(),
	}
}

// strategyNames are the names Routes may use.
var strategyNames = []string{StrategyImmediate, StrategyShort, StrategyLong, StrategyNone, StrategyExponential}

// Validate reports every bad field, each error naming it by its JSON path
// ("maxDelayMs: ...", "routes.rate_limt: ...", "retryableErrors[2]: ...");
// several are combined with go-multierror. A Config that passes builds.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, retry.InvalidField(field, format, args...))
	}
	if c.MaxRetries < retry.Unlimited {
		bad("maxRetries", "%d: want -1 (unlimited), 0 (none) or more", c.MaxRetries)
	}
	if c.MaxElapsedMs < 0 || c.MaxElapsedMs > maxElapsedLimitMs {
		bad("maxElapsedMs", "%d: want 0 (no limit) to %d", c.MaxElapsedMs, maxElapsedLimitMs)
	}
	c.exponential().validate("", bad)
	for name, s := range c.strategies() {
		s.validate("strategies."+name+".", bad)
	}

	classes := map[retry.Class]bool{}
	for _, b := range retry.BuiltinClasses {
		classes[b] = true
	}
	for i, cc := range c.CustomClasses {
		if err := retry.ValidateClassName(string(cc)); err != nil {
			bad(fmt.Sprintf("customClasses[%d]", i), "%v", err)
		}
		classes[cc] = true
	}
	for _, cl := range slices.Sorted(maps.Keys(c.Routes)) {
		name := c.Routes[cl]
		if !classes[cl] {
			bad("routes."+string(cl), "unknown class %q (declare it in customClasses)", cl)
		}
		if !slices.Contains(strategyNames, name) {
			bad("routes."+string(cl), "unknown strategy %q (want immediate, short, long, none or exponential)", name)
		}
	}
	for field, list := range map[string][]string{"retryableErrors": c.RetryableErrors, "nonRetryableErrors": c.NonRetryableErrors} {
		for i, s := range list {
			r, err := ParseRule(s)
			if err != nil {
				bad(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			} else if r.kind == ruleClass && !classes[retry.Class(r.text)] {
				bad(fmt.Sprintf("%s[%d]", field, i), "rule %q: unknown class (declare it in customClasses)", s)
			}
		}
	}
	// Maps iterate in random order: sort, so the same config gives the
	// same error.
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return combine.Errors(errs...)
}

// exponential is the top-level backoff as a StrategyConfig.
func (c Config) exponential() StrategyConfig {
	return StrategyConfig{BaseDelayMs: c.BaseDelayMs, MaxDelayMs: c.MaxDelayMs, Multiplier: c.Multiplier, Jitter: c.Jitter, JitterMs: c.JitterMs}
}

func (c Config) strategies() map[string]StrategyConfig {
	return map[string]StrategyConfig{
		StrategyImmediate: c.Strategies.Immediate,
		StrategyShort:     c.Strategies.Short,
		StrategyLong:      c.Strategies.Long,
	}
}

var maxDelayLimitMs = MaxDelayLimit.Milliseconds()

// maxElapsedLimitMs is the longest maxElapsedMs: as long as a delay may be.
var maxElapsedLimitMs = maxDelayLimitMs

// validate reports bad fields under prefix ("" or "strategies.short.").
func (s StrategyConfig) validate(prefix string, bad func(field, format string, args ...any)) {
	if s.BaseDelayMs <= 0 || s.BaseDelayMs > maxDelayLimitMs {
		bad(prefix+"baseDelayMs", "%d: want > 0 and <= %d", s.BaseDelayMs, maxDelayLimitMs)
	}
	if s.MaxDelayMs < s.BaseDelayMs || s.MaxDelayMs > maxDelayLimitMs {
		bad(prefix+"maxDelayMs", "%d: want >= baseDelayMs (%d) and <= %d", s.MaxDelayMs, s.BaseDelayMs, maxDelayLimitMs)
	}
	if s.JitterMs < 0 || s.JitterMs > maxDelayLimitMs {
		bad(prefix+"jitterMs", "%d: want >= 0 and <= %d", s.JitterMs, maxDelayLimitMs)
	}
	if !(s.Multiplier >= 1) || math.IsInf(s.Multiplier, 1) {
		bad(prefix+"multiplier", "%v: want a finite number >= 1", s.Multiplier)
	}
	if _, err := ParseJitter(string(s.Jitter)); err != nil {
		bad(prefix+"jitter", "%v", err)
	}
}

func (s StrategyConfig) strategy(name string, maxRetries int) Exponential {
	return Exponential{
		StrategyName: name,
		BaseDelay:    time.Duration(s.BaseDelayMs) * time.Millisecond,
		MaxDelay:     time.Duration(s.MaxDelayMs) * time.Millisecond,
		Multiplier:   s.Multiplier,
		MaxRetries:   maxRetries,
		Jitter:       s.Jitter,
		JitterMax:    time.Duration(s.JitterMs) * time.Millisecond,
	}
}

// RouterOptions validates c and converts it to [RouterOptions], for a
// caller that adds [ErrorIs] rules, a seeded Rand or strategies of its own
// before [NewRouter].
func (c Config) RouterOptions() (RouterOptions, error) {
	if err := c.Validate(); err != nil {
		return RouterOptions{}, err
	}
	o := RouterOptions{
		Strategies: []Strategy{None(), c.exponential().strategy(StrategyExponential, c.MaxRetries)},
		Routes:     maps.Clone(c.Routes),
		Fallback:   StrategyExponential,
		MaxRetries: c.MaxRetries,
		MaxElapsed: time.Duration(c.MaxElapsedMs) * time.Millisecond,
	}
	for name, s := range c.strategies() {
		o.Strategies = append(o.Strategies, s.strategy(name, c.MaxRetries))
	}
	// Validate parsed every rule already.
	o.Retryable, _ = ParseRules(c.RetryableErrors)
	o.NonRetryable, _ = ParseRules(c.NonRetryableErrors)
	return o, nil
}

// Build validates c and returns its [Router].
func (c Config) Build() (*Router, error) {
	o, err := c.RouterOptions()
	if err != nil {
		return nil, err
	}
	return NewRouter(o)
}
