package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// optInt is an integer flag that knows whether it was given.
type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string {
	if !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q: want an integer", s)
	}
	o.v, o.set = n, true
	return nil
}

// byFlag adds --by, who the history says acted: the user running the
// command unless given.
func (c *command) byFlag() *string {
	return c.fs.String("by", c.operatorName(), "who acts, as the run's history records it")
}

// operatorName is the name of the user running the command: $USER in
// its environment, else the account's.
func (c *command) operatorName() string {
	for _, kv := range c.sur.environ {
		if u, ok := strings.CutPrefix(kv, "USER="); ok && u != "" {
			return u
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func cmdRunsCancel(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand(ctx, "runs cancel", "runs cancel ID [--by NAME] [flags]\n\nCancels a run that is in_progress, waiting or retrying: it ends cancelled at once.\nA worker running one of its nodes learns of it at its next lease renewal (within a\nlease), cancels the node's context and runs nothing after it; the node's result\nis not recorded. A cancelled run can be replayed with runs retry.", storeFlags)
	by := c.byFlag()
	id, s, err := c.openForRun(ctx, args, readExisting)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.Cancel(ctx, id, *by, time.Now())
	if err != nil {
		return operatorError(err, id, retry.ErrNotCancellable, "in_progress, waiting and retrying")
	}
	fmt.Fprintf(stdout, "run %s cancelled at node %s by %s; a worker running it stops within a lease\n", quoteID(r.ID), dash(r.CurrentNodeID), *by)
	return nil
}

// operatorError says what an operator action on run id met: a missing
// run, a run in a status the action refuses (refused, the store's error
// naming the status; allowed lists those it takes), or a usage error.
func operatorError(err error, id string, refused error, allowed string) error {
	switch {
	case errors.Is(err, retry.ErrNotFound):
		return fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrNotFound)
	case errors.Is(err, refused):
		return fmt.Errorf("%w (only %s runs are)", err, allowed)
	case errors.Is(err, retry.ErrInvalidArgument):
		return usageError(err)
	}
	return err
}

// retryFlags are runs retry's own flags.
type retryFlags struct {
	by, from, strategy                       *string
	maxRetries, confirm                      optInt
	status, class, node, journey, since, til *string
	dryRun                                   *bool
}

// bulk reports whether a flag that only a bulk replay takes was given.
func (f *retryFlags) bulk() bool {
	return *f.status != "" || *f.class != "" || *f.node != "" || *f.journey != "" || *f.since != "" || *f.til != "" ||
		*f.dryRun || f.confirm.set
}

const retryUsage = `runs retry ID [--from NODE] [--max-retries N] [--strategy S] [--by NAME] [flags]
       demo runs retry [--status S] [--class C] [--node N] [--journey J] [--since T] [--until T]
                       (--dry-run | --confirm N) [--max-retries N] [--strategy S] [--by NAME] [flags]

With a run id, replays a failed, failed_max_retries or cancelled run with a fresh
retry count, due now: from the node it stopped at, or from --from NODE, a node the
run reached (that node's output and those of the nodes after it are moved aside
into the replay's history entry, and the nodes run again). --max-retries and
--strategy apply to the rest of the run. The history records who replayed (--by),
from where and with what. Workers pick the run up through their sweeper.

Without one, replays in bulk the dead letters the filters keep (failed and
failed_max_retries runs unless --status says which), --since and --until bounding
the time of each run's last failure (a duration ago, 1h, or an RFC 3339 time).
--dry-run prints what it would replay and how many; then --confirm N, N that count,
replays them, and refuses, replaying nothing, if the filters now keep another number.`

func cmdRunsRetry(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand(ctx, "runs retry", retryUsage, storeFlags)
	f := retryFlags{by: c.byFlag()}
	f.from = c.fs.String("from", "", "replay from this node, one the run reached, instead of the one it stopped at")
	c.fs.Var(&f.maxRetries, "max-retries", "retry limit of each node for the rest of the run (-1: unlimited); default: the run's own")
	f.strategy = c.fs.String("strategy", "", "strategy that decides every failure for the rest of the run (immediate, short, long, exponential, none or one of retry.strategies)")
	f.status = c.fs.String("status", "", "bulk: only runs in this status: failed, failed_max_retries or cancelled")
	f.class = c.fs.String("class", "", "bulk: only runs whose last error has this class")
	f.node = c.fs.String("node", "", "bulk: only runs stopped at this node")
	f.journey = c.fs.String("journey", "", "bulk: only runs of this journey")
	f.since = c.fs.String("since", "", "bulk: only runs whose last failure is at or after this: a duration ago (1h) or an RFC 3339 time")
	f.til = c.fs.String("until", "", "bulk: only runs whose last failure is before this: a duration ago or an RFC 3339 time")
	f.dryRun = c.fs.Bool("dry-run", false, "bulk: print what would be replayed and how many; change nothing")
	c.fs.Var(&f.confirm, "confirm", "bulk: replay, if the filters keep exactly this many runs (the count --dry-run printed)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	o, err := c.replayOptions(&f)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return usageError(fmt.Errorf("runs retry: unexpected argument %s", retry.QuoteID(pos[1])))
	case len(pos) == 1 && f.bulk():
		return usageError(errors.New("runs retry: a run id or bulk flags (--status, --class, --node, --journey, --since, --until, --dry-run, --confirm), not both"))
	case len(pos) == 1:
		id := pos[0]
		if id == "" || !retry.StorableText(id) {
			return usageError(fmt.Errorf("runs retry: run id %s: want non-empty UTF-8 text without NUL", retry.QuoteID(id)))
		}
		return c.replayOne(ctx, id, o, stdout)
	case !f.bulk():
		return usageError(errors.New("runs retry: want a run id, or filters and --dry-run or --confirm N for a bulk replay"))
	case *f.from != "":
		return usageError(errors.New("flag --from: replays one run, not a bulk replay"))
	case *f.dryRun && f.confirm.set:
		return usageError(errors.New("flags --dry-run and --confirm: one or the other"))
	case !*f.dryRun && !f.confirm.set:
		return usageError(errors.New("runs retry: a bulk replay wants --dry-run first, then --confirm N with the count it printed"))
	}
	filter, statuses, err := c.bulkFilter(&f, time.Now())
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.cfg.Store, readExisting)
	if err != nil {
		return err
	}
	defer s.Close()
	return bulkReplay(ctx, s, filter, statuses, o, *f.dryRun, f.confirm.v, stdout)
}

// replayOptions checks the replay's own flags against the configuration.
func (c *command) replayOptions(f *retryFlags) (retry.ReplayOptions, error) {
	o := retry.ReplayOptions{By: *f.by, From: *f.from, Override: retry.PolicyOverride{Strategy: *f.strategy}}
	if f.maxRetries.set {
		if f.maxRetries.v < retry.Unlimited {
			return o, usageError(fmt.Errorf("flag --max-retries: %d: want -1 (unlimited) or more", f.maxRetries.v))
		}
		o.Override.MaxRetries = &f.maxRetries.v
	}
	if o.Override.Strategy != "" {
		// The workers decide with the same configuration: a strategy it
		// lacks would be ignored there.
		router, err := c.cfg.Retry.Build()
		if err == nil {
			_, err = router.Override(retry.PolicyOverride{Strategy: o.Override.Strategy})
		}
		if err != nil {
			return o, usageError(fmt.Errorf("flag --strategy: %w", err))
		}
	}
	for name, v := range map[string]string{"by": o.By, "from": o.From} {
		if !retry.StorableText(v) {
			return o, usageError(fmt.Errorf("flag --%s: %q: want UTF-8 text without NUL", name, v))
		}
	}
	return o, nil
}

// bulkFilter is the filter of a bulk replay, and the statuses it walks.
func (c *command) bulkFilter(f *retryFlags, now time.Time) (retry.RunFilter, []retry.Status, error) {
	filter := retry.RunFilter{ErrorClass: retry.Class(*f.class), NodeID: *f.node, JourneyID: *f.journey}
	statuses := []retry.Status{retry.StatusFailed, retry.StatusFailedMaxRetries}
	if *f.status != "" {
		st, err := retry.ParseStatus(*f.status)
		if err == nil && !st.Replayable() {
			err = fmt.Errorf("%s runs are not replayable", st)
		}
		if err != nil {
			return filter, nil, usageError(fmt.Errorf("flag --status: %w (want failed, failed_max_retries or cancelled)", err))
		}
		statuses = []retry.Status{st}
	}
	if cl := filter.ErrorClass; cl != "" && !cl.Builtin() && !slices.Contains(c.cfg.Retry.CustomClasses, cl) {
		return filter, nil, usageError(fmt.Errorf("flag --class: unknown class %q (built-in: %v; declare your own in retry.customClasses)", cl, retry.BuiltinClasses))
	}
	for name, v := range map[string]string{"node": filter.NodeID, "journey": filter.JourneyID} {
		if !retry.StorableText(v) {
			return filter, nil, usageError(fmt.Errorf("flag --%s: %q: want UTF-8 text without NUL", name, v))
		}
	}
	var err error
	if filter.FailedSince, err = parseWhen("since", *f.since, now); err != nil {
		return filter, nil, err
	}
	if filter.FailedUntil, err = parseWhen("until", *f.til, now); err != nil {
		return filter, nil, err
	}
	if !filter.FailedSince.IsZero() && !filter.FailedUntil.IsZero() && !filter.FailedUntil.After(filter.FailedSince) {
		return filter, nil, usageError(errors.New("flags --since and --until: the window is empty"))
	}
	return filter, statuses, nil
}

// parseWhen reads a time flag: a positive duration before now, or an RFC
// 3339 time; "" is the zero time.
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError(fmt.Errorf("flag --%s: %q: want a positive duration ago (1h, 30m) or an RFC 3339 time", flag, v))
}

