package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

// openMode says whether a command may create the database.
type openMode int

const (
	// readExisting: the database must exist and be migrated (runs,
	// stats): a typo in --store must not leave an empty database behind.
	readExisting openMode = iota
	// readOnly: readExisting, for commands that only read (stats, runs
	// list, runs show): the store changes nothing in the database.
	readOnly
	// create: create the SQLite file and its data folder if needed
	// (migrate, which migrates itself).
	create
)

// openStore opens the configured store. Call it only after the whole
// configuration is validated: it is the first thing that writes.
func openStore(ctx context.Context, cfg storage.Config, mode openMode) (*storage.Store, error) {
	existing := mode == readExisting || mode == readOnly
	cfg.ReadOnly = mode == readOnly
	if existing && cfg.DSN == ":memory:" {
		return nil, usageError(errors.New("store :memory: is a SQLite database in memory, new and empty in each process: nothing to read (give a file or a postgres:// URL)"))
	}
	if p := sqlitePath(cfg.DSN); p != "" && existing {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database %s does not exist (run the demo, or demo migrate, first)", p)
		}
	}
	if err := makeDataDir(cfg.DSN); err != nil {
		return nil, err
	}
	s, err := storage.Open(ctx, cfg) // its errors say "open store"
	if err != nil {
		return nil, err
	}
	if existing {
		if err := checkMigrated(ctx, s, cfg.DSN); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// makeDataDir creates the folder of a SQLite file that does not exist
// yet (the store creates the file).
func makeDataDir(dsn string) error {
	p := sqlitePath(dsn)
	if p == "" {
		return nil
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create data folder: %w", err)
		}
	}
	return nil
}

// checkMigrated returns an error saying to migrate first when the database
// lacks migrations, so a read command on a database never migrated says
// what to do instead of quoting a missing table.
func checkMigrated(ctx context.Context, s *storage.Store, dsn string) error {
	n, err := s.PendingMigrations(ctx)
	switch {
	case err != nil:
		return err
	case n > 0:
		return fmt.Errorf("database %s: no retry schema, %d migrations pending (run the demo, or demo migrate, first)", redactedDSN(dsn), n)
	}
	return nil
}

// redactedDSN is the DSN for messages: a SQLite path as it is, a
// PostgreSQL URL without its password.
func redactedDSN(dsn string) string {
	if p := sqlitePath(dsn); p != "" {
		return p
	}
	return redactURL(dsn)
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// writeJSON prints v indented.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdMigrate(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := newCommand(ctx, "migrate", "migrate [flags]\n\nApplies the schema (phase 1 of docs/design.md: retry columns with their defaults, their\nindexes, the attempt history) to the database, creating it if needed. A legacy\njourney_runs table keeps every row and column. Running it twice changes nothing.\n\nAt cutover, once every legacy writer has stopped, --adopt-legacy hands the runs the\nlegacy system left in_progress to the workers (before that, they would run twice).", storeFlags)
	adopt := c.fs.Bool("adopt-legacy", false, "cutover: make the runs the stopped legacy system left in flight claimable")
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	s, err := openStore(ctx, c.cfg.Store, create)
	if err != nil {
		return err
	}
	defer s.Close()
	pending, err := s.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	if pending == 0 {
		fmt.Fprintf(stdout, "%s: schema already up to date, nothing to migrate\n", storeLabel(c.cfg.Store.DSN))
	} else {
		fmt.Fprintf(stdout, "migrated %s\n", storeLabel(c.cfg.Store.DSN))
	}
	if *adopt {
		// The demo's workers register one journey: its legacy runs pin
		// that version; the runs of any other journey end.
		a, err := s.AdoptLegacy(ctx, time.Now(), map[string]int{journeyID: journeyVersion})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "adopted %d legacy runs left in flight: workers resume them under %s version %d\n", a.Adopted, journeyID, journeyVersion)
		if a.Malformed > 0 {
			fmt.Fprintf(stdout, "ended %d legacy runs with no usable current node: failed, class %s\n", a.Malformed, retry.ClassMalformedNode)
		}
		if a.Unregistered > 0 {
			fmt.Fprintf(stdout, "ended %d legacy runs of journeys the demo does not run: failed, class %s\n", a.Unregistered, retry.ClassMissingJourney)
		}
	}
	return nil
}

// parseNoArgs parses a command that takes no positional arguments.
func (c *command) parseNoArgs(args []string) error {
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError(fmt.Errorf("%s: unexpected argument %q", c.name, pos[0]))
	}
	return nil
}

