package main

import (
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
)

// legacyRow is a row of the legacy journey_runs table.
type legacyRow struct {
	id, journey, status string
	node                *string // current_node_id; nil is NULL
}

func strp(s string) *string { return &s }

// TestLegacyCutover: a legacy database built in plain SQL (runs of the
// demo's journey in flight at several nodes, one with no current node, one
// at a node the journey lacks, one of a journey no worker registers, and
// finished rows in every legacy status; on SQLite also current nodes
// holding NUL or invalid UTF-8) goes through migrate, migrate
// --adopt-legacy and a worker process: each adopted run of the journey
// pins the journey's version, resumes at its current node and finishes
// through its handlers, each malformed run ends once with its class, the
// reason in its history and no claim, and the finished rows are
// untouched.
func TestLegacyCutover(t *testing.T) {
	t.Parallel()
	inFlight := []legacyRow{
		{"legacy-register", journeyID, "in_progress", strp(nodeRegister)},
		{"legacy-sms", journeyID, "in_progress", strp(nodeSendReminder)},
		{"legacy-wait", journeyID, "in_progress", strp(nodeWait)},
		{"legacy-clinic", journeyID, "in_progress", strp(nodeCallClinic)},
		{"legacy-record", journeyID, "in_progress", strp(nodeConfirmed)},
	}
	type malformedRow struct {
		row   legacyRow
		class retry.Class
	}
	everywhere := map[string]malformedRow{
		"legacy-no-node":      {legacyRow{"legacy-no-node", journeyID, "in_progress", nil}, retry.ClassMalformedNode},
		"legacy-unknown-node": {legacyRow{"legacy-unknown-node", journeyID, "in_progress", strp("gone")}, retry.ClassMalformedNode},
		"legacy-onboarding":   {legacyRow{"legacy-onboarding", "onboarding", "in_progress", strp("send_email")}, retry.ClassMissingJourney},
	}
	finished := []legacyRow{
		{"legacy-completed", journeyID, "completed", nil},
		{"legacy-failed", journeyID, "failed", strp(nodeCallClinic)},
	}
	backends(t, func(t *testing.T, dir, store string) {
		malformed := maps.Clone(everywhere)
		rows := slices.Concat(inFlight, finished)
		for _, m := range malformed {
			rows = append(rows, m.row)
		}
		dt := "TEXT"
		p := sqlitePath(store)
		if p != "" {
			dt = "DATETIME"
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		db := openDB(t, store).DB()
		exec := db.ExecContext
		wantMalformed := 1
		if p != "" {
			// SQLite stores what PostgreSQL's text refuses. bun would
			// inline the arguments; the driver binds them.
			exec = db.DB.ExecContext
			for _, l := range []legacyRow{
				{"legacy-nul-node", journeyID, "in_progress", strp(nodeSendReminder + "\x00")},
				{"legacy-bad-utf8-node", journeyID, "in_progress", strp("\xff" + nodeWait)},
			} {
				rows = append(rows, l)
				malformed[l.id] = malformedRow{l, retry.ClassMalformedNode}
				wantMalformed++
			}
		}
		if _, err := exec(t.Context(), `CREATE TABLE journey_runs (id TEXT PRIMARY KEY, journey_id TEXT NOT NULL,
	status TEXT NOT NULL, current_node_id TEXT, created_at `+dt+` DEFAULT CURRENT_TIMESTAMP,
	updated_at `+dt+` DEFAULT CURRENT_TIMESTAMP)`); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if _, err := exec(t.Context(), `INSERT INTO journey_runs (id, journey_id, status, current_node_id, created_at, updated_at)
VALUES (?, ?, ?, ?, '2024-05-01 10:00:00', '2024-05-01 10:05:00')`, r.id, r.journey, r.status, r.node); err != nil {
				t.Fatal(err)
			}
		}
		legacyColumns := func() map[string]string {
			out := map[string]string{}
			rs, err := db.QueryContext(t.Context(), `SELECT id, journey_id, status, COALESCE(current_node_id, '-'), created_at, updated_at FROM journey_runs`)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			for rs.Next() {
				var id, j, st, n, c, u string
				if err := rs.Scan(&id, &j, &st, &n, &c, &u); err != nil {
					t.Fatal(err)
				}
				out[id] = fmt.Sprint(j, st, n, c, u)
			}
			return out
		}
		before := legacyColumns()

		if r := runDemo(t, dir, nil, "migrate", "--store", store); r.code != 0 {
			t.Fatalf("migrate: status %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r := runDemo(t, dir, nil, "migrate", "--adopt-legacy", "--store", store)
		for _, want := range []string{
			fmt.Sprintf("adopted %d legacy runs left in flight: workers resume them under %s version %d", len(inFlight)+1, journeyID, journeyVersion),
			fmt.Sprintf("ended %d legacy runs with no usable current node: failed, class malformed_node", wantMalformed),
			"ended 1 legacy runs of journeys the demo does not run: failed, class missing_journey",
		} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Fatalf("migrate --adopt-legacy: status %d, want %q\n%s%s", r.code, want, r.stdout, r.stderr)
			}
		}
		w := startWorker(t, dir, store)
		waitFor(t, store, 60*time.Second, func(c map[retry.Status]int) bool { return report.Unfinished(c) == 0 })
		w.stop(t)
		var recorded int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM journey_run_attempts WHERE worker = ?`, w.id()).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("worker stopped gracefully: %d attempts,", recorded); recorded == 0 || !strings.Contains(w.out.String(), want) {
			t.Errorf("worker summary, want %q:\n%s", want, w.out.String())
		}

		after := legacyColumns()
		for _, f := range finished {
			if after[f.id] != before[f.id] {
				t.Errorf("finished legacy row %s changed: %s, was %s", f.id, after[f.id], before[f.id])
			}
		}
		s := openDB(t, store)
		for _, f := range finished { // pinned, so that a replay runs them
			if as, err := s.Attempts(t.Context(), f.id); err != nil || len(as) != 0 {
				t.Errorf("finished legacy row %s: attempts %v, %v; want none", f.id, as, err)
			}
			if r, err := s.Get(t.Context(), f.id); err != nil || r.JourneyVersion != journeyVersion {
				t.Errorf("finished legacy row %s: version %d, %v; want %d", f.id, r.JourneyVersion, err, journeyVersion)
			}
		}
		for _, l := range inFlight {
			run, err := s.Get(t.Context(), l.id)
			if err != nil {
				t.Fatal(err)
			}
			as, err := s.Attempts(t.Context(), l.id)
			if err != nil || len(as) == 0 {
				t.Fatalf("%s: attempts %v, %v", l.id, as, err)
			}
			if !run.Status.Terminal() || run.ClaimToken != "" || as[0].NodeID != *l.node || run.JourneyVersion != journeyVersion {
				t.Errorf("%s: status %s, claim %q, first attempt at %q, version %d; want finished, unclaimed, resumed at %s, version %d",
					l.id, run.Status, run.ClaimToken, as[0].NodeID, run.JourneyVersion, *l.node, journeyVersion)
			}
			for _, a := range as {
				if a.ErrorClass == retry.ClassMissingJourney || a.ErrorClass == retry.ClassMalformedNode {
					t.Errorf("%s: attempt %d at %s: class %s, %s", l.id, a.Number, a.NodeID, a.ErrorClass, a.ErrorMessage)
				}
			}
			if l.id == "legacy-register" { // no patient record: the handler refuses it
				if run.Status != retry.StatusFailed || run.LastErrorClass != retry.ClassValidation {
					t.Errorf("%s: %s, class %s; want failed, validation", l.id, run.Status, run.LastErrorClass)
				}
			}
		}
		for id, m := range malformed {
			run, err := s.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			as, err := s.Attempts(t.Context(), id)
			if err != nil || len(as) != 1 || as[0].ErrorClass != m.class || as[0].ErrorMessage == "" {
				t.Errorf("%s: attempts %+v, %v; want one, class %s, with its reason", id, as, err, m.class)
			}
			if run.Status != retry.StatusFailed || run.LastErrorClass != m.class || run.ClaimToken != "" || run.AttemptCount != 1 {
				t.Errorf("%s: %s, class %s, claim %q, %d attempts; want failed once, class %s, unclaimed", id, run.Status, run.LastErrorClass, run.ClaimToken, run.AttemptCount, m.class)
			}
		}
		var claimed int
		if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM journey_runs WHERE claim_token IS NOT NULL`).Scan(&claimed); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if claimed != 0 {
			t.Errorf("%d runs still claimed after the worker stopped", claimed)
		}
	})
}
