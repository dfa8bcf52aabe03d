package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/journeyretry/journeyretry/executor"
	"github.com/journeyretry/journeyretry/policy"
	"github.com/journeyretry/journeyretry/retry"
)

// explainRetries is how many retries explain prints.
const explainRetries = 10

// explain prints how the configured policy treats a failure of class (and/or
// message): the strategy, the rule that chose it, what the rollout mode makes
// of it, and the delay range of retries 1-10. With neither, it prints the
// delay ranges of every strategy.
func explain(w io.Writer, cfg demoConfig, class retry.Class, message string) error {
	router, err := cfg.Retry.Build()
	if err != nil {
		return usageError(fmt.Errorf("invalid configuration: retry.%w", err))
	}
	mode := string(cfg.Executor.Mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if class == "" && message == "" {
		limit := fmt.Sprintf("maxRetries %d: later retries do not happen, the run ends failed_max_retries", router.MaxRetries())
		if router.MaxRetries() == retry.Unlimited {
			limit = "maxRetries -1: unlimited, later retries keep the last range"
		}
		fmt.Fprintf(w, "Delay range of retries 1-%d per strategy (mode %s; %s):\n", explainRetries, mode, limit)
		fmt.Fprint(tw, "  retry\t")
		for n := range explainRetries {
			fmt.Fprintf(tw, "%d\t", n+1)
		}
		fmt.Fprintln(tw)
		for _, s := range router.Strategies() {
			fmt.Fprintf(tw, "  %s\t", s.Name())
			for n := range explainRetries {
				fmt.Fprintf(tw, "%s\t", boundsText(s, n))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	}
	f := retry.Failure{Class: cmpClass(class), Message: message}
	e := router.Explain(f)
	fmt.Fprintf(w, "failure: class %s", f.Class)
	if message != "" {
		fmt.Fprintf(w, ", message %q", message)
	}
	fmt.Fprintln(w)
	if e.Strategy == nil || neverRetries(e.Strategy) {
		// A non-retryable rule, a permanent error, or a strategy that
		// never retries (none): no mode and no retry limit changes that.
		fmt.Fprintf(w, "decision: never retried (rule %s): the run ends failed\n", e.Rule)
		return nil
	}
	limit := fmt.Sprintf("at most %d retries", e.MaxRetries)
	if e.MaxRetries == retry.Unlimited {
		limit = "unlimited retries"
	}
	if e.MaxElapsed > 0 {
		limit += fmt.Sprintf(", none starting later than %s after the node's first attempt (maxElapsedMs)", e.MaxElapsed)
	}
	fmt.Fprintf(w, "strategy: %s (rule %s), %s\n", e.Strategy.Name(), e.Rule, limit)
	elig := "no"
	if e.Eligible {
		elig = "yes"
	}
	fmt.Fprintf(w, "eligible in selective mode: %s (rule %s)\n", elig, e.EligibleRule)
	fmt.Fprintf(w, "mode %s: %s\n", mode, modeVerdict(mode, e))
	fmt.Fprintf(w, "budget: %s\n", budgetVerdict(cfg.Executor.Budget, f.Class))
	fmt.Fprintln(tw, "  retry\tdelay\t")
	for n := range explainRetries {
		note := ""
		if retry.Exceeds(n, e.MaxRetries) {
			note = "beyond maxRetries: the run ends failed_max_retries instead"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", n+1, boundsText(e.Strategy, n), note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "An error carrying a Retry-After waits that long instead, capped by the strategy's max delay.")
	return nil
}

// budgetVerdict says what the retry budget does with the retries of
// class.
func budgetVerdict(b executor.BudgetConfig, class retry.Class) string {
	if !b.Enabled {
		return "off (executor.budget.enabled): retries are not rationed across runs"
	}
	lim := retry.Budget{Ratio: b.Ratio, MinRetries: b.MinRetries, Window: b.Window}.WithDefaults()
	key, scope := string(class), "all attempts"
	if b.PerNodeType {
		key, scope = key+"@NODE_TYPE", "the attempts of its node type"
	}
	s := fmt.Sprintf("the retries of %s, shared by every worker, at most max(%d, %g%% of %s) per %s; over it a retry is deferred to the budget's next free slot (rule %s)",
		class, lim.MinRetries, lim.Ratio*100, scope, lim.Window, retry.BudgetRule(key))
	if b.PauseOnRetryAfter {
		s += "; a Retry-After pauses them until then (rule " + retry.BudgetPausedRule(key) + ")"
	}
	return s
}

// explainBudgets prints the budgets the store keeps, as of now: what each
// let through and deferred in its last window, and its pause.
func explainBudgets(w io.Writer, bi retry.BudgetInspector, now time.Time) error {
	bs, err := bi.Budgets(context.Background(), now)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		fmt.Fprintln(w, "budgets in the store: none (no budgeted failure recorded yet)")
		return nil
	}
	fmt.Fprintln(w, "budgets in the store:")
	for _, b := range bs {
		fmt.Fprintf(w, "  %s\n", b)
	}
	return nil
}

// neverRetries reports whether s never retries (the none strategy).
func neverRetries(s policy.Strategy) bool {
	_, _, ok := s.Bounds(0)
	return !ok
}

// cmpClass defaults an empty class to unknown: a message alone is an
// unclassified error.
func cmpClass(c retry.Class) retry.Class {
	if c == "" {
		return retry.ClassUnknown
	}
	return c
}

// modeVerdict says what the rollout mode does with a failure the router
// would retry.
func modeVerdict(mode string, e policy.Explanation) string {
	switch mode {
	case "off":
		return "recorded, not retried (the run ends failed, as before retries)"
	case "shadow":
		return "recorded with the decision above marked shadow, not retried"
	case "selective":
		if e.Eligible {
			return "retried as below"
		}
		return "not retried: no retryableErrors rule matches (the run ends failed)"
	}
	return "retried as below"
}

// boundsText is retry n+1's delay range, or "never".
func boundsText(s policy.Strategy, n int) string {
	lo, hi, ok := s.Bounds(n)
	if !ok {
		return "never"
	}
	return fmt.Sprintf("%s-%s", roundDelay(lo), roundDelay(hi))
}

// roundDelay keeps delays readable: milliseconds below a minute, seconds
// above.
func roundDelay(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
