package storage

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/journeyretry/journeyretry/retry"
)

// record is a write under a claim that appends an attempt and updates the
// run in one step: a node completion, a failure or a snooze. On SQLite it
// is the statements recordUnder runs (update and args); on PostgreSQL it is
// a row of recordsSQL (row), and the writer writes every record of a batch
// with one execution of that prepared statement: a round trip and a plan
// for the whole batch, where each record would otherwise cost two
// statements, each sent, parsed and planned.
type record struct {
	c      retry.Claim
	a      attempt
	update string // SQLite: UPDATE journey_runs SET ..., without its WHERE clause
	args   []any
	row    recordRow       // PostgreSQL
	count  retry.BudgetUse // the budget scope the attempt counts in, if any
	then   retry.TxFunc    // run in the record's transaction, if not nil
	run    retry.Run       // as written, once the write succeeded
}

// recordRow is what a record writes, in the terms of recordsSQL.
type recordRow struct {
	kind      string  // "c" completion, "f" failure, "s" snooze
	mode      string  // completion: the status after; failure: "failed", "exhausted" or "retry"
	nextNode  *string // completion: the next node (nil: none)
	wake      *int64  // a wait's or snooze's wake time
	output    *string // completion: the node's output, JSON
	delay     int64   // failure: the retry delay, ms
	next      int64   // failure: when a retry is due, ms
	message   string  // failure: the error
	class     string
	nodeStart *int64 // when the node's first attempt started, ms
}

// writeRecord writes rec under its claim, then counts the attempt in
// rec.count's budget scope, if it names one, and runs rec.then, if not nil,
// in the same transaction.
func (s *Store) writeRecord(ctx context.Context, op string, rec *record) (retry.Run, error) {
	err := s.submit(ctx, op, s.recordOp(rec))
	return rec.run, err
}

// recordOp is the write of writeRecord. On PostgreSQL the batch writes
// its records together (see runTx); fn writes one alone.
func (s *Store) recordOp(rec *record) *writeOp {
	w := &writeOp{key: rec.c.RunID}
	w.fn = func(ctx context.Context, tx queryer) error {
		if s.pg {
			errs := make([]error, 1)
			if err := s.execRecords(ctx, tx, []*writeOp{w}, []bool{true}, []string{w.key}, errs, false); err != nil {
				return err
			}
			return rec.after(ctx, tx, errs[0])
		}
		r, err := s.recordUnder(ctx, tx, rec.c, rec.a, rec.update, rec.args...)
		rec.run = r
		return rec.after(ctx, tx, err)
	}
	if s.pg {
		w.rec = rec
	}
	return w
}

// after completes rec's write in its transaction, once its statements
// returned err: it counts the attempt and runs rec.then.
func (rec *record) after(ctx context.Context, tx queryer, err error) error {
	if err == nil {
		budgetsOf(ctx).countAttempt(rec.count, rec.a.finished)
	}
	return joinTx(ctx, tx, rec.run, err, rec.then)
}

// alone reports whether rec needs nothing but its statement: no
// transaction around it.
func (rec *record) alone() bool { return rec.then == nil && rec.count.Scope == "" }