func cmdStats(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := newCommand(ctx, "stats", "stats [--json] [flags]\n\nPrints the summary of an existing database: runs by status, attempts per run,\nretries by strategy and error class, top errors.", storeFlags)
	c.jsonFlag()
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	s, err := openStore(ctx, c.cfg.Store, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := report.Summarize(ctx, s, time.Now())
	if err != nil {
		return err
	}
	if c.jsonOut {
		return writeJSON(stdout, report.Summary{Database: d})
	}
	report.WriteText(stdout, report.Summary{Database: d})
	return nil
}

func cmdExplain(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := newCommand(ctx, "explain", "explain [--class C] [--message M] [--budgets] [flags]\n\nPrints how the configured policy treats a failure: the strategy, the rule that\nchose it, what the rollout mode and the retry budget do, and the delay range of\nretries 1-10. With neither --class nor --message, the delay ranges of every\nstrategy. With --budgets, also the retry budgets the store keeps: what each let\nthrough and deferred in its last window, and its pause.", retryLimitFlags, delayFlags, ruleFlags, modeFlags, storeFlags)
	class := c.fs.String("class", "", "error class (network_blip, rate_limit, validation, ... or one of retry.customClasses)")
	message := c.fs.String("message", "", "error message, matched by the retryable and non-retryable rules")
	budgets := c.fs.Bool("budgets", false, "also print the retry budgets the store keeps (reads --store)")
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	if *budgets {
		s, err := openStore(ctx, c.cfg.Store, readOnly)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := explainBudgets(stdout, s, time.Now()); err != nil {
			return err
		}
		if *class == "" && *message == "" {
			return nil
		}
	}
	cl := retry.Class(*class)
	if cl != "" && !cl.Builtin() && !slices.Contains(c.cfg.Retry.CustomClasses, cl) {
		return usageError(fmt.Errorf("flag --class: unknown class %q (built-in: %v; declare your own in retry.customClasses)", cl, retry.BuiltinClasses))
	}
	return explain(stdout, c.cfg, cl, *message)
}

// cmdRuns is "demo runs" without one of its subcommands (which dispatch
// finds): its usage for --help, else a usage error.
func cmdRuns(args []string, stdout io.Writer) error {
	const usage = "usage: demo runs list [--status S] [--json]\n       demo runs show ID [--json]\n       demo runs retry ID [--from NODE] [--max-retries N] [--strategy S]\n       demo runs retry [--status S] [--class C] [--node N] [--journey J] [--since T] [--until T] (--dry-run | --confirm N)\n       demo runs cancel ID\n"
	switch {
	case len(args) == 0:
		fmt.Fprint(stdout, usage)
		return usageError(errors.New("runs: want a subcommand: list, show, retry or cancel"))
	case args[0] == "-h" || args[0] == "--help" || args[0] == "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError(fmt.Errorf("runs: unknown subcommand %q (want list, show, retry or cancel)", args[0]))
}

// runView is a run as the runs commands print it. AttemptCount counts node
// executions, as the summary does, and Replays the operator replays, which
// the store's attempt count includes.
type runView struct {
	ID               string       `json:"id"`
	JourneyID        string       `json:"journeyId"`
	JourneyVersion   int          `json:"journeyVersion"`
	Status           retry.Status `json:"status"`
	CurrentNodeID    string       `json:"currentNodeId,omitempty"`
	RetryCount       int          `json:"retryCount"`
	SnoozeCount      int          `json:"snoozeCount"`
	MaxRetries       int          `json:"maxRetries"` // -1: unlimited
	RetryEnabled     bool         `json:"retryEnabled"`
	AttemptCount     int          `json:"attemptCount"`
	Replays          int          `json:"replays"`
	LastErrorClass   retry.Class  `json:"lastErrorClass,omitempty"`
	LastErrorMessage string       `json:"lastErrorMessage,omitempty"`
	LastErrorAt      *time.Time   `json:"lastErrorAt,omitempty"`
	NextRetryAt      *time.Time   `json:"nextRetryAt,omitempty"`
	WakeAt           *time.Time   `json:"wakeAt,omitempty"`
	ClaimedBy        string       `json:"claimedBy,omitempty"`
	LeaseExpiresAt   *time.Time   `json:"leaseExpiresAt,omitempty"`
	CreatedAt        time.Time    `json:"createdAt"`
	UpdatedAt        time.Time    `json:"updatedAt"`
}

// timePtr is nil for the zero time (a NULL column).
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// viewRun is the view of r, whose history holds replays operator replays.
func viewRun(r retry.Run, replays int) runView {
	v := runView{
		ID: r.ID, JourneyID: r.JourneyID, JourneyVersion: r.JourneyVersion, Status: r.Status,
		CurrentNodeID: r.CurrentNodeID, RetryCount: r.RetryCount, SnoozeCount: r.SnoozeCount, MaxRetries: r.MaxRetries,
		RetryEnabled: r.RetryEnabled, AttemptCount: r.AttemptCount - replays, Replays: replays,
		LastErrorClass: r.LastErrorClass, LastErrorMessage: r.LastErrorMessage,
		LastErrorAt: timePtr(r.LastErrorAt),
		ClaimedBy:   r.ClaimedBy, LeaseExpiresAt: timePtr(r.LeaseExpiresAt),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	// The store keeps the last due and wake times after they pass; they
	// describe the run only while it waits for them.
	switch r.Status {
	case retry.StatusRetrying:
		v.NextRetryAt = timePtr(r.NextRetryAt)
	case retry.StatusWaiting:
		v.WakeAt = timePtr(r.WakeAt)
	}
	return v
}

// attemptView is one attempt as runs show prints it.
type attemptView struct {
	Number       int           `json:"number"`
	NodeID       string        `json:"nodeId"`
	NodeAttempt  int           `json:"nodeAttempt"`
	Worker       string        `json:"worker,omitempty"`
	StartedAt    *time.Time    `json:"startedAt,omitempty"`
	FinishedAt   time.Time     `json:"finishedAt"`
	Outcome      retry.Outcome `json:"outcome"`
	ErrorClass   retry.Class   `json:"errorClass,omitempty"`
	ErrorMessage string        `json:"errorMessage,omitempty"`
	Retry        bool          `json:"retry"`
	Strategy     string        `json:"strategy,omitempty"`
	Rule         string        `json:"rule,omitempty"`
	DelayMs      int64         `json:"delayMs"`
	Shadow       bool          `json:"shadow,omitempty"`
	Status       retry.Status  `json:"status"`
	// Act is what an operator did: a replay or a cancel.
	Act *retry.OperatorAct `json:"act,omitempty"`
}

func viewAttempt(a retry.Attempt) attemptView {
	return attemptView{
		Number: a.Number, NodeID: a.NodeID, NodeAttempt: a.NodeAttempt, Worker: a.Worker,
		StartedAt: timePtr(a.StartedAt), FinishedAt: a.FinishedAt, Outcome: a.Outcome,
		ErrorClass: a.ErrorClass, ErrorMessage: a.ErrorMessage,
		Retry: a.Decision.Retry, Strategy: a.Decision.Strategy, Rule: a.Decision.Rule,
		DelayMs: a.Decision.Delay.Milliseconds(), Shadow: a.Shadow, Status: a.Status, Act: a.Act,
	}
}

func cmdRunsList(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand(ctx, "runs list", "runs list [--status S] [--limit N] [--json] [flags]\n\nLists runs in id order, optionally only those in one status.", storeFlags)
	c.jsonFlag()
	status := c.fs.String("status", "", "only runs in this status: in_progress, waiting, retrying, completed, failed, failed_max_retries, cancelled")
	limit := c.fs.Int("limit", 0, "list at most this many runs (0: all)")
	if err := c.parseNoArgs(args); err != nil {
		return err
	}
	var st retry.Status
	if *status != "" {
		var err error
		if st, err = retry.ParseStatus(*status); err != nil {
			return usageError(fmt.Errorf("flag --status: %w", err))
		}
	}
	if *limit < 0 {
		return usageError(fmt.Errorf("flag --limit: %d is negative", *limit))
	}
	s, err := openStore(ctx, c.cfg.Store, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	runs := []runView{}
	errDone := errors.New("done")
	err = eachPage(ctx, s, retry.RunFilter{Status: st}, func(page []retry.Run) error {
		if *limit > 0 {
			page = page[:min(len(page), *limit-len(runs))]
		}
		ids := make([]string, len(page))
		for i, r := range page {
			ids[i] = r.ID
		}
		replays, err := s.ReplayCounts(ctx, ids)
		if err != nil {
			return err
		}
		for _, r := range page {
			runs = append(runs, viewRun(r, replays[r.ID]))
		}
		if *limit > 0 && len(runs) == *limit {
			return errDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return err
	}
	if c.jsonOut {
		return writeJSON(stdout, runs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tNODE\tRETRIES\tATTEMPTS\tREPLAYS\tLAST ERROR")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%s\t%d\t%d\t%s\n", quoteID(r.ID), r.Status, dash(r.CurrentNodeID), r.RetryCount, retry.LimitText(r.MaxRetries), r.AttemptCount, r.Replays, dash(oneLine(r.LastErrorMessage)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runDetail is what runs show --json prints.
type runDetail struct {
	Run      runView       `json:"run"`
	Attempts []attemptView `json:"attempts"`
}

func cmdRunsShow(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand(ctx, "runs show", "runs show ID [--json] [flags]\n\nPrints a run and its attempt history: node, worker, start and finish, error\nclass and message, and the policy's decision (strategy, rule, delay).", storeFlags)
	c.jsonFlag()
	id, s, err := c.openForRun(ctx, args, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.Get(ctx, id)
	if errors.Is(err, retry.ErrNotFound) {
		return fmt.Errorf("run %s: %w", retry.QuoteID(id), retry.ErrNotFound) // the store's error quotes all of it
	}
	if err != nil {
		return err
	}
	as, err := s.Attempts(ctx, id)
	if err != nil {
		return err
	}
	replays := 0
	d := runDetail{Attempts: make([]attemptView, 0, len(as))}
	for _, a := range as {
		d.Attempts = append(d.Attempts, viewAttempt(a))
		if a.Outcome == retry.OutcomeReplayed {
			replays++
		}
	}
	d.Run = viewRun(r, replays)
	if c.jsonOut {
		return writeJSON(stdout, d)
	}
	fmt.Fprintf(stdout, "run %s  journey %s v%d  status %s", quoteID(r.ID), r.JourneyID, r.JourneyVersion, r.Status)
	if r.CurrentNodeID != "" {
		fmt.Fprintf(stdout, "  at node %s (retry %d of %s", r.CurrentNodeID, r.RetryCount, retry.LimitText(r.MaxRetries))
		if r.SnoozeCount > 0 {
			fmt.Fprintf(stdout, ", %d snoozes", r.SnoozeCount)
		}
		fmt.Fprint(stdout, ")")
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tNODE\tTRY\tWORKER\tSTARTED\tFINISHED\tOUTCOME\tCLASS\tSTRATEGY\tRULE\tDELAY\tSTATUS\tMESSAGE")
	for _, a := range d.Attempts {
		started := "-"
		if a.StartedAt != nil {
			started = a.StartedAt.Format(timeFmt)
		}
		strategy := dash(a.Strategy)
		if a.Shadow {
			strategy += " (shadow)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Number, a.NodeID, a.NodeAttempt, dash(a.Worker),
			started, a.FinishedAt.Format(timeFmt), a.Outcome, dash(string(a.ErrorClass)), strategy, dash(a.Rule),
			time.Duration(a.DelayMs)*time.Millisecond, a.Status, dash(oneLine(cmp.Or(actText(a.Act), a.ErrorMessage))))
	}
	return tw.Flush()
}

// actText describes an operator's act for the MESSAGE column: who, from
// where, with what, and the outputs a replay moved aside; "" for none.
func actText(act *retry.OperatorAct) string {
	if act == nil {
		return ""
	}
	s := "by " + act.By
	if act.From != "" {
		s += " from " + act.From
	}
	s += overrideText(act.Override)
	if len(act.Moved) > 0 {
		s += "; moved aside: " + strings.Join(slices.Sorted(maps.Keys(act.Moved)), ", ")
	}
	return s
}

// timeFmt shows attempt times to the millisecond the store keeps.
const timeFmt = "15:04:05.000"

// openForRun parses a command that takes one run id and opens the
// existing store.
func (c *command) openForRun(ctx context.Context, args []string, mode openMode) (string, *storage.Store, error) {
	id, err := c.parseWithID(args)
	if err != nil {
		return "", nil, err
	}
	s, err := openStore(ctx, c.cfg.Store, mode)
	return id, s, err
}

// parseWithID parses a command that takes one run id, before, between or
// after its flags.
func (c *command) parseWithID(args []string) (string, error) {
	pos, err := c.parse(args)
	switch {
	case err != nil:
		return "", err
	case len(pos) == 0:
		return "", usageError(fmt.Errorf("%s: want a run id", c.name))
	case len(pos) > 1:
		return "", usageError(fmt.Errorf("%s: unexpected argument %s", c.name, retry.QuoteID(pos[1])))
	case pos[0] == "":
		return "", usageError(fmt.Errorf("%s: empty run id", c.name))
	case !retry.StorableText(pos[0]):
		return "", usageError(fmt.Errorf("%s: run id %s: want UTF-8 text without NUL", c.name, retry.QuoteID(pos[0])))
	}
	return pos[0], nil
}
