// Package dashboard serves a read-mostly web dashboard over a run store:
// runs by status, attempts and retries over time, error patterns, the
// retry-count histogram, retry wake-up lateness, the dead-letter list with
// filters and paging, and each run's attempt timeline. Charts are SVG
// rendered by the server; every asset is embedded (nothing comes from a
// CDN), and a small embedded script refreshes the page's live part.
//
// Every page reads bounded queries: counts by status, a page of runs in
// (status, id) order, one run's attempts, and the store's optional
// [retry.ActivityInspector], which bounds what it reads, the error
// patterns included (without it, they are counted over the whole window).
//
// Replay is off unless [Config.Replay] is set; the replay action is a POST
// that [http.CrossOriginProtection] refuses when it comes from another
// origin.
package dashboard

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

//go:embed assets
var assets embed.FS

// Defaults of [Config].
const (
	PageSizeDefault = 50
	RefreshDefault  = 5 * time.Second
	// queryTimeout bounds the store reads of one page.
	queryTimeout = 10 * time.Second
)

// Store is what the dashboard reads: the Inspector, and a run with its
// attempts. The storage package's Store is one.
type Store interface {
	retry.Inspector
	Get(ctx context.Context, id string) (retry.Run, error)
	Attempts(ctx context.Context, runID string) ([]retry.Attempt, error)
}

// Config configures [New]. The zero value of every field but Store means
// its default.
type Config struct {
	// Store is read by every page; required.
	Store Store
	// Replay enables the replay button of failed runs; default off.
	Replay bool
	// PageSize is the dead-letter page's size; default [PageSizeDefault],
	// at most 500.
	PageSize int
	// Refresh is how often the page's live part is fetched again; default
	// [RefreshDefault].
	Refresh time.Duration
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
	// Now is the clock of windows and replays; default time.Now.
	Now func() time.Time
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return retry.InvalidField("Store", "nil")
	case c.PageSize < 0 || c.PageSize > 500:
		return retry.InvalidField("PageSize", "%d: want 1 to 500 (0 for the default)", c.PageSize)
	case c.Refresh < 0:
		return retry.InvalidField("Refresh", "%s: want > 0 (0 for the default)", c.Refresh)
	}
	return nil
}

type server struct {
	cfg  Config
	tmpl *template.Template
}

// New returns the dashboard's handler.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	cfg.PageSize = cmp.Or(cfg.PageSize, PageSizeDefault)
	cfg.Refresh = cmp.Or(cfg.Refresh, RefreshDefault)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	s := &server{cfg: cfg, tmpl: tmpl}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /dead", s.deadLetters)
	mux.HandleFunc("GET /runs/{id}", s.run)
	if cfg.Replay {
		mux.Handle("POST /runs/{id}/replay", http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.replay)))
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return securityHeaders(mux), nil
}

// securityHeaders forbids framing and any script or style not served by
// the dashboard itself.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Refresh int64 // milliseconds
	Replay  bool
	Data    any
}

func (s *server) render(w http.ResponseWriter, name, title string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.ExecuteTemplate(w, name, page{Title: title, Refresh: s.cfg.Refresh.Milliseconds(), Replay: s.cfg.Replay, Data: data}); err != nil {
		// The header is sent: all that is left is to end the page.
		fmt.Fprintf(w, "<p class=error>render: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

// fail answers an error of the store or of the request in one line.
func fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, retry.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, retry.ErrInvalidArgument), errors.Is(err, retry.ErrInvalidStatus):
		code = http.StatusBadRequest
	case errors.Is(err, retry.ErrNotReplayable):
		code = http.StatusConflict
	}
	http.Error(w, err.Error(), code)
}

func (s *server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), queryTimeout)
}

// windows are the error-pattern and activity windows a person picks.
var windows = []struct {
	Name   string
	Span   time.Duration
	Bucket time.Duration
}{
	{"15m", 15 * time.Minute, 15 * time.Second},
	{"1h", time.Hour, time.Minute},
	{"24h", 24 * time.Hour, 30 * time.Minute},
	{"7d", 7 * 24 * time.Hour, 4 * time.Hour},
}

// ReplayedBy is who the history says replayed a run from the dashboard
// (on a store that records it, [retry.Operator]): it has no login to name
// a person.
const ReplayedBy = "dashboard"

func (s *server) replay(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	id := r.PathValue("id")
	replay := s.cfg.Store.Replay
	if op, ok := s.cfg.Store.(retry.Operator); ok { // the history then says who replayed
		replay = func(ctx context.Context, id string, now time.Time) (retry.Run, error) {
			return op.ReplayWith(ctx, id, retry.ReplayOptions{By: ReplayedBy}, now)
		}
	}
	if _, err := replay(ctx, id, s.cfg.Now()); err != nil {
		fail(w, fmt.Errorf("replay %s: %w", id, err))
		return
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(id), http.StatusSeeOther)
}