// recordsSQL writes records (PostgreSQL), one row of its parameter arrays
// each. It first locks every run of the batch ($28), in id order, and
// reads them as locked; then each record whose claim holds (token and
// live lease) updates its run and appends its attempt from that read. It
// returns each run as written with the record's index. A run appears once
// at most: PostgreSQL updates a row once per statement.
//
// The statuses are those of failedStatus, the completion's and the
// snooze's: a failure's, over the run as locked, is failed (mode failed,
// or retries disabled), failed_max_retries (mode exhausted, or the limit
// reached) or retrying; a retry with no delay keeps the claim, in
// progress, due when its lease expires, as does a completion that moves
// on at once.
//
// Every scan of journey_runs states its ids (id = ANY, or a lookup per
// id in a join), and the writers' connections plan without sequential
// scans and hash joins (see openPostgres): the plan cached for the
// connection may be made while the table is empty, and must still look
// its rows up by index once it has grown. The UPDATE finds each row by
// the id its join brings (r.id = x.id) and names no array beside it: an
// index scan on both would deconstruct and sort the whole array again at
// each lookup, n² log n comparisons of ids for a batch of n.
var recordsSQL = `WITH v AS (SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::text[],
	$6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[], $12::bigint[], $13::text[],
	$14::text[], $15::bigint[], $16::text[], $17::bigint[], $18::text[], $19::text[], $20::text[], $21::bool[],
	$22::bigint[], $23::text[], $24::text[], $25::bool[], $26::bool[], $27::text[])
	AS v(k, id, token, now, kind, node, mode, next_node, wake, output, delay, next, message, class, node_start,
	updated, a_started, a_outcome, a_class, a_message, a_retry, a_delay, a_strategy, a_rule, a_exhausted,
	a_shadow, a_act)),
o AS MATERIALIZED (SELECT id, attempt_count, retry_count, current_node_id, claimed_by, claim_token,
	lease_expires_at, retry_enabled, max_retries FROM journey_runs WHERE id = ANY($28::text[]) ORDER BY id FOR UPDATE),
x AS MATERIALIZED (SELECT v.*, o.attempt_count AS o_attempts, o.retry_count AS o_retries,
	o.current_node_id AS o_node, o.claimed_by AS o_worker,
	CASE v.kind WHEN 'c' THEN v.mode WHEN 's' THEN 'waiting'
		ELSE CASE WHEN v.mode = 'failed' OR o.retry_enabled = false THEN 'failed'
		WHEN v.mode = 'exhausted' OR o.max_retries >= 0 AND o.retry_count >= o.max_retries THEN 'failed_max_retries'
		ELSE 'retrying' END END AS st
	FROM v JOIN o ON o.id = v.id AND o.claim_token = v.token AND o.lease_expires_at > v.now),
u AS (UPDATE journey_runs r SET
	status = CASE WHEN x.st = 'retrying' AND x.delay = 0 THEN 'in_progress' ELSE x.st END,
	context = CASE WHEN x.kind = 'c' THEN jsonb_set(COALESCE(NULLIF(r.context, ''), '{}')::jsonb, '{outputs}',
		COALESCE(COALESCE(NULLIF(r.context, ''), '{}')::jsonb -> 'outputs', '{}'::jsonb)
		|| jsonb_build_object(x.node, x.output::jsonb))::text ELSE r.context END,
	current_node_id = CASE WHEN x.kind = 'c' THEN x.next_node ELSE r.current_node_id END,
	retry_count = CASE x.kind WHEN 'c' THEN 0 WHEN 'f' THEN r.retry_count + CASE WHEN x.st = 'retrying' THEN 1 ELSE 0 END
		ELSE r.retry_count END,
	last_delay_ms = CASE WHEN x.kind = 'c' THEN 0 WHEN x.st = 'retrying' THEN x.delay ELSE r.last_delay_ms END,
	next_retry_at = CASE WHEN x.st = 'retrying' THEN x.next ELSE r.next_retry_at END,
	snooze_count = CASE x.kind WHEN 'c' THEN 0 WHEN 's' THEN COALESCE(r.snooze_count, 0) + 1 ELSE r.snooze_count END,
	wake_at = CASE WHEN x.st = 'waiting' THEN x.wake ELSE r.wake_at END,
	due_at = CASE WHEN x.st = 'waiting' THEN x.wake WHEN x.st = 'in_progress' THEN r.due_at
		WHEN x.st = 'retrying' THEN CASE WHEN x.delay = 0 THEN r.lease_expires_at ELSE x.next END END,
	last_error_message = CASE WHEN x.kind = 'f' THEN x.message ELSE r.last_error_message END,
	last_error_class = CASE WHEN x.kind = 'f' THEN x.class ELSE r.last_error_class END,
	last_error_timestamp = CASE WHEN x.kind = 'f' THEN x.now ELSE r.last_error_timestamp END,
	node_started_at = CASE WHEN x.kind = 'c' THEN NULL ELSE COALESCE(r.node_started_at, x.node_start) END,
	attempt_count = r.attempt_count + 1, updated_at = x.updated,
	claim_token = CASE WHEN x.st = 'in_progress' OR x.st = 'retrying' AND x.delay = 0 THEN r.claim_token END,
	claimed_by = CASE WHEN x.st = 'in_progress' OR x.st = 'retrying' AND x.delay = 0 THEN r.claimed_by END,
	lease_expires_at = CASE WHEN x.st = 'in_progress' OR x.st = 'retrying' AND x.delay = 0 THEN r.lease_expires_at END
	FROM x WHERE r.id = x.id
	RETURNING ` + recordsReturning + `, x.k),
i AS (INSERT INTO journey_run_attempts (` + attemptColumns + `)
	SELECT x.id, x.o_attempts + 1, COALESCE(NULLIF(x.node, ''), x.o_node, ''), x.o_retries + 1, x.o_worker, x.token,
	x.a_started, x.now, x.a_outcome, x.a_class, x.a_message, x.a_retry, x.a_delay, x.a_strategy, x.a_rule,
	x.a_exhausted, x.a_shadow, x.st, x.a_act
	FROM x JOIN u ON u.id = x.id)
SELECT * FROM u`