// replayOne replays run id with o.
func (c *command) replayOne(ctx context.Context, id string, o retry.ReplayOptions, stdout io.Writer) error {
	s, err := openStore(ctx, c.cfg.Store, readExisting)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.ReplayWith(ctx, id, o, time.Now())
	if err != nil { // ErrInvalidArgument: a node the run never reached, among others
		return operatorError(err, id, retry.ErrNotReplayable, "failed, failed_max_retries and cancelled")
	}
	fmt.Fprintf(stdout, "run %s replayed from node %s%s: %s, due now; a worker's sweeper picks it up\n", quoteID(r.ID), r.CurrentNodeID, overrideText(o.Override), r.Status)
	return nil
}

// overrideText describes a replay's override for a line of output: ""
// for none.
func overrideText(o retry.PolicyOverride) string {
	var parts []string
	if o.Strategy != "" {
		parts = append(parts, "strategy "+o.Strategy)
	}
	if o.MaxRetries != nil {
		parts = append(parts, "max retries "+retry.LimitText(*o.MaxRetries))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// bulkReplay replays the runs in statuses that filter keeps, page by
// page, with o: with dryRun it prints them and their count instead; else
// it replays only when they are confirm many. A run that stopped being
// replayable meanwhile (a worker or an operator got there first) is
// skipped and counted.
func bulkReplay(ctx context.Context, s *storage.Store, filter retry.RunFilter, statuses []retry.Status, o retry.ReplayOptions,
	dryRun bool, confirm int, stdout io.Writer) error {
	var match []retry.Run
	for _, st := range statuses {
		filter.Status = st
		err := eachPage(ctx, s, filter, func(page []retry.Run) error {
			match = append(match, page...)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if dryRun {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tJOURNEY\tNODE\tCLASS\tLAST FAILURE\tLAST ERROR")
		for _, r := range match {
			failed := "-"
			if !r.LastErrorAt.IsZero() {
				failed = r.LastErrorAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", quoteID(r.ID), r.Status, r.JourneyID, dash(r.CurrentNodeID),
				dash(string(r.LastErrorClass)), failed, dash(oneLine(r.LastErrorMessage)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "would replay %d runs%s; nothing changed. Replay them with --confirm %d\n", len(match), overrideText(o.Override), len(match))
		return nil
	}
	if len(match) != confirm {
		return fmt.Errorf("runs retry: the filters keep %d runs, not %d: nothing replayed (run --dry-run again)", len(match), confirm)
	}
	replayed, skipped := 0, 0
	for _, r := range match {
		_, err := s.ReplayWith(ctx, r.ID, o, time.Now())
		switch {
		case errors.Is(err, retry.ErrNotReplayable) || errors.Is(err, retry.ErrNotFound):
			skipped++
		case err != nil:
			return fmt.Errorf("runs retry: replayed %d of %d runs, then: %w", replayed, len(match), err)
		default:
			replayed++
		}
	}
	fmt.Fprintf(stdout, "replayed %d runs%s, due now; workers' sweepers pick them up", replayed, overrideText(o.Override))
	if skipped > 0 {
		fmt.Fprintf(stdout, "; %d skipped, no longer replayable", skipped)
	}
	fmt.Fprintln(stdout)
	return nil
}
