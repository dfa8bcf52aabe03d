package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// keyMeanings says what each key without a flag means, and what a zero
// value stands for, from the library's own default; a key with a flag
// means what its flag's usage says. TestConfigListsEveryKey fails for a
// key with neither and for a meaning of no key, so the listing cannot
// drift from the configuration.
var keyMeanings = map[string]string{
	"store.busy_timeout":                fmt.Sprintf("SQLite: how long to wait for another process's lock (0: %s)", storage.BusyTimeoutDefault),
	"store.synchronous":                 fmt.Sprintf("SQLite: OFF, NORMAL or FULL (empty: %s)", storage.SynchronousDefault),
	"store.read_conns":                  fmt.Sprintf("connections serving reads (0: %d)", storage.ReadConnsDefault),
	"store.writers":                     fmt.Sprintf("PostgreSQL: writer goroutines, each batching writes on a connection of its own (0: %d)", storage.WritersDefault),
	"store.max_batch":                   fmt.Sprintf("most writes sharing one transaction (1: no group commit) (0: %d)", storage.MaxBatchDefault),
	"store.write_timeout":               fmt.Sprintf("bound of each write whose caller sets none sooner (0: %s)", storage.WriteTimeoutDefault),
	"executor.worker":                   "this process's name in claims (empty: hostname-pid)",
	"executor.nodeTimeout":              fmt.Sprintf("bound of one node execution (0: %s)", executor.NodeTimeoutDefault),
	"executor.shutdownTimeout":          fmt.Sprintf("how long a stopping worker waits for nodes in flight (0: %s)", executor.ShutdownTimeoutDefault),
	"executor.maxSnoozes":               fmt.Sprintf("most snoozes of one node in one run (0: %d, -1: unlimited)", executor.MaxSnoozesDefault),
	"retry.maxElapsedMs":                "most time of one node across its retries, ms (0: no limit)",
	"executor.budget.enabled":           "retry budgets shared by every worker: over a window, a class's retries are deferred past its budget (false: off)",
	"executor.budget.ratio":             fmt.Sprintf("retry budget: the share of the window's attempts retries may make up (0: %v)", retry.BudgetRatioDefault),
	"executor.budget.minRetries":        fmt.Sprintf("retry budget: retries always allowed per window, per class (0: %d)", retry.BudgetMinRetriesDefault),
	"executor.budget.window":            fmt.Sprintf("retry budget: the sliding window, a Go duration (0: %s)", retry.BudgetWindowDefault),
	"executor.budget.perNodeType":       "retry budget: one per class and node type, compared with that type's attempts",
	"executor.budget.pauseOnRetryAfter": "retry budget: an error's Retry-After pauses its class's retries on every worker",
	"retry.multiplier":                  "exponential growth of the default strategy's delay",
	"retry.routes":                      "error class to strategy name (immediate, short, long, none, ...)",
	"retry.customClasses":               "error classes of your own, beside the built-in ones",
}

// strategyMeanings say what each key of a named strategy means.
var strategyMeanings = map[string]string{
	"baseDelayMs": "first delay, in milliseconds",
	"maxDelayMs":  "longest delay, in milliseconds",
	"multiplier":  "growth of the delay from one retry to the next",
	"jitter":      "jitter kind: none, full, equal or additive",
	"jitterMs":    "additive jitter bound, in milliseconds",
}

// keyMeaning is the one line of meaning of key path, "" if none.
func keyMeaning(path string) string {
	for _, g := range append(allFlags, serveFlags) {
		for _, b := range g {
			if b.key == path {
				return b.usage + " (--" + b.flag + ")"
			}
		}
	}
	if m, ok := keyMeanings[path]; ok {
		return m
	}
	if rest, ok := strings.CutPrefix(path, "retry.strategies."); ok {
		if name, field, ok := strings.Cut(rest, "."); ok && strategyMeanings[field] != "" {
			return name + " strategy: " + strategyMeanings[field]
		}
	}
	return ""
}

func cmdConfig(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := newCommand(ctx, "config", "config [flags]\n\nLists every configuration key: its environment variable, its value (the demo's\ndefault, or what --config and the environment set) and what it means.")
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	cfg := c.cfg
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENVIRONMENT\tVALUE\tMEANING")
	for _, k := range config.New(&cfg, envPrefix).Keys() {
		v := k.Value
		if len(v) > 40 { // a map or list: the file shows it whole
			v = v[:37] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Path, k.Env, v, keyMeaning(k.Path))
	}
	return tw.Flush()
}