// recordsCreatesSQL is recordsSQL and createsSQL as one statement, for a
// batch of both: one commit, and so one flush of the server's log, where
// the two would take one each. Its new runs come back after the records,
// as whole rows (the insert's RETURNING names runColumns), their k -1;
// createsInsert's parameters follow recordsSQL's 28.
var recordsCreatesSQL = strings.TrimSuffix(recordsSQL, "SELECT * FROM u") + `,
n AS (` + regexp.MustCompile(`\$[0-9]+`).ReplaceAllStringFunc(createsInsert, func(p string) string {
	n, _ := strconv.Atoi(p[1:])
	return "$" + strconv.Itoa(n+28)
}) + ` RETURNING ` + runColumns + `)
SELECT * FROM u UNION ALL SELECT *, -1 FROM n`

// recordsReturning is runColumns of the updated row r.
var recordsReturning = func() string {
	cols := strings.Split(runColumns, ",")
	for i, c := range cols {
		c = strings.TrimSpace(c)
		if rest, ok := strings.CutPrefix(c, "CAST("); ok {
			cols[i] = "CAST(r." + rest
		} else {
			cols[i] = "r." + c
		}
	}
	return strings.Join(cols, ", ")
}()

// execRecords writes the records among the ops that pick marks with one execution
// of recordsSQL on q, locking the runs in lock (a batch passes all its runs,
// so that its other writes find theirs locked already and the batch takes
// its row locks in id order, as every batch does), and sets each picked
// op's outcome in errs: nil, with the run as written in its record, or a
// clean error for a lost claim or a missing run. With creates, the same
// execution inserts the picked ops' new runs, as execCreates would
// (recordsCreatesSQL). It returns the statement's error, which wrote
// nothing.
func (s *Store) execRecords(ctx context.Context, q queryer, ops []*writeOp, pick []bool, lock []string, errs []error, creates bool) error {
	cols := make(pgColumns, 27)
	for i, w := range ops {
		if !pick[i] || w.rec == nil {
			continue
		}
		r, row := w.rec, &w.rec.row
		act, err := r.a.actValue()
		if err != nil {
			return err
		}
		vals := r.a.values() // started, finished, outcome, class, message, retry, delay, strategy, rule, exhausted, shadow
		cols.add(i, r.c.RunID, r.c.Token, ms(r.a.finished), row.kind, r.a.nodeID, row.mode, row.nextNode,
			row.wake, row.output, row.delay, row.next, row.message, row.class, row.nodeStart, datetime(r.a.finished),
			vals[0], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7], vals[8], vals[9], vals[10], act)
	}
	var locks pgArray
	for _, id := range lock {
		locks.add(id)
	}
	args, query := append(cols.args(), locks.String()), recordsSQL
	if creates {
		args, query = append(args, createArgs(ops, pick)...), recordsCreatesSQL
	}
	rows, err := s.preparedOn(q).QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	wrote := make([]bool, len(ops))
	inserted := map[string]bool{}
	for rows.Next() {
		var i int
		r, err := scanRun(rows, &i)
		if err != nil {
			_ = rows.Close()
			return err
		}
		if i < 0 {
			inserted[r.ID] = true
			continue
		}
		ops[i].rec.run, wrote[i] = r, true
	}
	if err := cmpErr(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if creates {
		createdOrDuplicate(ops, pick, inserted, errs)
	}
	for i, w := range ops {
		if pick[i] && w.rec != nil && !wrote[i] {
			if errs[i] = lostOrMissing(ctx, q, w.rec.c); !clean(errs[i]) {
				return errs[i]
			}
		}
	}
	return nil
}

