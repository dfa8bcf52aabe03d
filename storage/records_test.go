package storage

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

// statements counts the statements a store sends that hold all of words.
type statements struct {
	words []string
	n     atomic.Int64
}

func (h *statements) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	for _, w := range h.words {
		if !strings.Contains(e.Query, w) {
			return ctx
		}
	}
	h.n.Add(1)
	return ctx
}

func (*statements) AfterQuery(context.Context, *bun.QueryEvent) {}

// pgClaimed opens a PostgreSQL store with runs ids, each claimed.
func pgClaimed(t *testing.T, ids ...string) (*Store, map[string]retry.Claim) {
	t.Helper()
	s := openPG(t)
	claims := map[string]retry.Claim{}
	for _, id := range ids {
		if _, err := s.Create(t.Context(), retry.NewRun{ID: id, JourneyID: "j", StartNodeID: "a", MaxRetries: -1}, testNow); err != nil {
			t.Fatal(err)
		}
		r, err := s.ClaimRun(t.Context(), id, "w", testNow, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		claims[id] = retry.Claim{RunID: id, Token: r.ClaimToken}
	}
	return s, claims
}

// TestRecordsInOneStatement: on PostgreSQL a batch's completions,
// failures and snoozes are written together, and each caller gets its own
// outcome: the run as written, a lost claim or a missing run. A second
// record of a run in the batch is written after the first, in the same
// transaction; a batch of records alone needs none (TestRecordsAlone).
func TestRecordsInOneStatement(t *testing.T) {
	s, claims := pgClaimed(t, "r1", "r2", "r3", "r4")
	ctx := t.Context()
	later := testNow.Add(time.Millisecond)
	ops := []*writeOp{
		s.recordOp(completeRec(claims["r1"], later)),
		s.recordOp(failureRec(claims["r2"], later, 0)),
		s.recordOp(failureRec(claims["r2"], later, 0)), // the same run again
		s.recordOp(snoozeRec(claims["r3"], later)),
		s.recordOp(failureRec(retry.Claim{RunID: "r4", Token: "stale"}, later, time.Second)),
		s.recordOp(failureRec(retry.Claim{RunID: "r5", Token: "any"}, later, time.Second)),
	}
	for _, w := range ops {
		w.ctx, w.done = ctx, make(chan error, 1)
	}
	begins := &statements{words: []string{"BEGIN"}}
	s.db.AddQueryHook(begins)
	s.runBatch(ops)
	want := []error{nil, nil, nil, nil, retry.ErrLostClaim, retry.ErrNotFound}
	for i, w := range ops {
		if err := <-w.done; !errors.Is(err, want[i]) || (want[i] == nil) != (err == nil) {
			t.Errorf("op %d (%s): %v, want %v", i, w.key, err, want[i])
		}
	}
	// The second record of r2 runs after the batch's statement, in a
	// transaction with it.
	if n := begins.n.Load(); n != 1 {
		t.Errorf("%d transactions begun, want 1", n)
	}
	wantRuns := map[string]struct {
		status  retry.Status
		retries int
		held    bool
	}{
		"r1": {retry.StatusCompleted, 0, false},
		"r2": {retry.StatusInProgress, 2, true},
		"r3": {retry.StatusWaiting, 0, false},
		"r4": {retry.StatusInProgress, 0, true},
	}
	for id, w := range wantRuns {
		r, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != w.status || r.RetryCount != w.retries || (r.ClaimToken != "") != w.held {
			t.Errorf("%s: status %s, retries %d, token %q; want %s, %d, held %v", id, r.Status, r.RetryCount, r.ClaimToken, w.status, w.retries, w.held)
		}
		as, err := s.Attempts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if wantN := map[string]int{"r1": 1, "r2": 2, "r3": 1, "r4": 0}[id]; len(as) != wantN {
			t.Errorf("%s: %d attempts, want %d", id, len(as), wantN)
		}
	}
	if r := ops[0].rec.run; r.Status != retry.StatusCompleted || r.ID != "r1" {
		t.Errorf("r1's caller got %+v, want the run as written", r)
	}
	if r := ops[2].rec.run; r.RetryCount != 2 || r.ClaimToken != claims["r2"].Token {
		t.Errorf("r2's second caller got retries %d, token %q", r.RetryCount, r.ClaimToken)
	}
}

// TestRecordsAlone: a batch of records and nothing else is one statement
// with no transaction around it.
func TestRecordsAlone(t *testing.T) {
	s, claims := pgClaimed(t, "r1", "r2", "r3")
	ctx := t.Context()
	later := testNow.Add(time.Millisecond)
	ops := []*writeOp{
		s.recordOp(completeRec(claims["r1"], later)),
		s.recordOp(failureRec(claims["r2"], later, time.Second)),
		s.recordOp(snoozeRec(claims["r3"], later)),
	}
	for _, w := range ops {
		w.ctx, w.done = ctx, make(chan error, 1)
	}
	begins := &statements{words: []string{"BEGIN"}}
	s.db.AddQueryHook(begins)
	s.runBatch(ops)
	for i, w := range ops {
		if err := <-w.done; err != nil {
			t.Errorf("op %d: %v", i, err)
		}
	}
	if n := begins.n.Load(); n != 0 {
		t.Errorf("%d transactions begun, want none", n)
	}
	for id, want := range map[string]retry.Status{"r1": retry.StatusCompleted, "r2": retry.StatusRetrying, "r3": retry.StatusWaiting} {
		if r, err := s.Get(ctx, id); err != nil || r.Status != want {
			t.Errorf("%s: %s, %v; want %s", id, r.Status, err, want)
		}
	}
}

// TestRecordsStatementFails: a record whose statement fails, or whose
// function in the transaction fails, fails only its own caller: the batch
// is written again one write at a time.
func TestRecordsStatementFails(t *testing.T) {
	s, claims := pgClaimed(t, "r1", "r2", "r3")
	ctx := t.Context()
	later := testNow.Add(time.Millisecond)
	bad := completeRec(claims["r2"], later)
	notJSON := `{"ok":`
	bad.row.output = &notJSON // past the store's checks: the statement fails
	thenFails := failureRec(claims["r3"], later, time.Second)
	errThen := errors.New("then failed")
	thenFails.then = func(context.Context, *sql.Tx, retry.Run) error { return errThen }
	ops := []*writeOp{
		s.recordOp(failureRec(claims["r1"], later, time.Second)),
		s.recordOp(bad),
		s.recordOp(thenFails),
	}
	for _, w := range ops {
		w.ctx, w.done = ctx, make(chan error, 1)
	}
	s.runBatch(ops)
	if err := <-ops[0].done; err != nil {
		t.Errorf("r1: %v", err)
	}
	if err := <-ops[1].done; err == nil || !strings.Contains(err.Error(), "json") {
		t.Errorf("r2: %v, want invalid JSON", err)
	}
	if err := <-ops[2].done; !errors.Is(err, errThen) {
		t.Errorf("r3: %v, want %v", err, errThen)
	}
	if r, err := s.Get(ctx, "r1"); err != nil || r.Status != retry.StatusRetrying {
		t.Errorf("r1: %v, %v", r.Status, err)
	}
	for _, id := range []string{"r2", "r3"} {
		if as, err := s.Attempts(ctx, id); err != nil || len(as) != 0 {
			t.Errorf("%s: %d attempts, %v", id, len(as), err)
		}
	}
}

// TestMixedBatchesLockInIDOrder: two batches, each with a record of one
// run and another write of the other, in opposite orders. The records'
// statement locks every run of its batch, in id order, before the other
// write starts, so neither batch waits for the other in a cycle (without
// that, each would lock its record's run and wait for the other's).
func TestMixedBatchesLockInIDOrder(t *testing.T) {
	s, claims := pgClaimed(t, "a", "b")
	ctx := t.Context()
	later := testNow.Add(time.Millisecond)
	var others sync.WaitGroup // the other writes: each waits a while for the other
	others.Add(2)
	var mu sync.Mutex
	var stmtErrs []error
	other := func(id string) *writeOp {
		var once sync.Once // a replayed batch runs it again
		return &writeOp{ctx: ctx, key: id, done: make(chan error, 1), fn: func(ctx context.Context, tx queryer) error {
			once.Do(others.Done)
			wait := make(chan struct{})
			go func() { others.Wait(); close(wait) }()
			select {
			case <-wait:
			case <-time.After(500 * time.Millisecond):
			}
			_, err := tx.ExecContext(ctx, `UPDATE journey_runs SET updated_at = updated_at WHERE id = ?`, id)
			if err != nil {
				mu.Lock()
				stmtErrs = append(stmtErrs, err)
				mu.Unlock()
			}
			return err
		}}
	}
	rec := func(id string) *writeOp {
		w := s.recordOp(failureRec(claims[id], later, 0))
		w.ctx, w.done = ctx, make(chan error, 1)
		return w
	}
	runTogether(t, s, [][]*writeOp{{other("a"), rec("b")}, {rec("a"), other("b")}}, func() []error { return stmtErrs })
}

func completeRec(c retry.Claim, at time.Time) *record {
	rec, err := completion(c, retry.NodeSuccess{NodeID: "a", StartedAt: testNow, FinishedAt: at, Output: []byte(`{"ok":true}`)})
	if err != nil {
		panic(err)
	}
	return rec
}

func failureRec(c retry.Claim, at time.Time, delay time.Duration) *record {
	rec, _, err := failure(c, retry.FailureRecord{NodeID: "a", StartedAt: testNow, FinishedAt: at,
		Class: retry.ClassNetworkBlip, Message: "boom", Decision: retry.Decision{Retry: true, Delay: delay}})
	if err != nil {
		panic(err)
	}
	return rec
}

func snoozeRec(c retry.Claim, at time.Time) *record {
	rec, err := snoozing(c, retry.SnoozeRecord{NodeID: "a", StartedAt: testNow, FinishedAt: at, Delay: time.Minute})
	if err != nil {
		panic(err)
	}
	return rec
}

// TestClaimsInOneStatement: by-id claims on PostgreSQL are claimed
// together, and each caller gets its own answer: the run under a token
// of its own, or why not (a second claim of the same run, a run another
// worker holds, a missing run).
func TestClaimsInOneStatement(t *testing.T) {
	s := openPG(t)
	ctx := t.Context()
	for _, nr := range []retry.NewRun{{ID: "r1"}, {ID: "r2"}, {ID: "held", Worker: "other", Lease: time.Hour}} {
		nr.JourneyID, nr.StartNodeID = "j", "a"
		if _, err := s.Create(ctx, nr, testNow); err != nil {
			t.Fatal(err)
		}
	}
	req := func(id string) *writeOp {
		return &writeOp{ctx: ctx, key: id, done: make(chan error, 1), claim: &claimReq{id: id, token: newToken() + "." + id,
			worker: "w", now: ms(testNow), until: ms(testNow.Add(time.Minute)), updated: datetime(testNow)}}
	}
	batch := []*writeOp{req("r1"), req("r2"), req("r1"), req("held"), req("missing")}
	s.runClaims(batch)
	want := []error{nil, nil, retry.ErrNotClaimable, retry.ErrNotClaimable, retry.ErrNotFound}
	for i, w := range batch {
		if err := <-w.done; !errors.Is(err, want[i]) || (want[i] == nil) != (err == nil) {
			t.Errorf("claim %d (%s): %v, want %v", i, w.key, err, want[i])
		}
	}
	for _, w := range batch[:2] {
		r, err := s.Get(ctx, w.key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != retry.StatusInProgress || r.ClaimToken != w.claim.token || w.claim.run.ClaimToken != w.claim.token {
			t.Errorf("%s: %s under %q (caller told %q), want in progress under %q", w.key, r.Status, r.ClaimToken, w.claim.run.ClaimToken, w.claim.token)
		}
	}
}

// TestCreatesInOneStatement: on PostgreSQL a batch's new runs are
// inserted together, in the statement of its records (one commit) and
// with no transaction around it, and an id already taken, or taken
// earlier in the batch, fails only its own caller.
func TestCreatesInOneStatement(t *testing.T) {
	s, claims := pgClaimed(t, "taken", "x")
	ctx := t.Context()
	create := func(id string) *writeOp {
		_, args, err := newRunRow(retry.NewRun{ID: id, JourneyID: "j", StartNodeID: "a"}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return &writeOp{ctx: ctx, key: id, done: make(chan error, 1), row: &runRow{id, args},
			fn: func(context.Context, queryer) error { return duplicate(id) }} // what a second create of id finds
	}
	rec := s.recordOp(failureRec(claims["x"], testNow.Add(time.Millisecond), time.Second))
	rec.ctx, rec.done = ctx, make(chan error, 1)
	batch := []*writeOp{create("n1"), create("n2"), create("taken"), rec}
	begins := &statements{words: []string{"BEGIN"}}
	s.db.AddQueryHook(begins)
	s.runBatch(batch)
	want := []error{nil, nil, retry.ErrDuplicateRun, nil}
	for i, w := range batch {
		if err := <-w.done; !errors.Is(err, want[i]) || (want[i] == nil) != (err == nil) {
			t.Errorf("op %d (%s): %v, want %v", i, w.key, err, want[i])
		}
	}
	if n := begins.n.Load(); n != 0 {
		t.Errorf("%d transactions begun, want none", n)
	}
	for _, id := range []string{"n1", "n2"} {
		if r, err := s.Get(ctx, id); err != nil || r.Status != retry.StatusInProgress {
			t.Errorf("%s: %s, %v", id, r.Status, err)
		}
	}
	if r, err := s.Get(ctx, "x"); err != nil || r.Status != retry.StatusRetrying {
		t.Errorf("x: %s, %v; want its failure recorded", r.Status, err)
	}
	var xacts int
	if err := s.db.QueryRowContext(ctx, `SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM journey_runs WHERE id IN ('n1', 'n2', 'x')
	UNION ALL SELECT xmin FROM journey_run_attempts WHERE run_id = 'x') w`).Scan(&xacts); err != nil {
		t.Fatal(err)
	}
	if xacts != 1 {
		t.Errorf("the batch's rows were written by %d transactions, want 1", xacts)
	}
	// The same id twice in one batch: the second finds it taken.
	twice := []*writeOp{create("n3"), create("n3")}
	s.runBatch(twice)
	if err := <-twice[0].done; err != nil {
		t.Errorf("first n3: %v", err)
	}
	if err := <-twice[1].done; !errors.Is(err, retry.ErrDuplicateRun) {
		t.Errorf("second n3: %v, want %v", err, retry.ErrDuplicateRun)
	}
}

// TestWritersPlanByIndex: the connections the writers and claimers use
// plan without sequential scans and hash joins and keep to generic plans
// (see openPostgres), and reads keep the server's defaults.
func TestWritersPlanByIndex(t *testing.T) {
	s := openPG(t)
	for _, c := range []struct {
		db   *bun.DB
		want map[string]string
	}{
		{s.db, map[string]string{"enable_seqscan": "off", "enable_hashjoin": "off", "enable_mergejoin": "off", "plan_cache_mode": "force_generic_plan"}},
		{s.rdb, map[string]string{"enable_seqscan": "on", "enable_hashjoin": "on", "enable_mergejoin": "on", "plan_cache_mode": "auto"}},
	} {
		for p, want := range c.want {
			var got string
			if err := c.db.QueryRowContext(t.Context(), "SHOW "+p).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s on the %s pool: %s, want %s", p, map[bool]string{true: "write", false: "read"}[c.db == s.db], got, want)
			}
		}
	}
}
