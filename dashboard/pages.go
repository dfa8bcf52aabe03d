package dashboard

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// topErrors is how many (class, message) pairs the overview lists.
const topErrors = 10

type overviewData struct {
	Runs       int
	ByStatus   []statusCount
	Window     string
	Windows    []string
	TopErrors  []retry.ErrorCount
	TopClasses []statusCount
	RetryHist  []bar
	Activity   *retry.Activity
	Lateness   []bar
}

type statusCount struct {
	Status string
	Count  int
}

func (s *server) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	win := windows[1]
	if name := r.URL.Query().Get("window"); name != "" {
		i := slices.IndexFunc(windows[:], func(x struct {
			Name   string
			Span   time.Duration
			Bucket time.Duration
		}) bool {
			return x.Name == name
		})
		if i < 0 {
			http.Error(w, fmt.Sprintf("window %q: want 15m, 1h, 24h or 7d", name), http.StatusBadRequest)
			return
		}
		win = windows[i]
	}
	d := overviewData{Window: win.Name}
	for _, x := range windows {
		d.Windows = append(d.Windows, x.Name)
	}
	counts, err := s.cfg.Store.CountByStatus(ctx)
	if err != nil {
		fail(w, fmt.Errorf("count runs: %w", err))
		return
	}
	for _, st := range retry.Statuses {
		d.ByStatus = append(d.ByStatus, statusCount{string(st), counts[st]})
		d.Runs += counts[st]
	}
	hist, err := s.cfg.Store.RetryHistogram(ctx)
	if err != nil {
		fail(w, fmt.Errorf("retry histogram: %w", err))
		return
	}
	keys := make([]int, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		d.RetryHist = append(d.RetryHist, bar{Label: fmt.Sprint(k), Value: hist[k]})
	}
	now := s.cfg.Now()
	since := now.Add(-win.Span).Truncate(win.Bucket)
	until := now.Truncate(win.Bucket).Add(win.Bucket)
	// The error patterns come with the activity, bounded as it is, from a
	// store that reports it; from the whole window otherwise.
	if ai, ok := s.cfg.Store.(retry.ActivityInspector); ok {
		act, err := ai.Activity(ctx, retry.ActivityQuery{Since: since, Until: until, Bucket: win.Bucket, TopErrors: topErrors})
		if err != nil {
			fail(w, fmt.Errorf("activity: %w", err))
			return
		}
		d.Activity = &act
		d.Lateness = latenessBars(act.RetryLateness)
		d.TopErrors = act.TopErrors
	} else if d.TopErrors, err = s.cfg.Store.TopErrors(ctx, since, until, topErrors); err != nil {
		fail(w, fmt.Errorf("top errors: %w", err))
		return
	}
	byClass := map[string]int{}
	for _, e := range d.TopErrors {
		byClass[string(e.Class)] += e.Count
	}
	for c, n := range byClass {
		d.TopClasses = append(d.TopClasses, statusCount{c, n})
	}
	sort.Slice(d.TopClasses, func(i, j int) bool {
		a, b := d.TopClasses[i], d.TopClasses[j]
		return a.Count > b.Count || a.Count == b.Count && a.Status < b.Status
	})
	s.render(w, "overview.html", "Overview", d)
}

// latenessEdges are the upper bounds of the lateness histogram's bars.
var latenessEdges = []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	500 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second, time.Minute}

func latenessBars(samples []time.Duration) []bar {
	bars := make([]bar, len(latenessEdges)+1)
	for i, e := range latenessEdges {
		bars[i].Label = "≤" + e.String()
	}
	bars[len(latenessEdges)].Label = ">" + latenessEdges[len(latenessEdges)-1].String()
	for _, d := range samples {
		i, _ := slices.BinarySearch(latenessEdges, d)
		bars[i].Value++
	}
	return bars
}

// deadStatuses are the statuses the dead-letter list shows.
var deadStatuses = []retry.Status{retry.StatusFailedMaxRetries, retry.StatusFailed}

type deadData struct {
	Status   string
	Statuses []statusCount
	Journey  string
	Class    string
	After    string
	Runs     []retry.Run
	Next     string // the next page's after, "" on the last page
	PageSize int
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	q := r.URL.Query()
	st := retry.Status(q.Get("status"))
	if st == "" {
		st = retry.StatusFailedMaxRetries
	}
	if !slices.Contains(deadStatuses, st) {
		http.Error(w, fmt.Sprintf("status %q: want failed_max_retries or failed", st), http.StatusBadRequest)
		return
	}
	d := deadData{Status: string(st), Journey: q.Get("journey"), Class: q.Get("class"), After: q.Get("after"), PageSize: s.cfg.PageSize}
	counts, err := s.cfg.Store.CountByStatus(ctx)
	if err != nil {
		fail(w, fmt.Errorf("count runs: %w", err))
		return
	}
	for _, x := range deadStatuses {
		d.Statuses = append(d.Statuses, statusCount{string(x), counts[x]})
	}
	// One more than a page says whether there is a next one.
	runs, err := s.cfg.Store.ListRuns(ctx, retry.RunFilter{Status: st, AfterID: d.After, Limit: s.cfg.PageSize + 1,
		JourneyID: d.Journey, ErrorClass: retry.Class(d.Class)})
	if err != nil {
		fail(w, fmt.Errorf("list runs: %w", err))
		return
	}
	if len(runs) > s.cfg.PageSize {
		runs = runs[:s.cfg.PageSize]
		d.Next = runs[len(runs)-1].ID
	}
	d.Runs = runs
	s.render(w, "dead.html", "Dead letters", d)
}

type runData struct {
	Run        retry.Run
	Attempts   []retry.Attempt
	Timeline   timeline
	Replayable bool
}

func (s *server) run(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	run, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		fail(w, fmt.Errorf("run %s: %w", id, err))
		return
	}
	atts, err := s.cfg.Store.Attempts(ctx, id)
	if err != nil {
		fail(w, fmt.Errorf("attempts of %s: %w", id, err))
		return
	}
	d := runData{Run: run, Attempts: atts, Timeline: newTimeline(atts),
		Replayable: s.cfg.Replay && run.Status.Replayable()}
	s.render(w, "run.html", "Run "+id, d)
}