// pgArray builds a PostgreSQL array literal, which a statement casts to
// the element type it wants: text, numbers, booleans, and NULL for nil.
type pgArray struct{ b strings.Builder }

func (a *pgArray) add(v any) {
	if a.b.Len() == 0 {
		a.b.WriteByte('{')
	} else {
		a.b.WriteByte(',')
	}
	switch v := v.(type) {
	case *string:
		if v != nil {
			a.text(*v)
			return
		}
	case *int64:
		if v != nil {
			a.b.WriteString(strconv.FormatInt(*v, 10))
			return
		}
	case string:
		a.text(v)
		return
	case int:
		a.b.WriteString(strconv.Itoa(v))
		return
	case int64:
		a.b.WriteString(strconv.FormatInt(v, 10))
		return
	case bool:
		a.b.WriteString(strconv.FormatBool(v))
		return
	case nil:
	default:
		panic(fmt.Sprintf("pgArray: element of type %T", v))
	}
	a.b.WriteString("NULL")
}

// text adds a quoted element.
func (a *pgArray) text(v string) {
	a.b.WriteByte('"')
	for _, r := range v {
		if r == '"' || r == '\\' {
			a.b.WriteByte('\\')
		}
		a.b.WriteRune(r)
	}
	a.b.WriteByte('"')
}

// pgColumns are the parameter arrays of a statement over unnest, a
// column each: add appends a row.
type pgColumns []pgArray

func (c pgColumns) add(row ...any) {
	for i, v := range row {
		c[i].add(v)
	}
}

// args are the columns' literals, the statement's arguments, with room
// for one more (recordsSQL's lock ids) without a copy.
func (c pgColumns) args() []any {
	args := make([]any, len(c), len(c)+1)
	for i := range c {
		args[i] = c[i].String()
	}
	return args
}

// String is the literal; an empty array is {}.
func (a *pgArray) String() string {
	if a.b.Len() == 0 {
		return "{}"
	}
	return a.b.String() + "}"
}

// prepared returns query, its placeholders numbered, prepared on the
// store's pool (PostgreSQL): the server parses and plans it once per
// connection instead of once per execution.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.DB.PrepareContext(ctx, numbered(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// pgPrepared runs each query through the store's prepared statement for
// it (PostgreSQL; see prepared): the server parses and plans it once per
// connection instead of on every call. With tx, the statements run in
// that transaction.
type pgPrepared struct {
	s  *Store
	tx *sql.Tx
}

// preparedOn is pgPrepared on q: the pool, or the writer's transaction.
func (s *Store) preparedOn(q queryer) pgPrepared {
	if tx, ok := q.(bun.Tx); ok {
		return pgPrepared{s, tx.Tx}
	}
	return pgPrepared{s: s}
}

func (p pgPrepared) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := p.s.prepared(ctx, query)
	if err == nil && p.tx != nil {
		st = p.tx.StmtContext(ctx, st)
	}
	return st, err
}

func (p pgPrepared) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (p pgPrepared) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// numbered replaces query's ? placeholders, outside quoted text, by
// PostgreSQL's $1, $2, ...
func numbered(query string) string {
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range query {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
