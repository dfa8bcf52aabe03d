package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/dashboard"
	"github.com/journeyretry/journeyretry/retry"
	"github.com/journeyretry/journeyretry/storage"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fill opens a store with n failed runs (journeys j0 and j1 in turn, class
// network_blip except every third, validation), two completed runs and
// one retrying run.
func fill(t *testing.T, n int) *storage.Store {
	t.Helper()
	ctx := t.Context()
	s, err := storage.Open(ctx, storage.Config{DSN: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	create := func(id, journey string) retry.Run {
		r, err := s.Create(ctx, retry.NewRun{ID: id, JourneyID: journey, StartNodeID: "a", MaxRetries: 3, Worker: "w", Lease: time.Hour}, base)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range n {
		r := create(fmt.Sprintf("f%02d", i), fmt.Sprintf("j%d", i%2))
		class := retry.ClassNetworkBlip
		if i%3 == 0 {
			class = retry.ClassValidation
		}
		if _, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: "a", Class: class, Message: "boom",
			StartedAt: base, FinishedAt: base.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"c1", "c2"} {
		r := create(id, "j0")
		if _, err := s.CompleteNode(ctx, r.Claim(), retry.NodeSuccess{NodeID: "a", StartedAt: base, FinishedAt: base.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	r := create("r1", "j0")
	if _, err := s.RecordFailure(ctx, r.Claim(), retry.FailureRecord{NodeID: "a", Class: retry.ClassNetworkBlip, Message: "reset",
		Decision: retry.Decision{Retry: true, Delay: time.Minute, Strategy: "short"}, StartedAt: base, FinishedAt: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(t *testing.T, cfg dashboard.Config) *httptest.Server {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return base.Add(time.Minute) }
	}
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestOverviewAgreesWithStore: every count on the overview is the store's.
func TestOverviewAgreesWithStore(t *testing.T) {
	s := fill(t, 5)
	srv := serve(t, dashboard.Config{Store: s})
	code, body := get(t, srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d %s", code, body)
	}
	counts, err := s.CountByStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range retry.Statuses {
		m := regexp.MustCompile(`data-status="` + string(st) + `">(\d+)<`).FindStringSubmatch(body)
		if m == nil || m[1] != strconv.Itoa(counts[st]) {
			t.Errorf("status %s: page %v, store %d", st, m, counts[st])
		}
	}
	if !strings.Contains(body, `id="runs-total">8<`) {
		t.Error("total runs not 8")
	}
	// The error patterns of the window: 5 failures and a retry.
	if !strings.Contains(body, `<td class="n">3</td><td><code>network_blip</code></td><td>boom</td>`) {
		t.Errorf("top errors missing network_blip boom 3:\n%s", body)
	}
	for _, w := range []string{"15m", "24h", "7d"} {
		if code, _ := get(t, srv.URL+"/?window="+w); code != http.StatusOK {
			t.Errorf("window %s: %d", w, code)
		}
	}
	if code, body := get(t, srv.URL+"/?window=1y"); code != http.StatusBadRequest || !strings.Contains(body, "window") {
		t.Errorf("window 1y: %d %s", code, body)
	}
}

// wholeWindow is a store whose whole-window TopErrors fails: a page that
// reads it (instead of the activity's bounded error patterns) fails.
type wholeWindow struct{ *storage.Store }

func (wholeWindow) TopErrors(context.Context, time.Time, time.Time, int) ([]retry.ErrorCount, error) {
	return nil, errors.New("whole-window TopErrors read")
}

// TestErrorPatternsBounded: on a store that reports activity, the
// overview's error patterns come with it, bounded as it is, not from a
// count over the whole window.
func TestErrorPatternsBounded(t *testing.T) {
	srv := serve(t, dashboard.Config{Store: wholeWindow{fill(t, 5)}})
	code, body := get(t, srv.URL+"/?window=7d")
	if code != http.StatusOK || !strings.Contains(body, `<td class="n">3</td><td><code>network_blip</code></td><td>boom</td>`) {
		t.Fatalf("GET /?window=7d: %d; want 200 with network_blip boom 3:\n%s", code, body)
	}
}

var runLink = regexp.MustCompile(`class="run" href="/runs/([^"]+)"`)

// TestDeadLetterPaging: pages of PageSize in id order, a next link until
// the last page, and the journey and class filters.
func TestDeadLetterPaging(t *testing.T) {
	s := fill(t, 5)
	srv := serve(t, dashboard.Config{Store: s, PageSize: 2})
	var seen []string
	u := srv.URL + "/dead?status=failed"
	for range 5 {
		code, body := get(t, u)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", u, code, body)
		}
		for _, m := range runLink.FindAllStringSubmatch(body, -1) {
			seen = append(seen, m[1])
		}
		m := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			break
		}
		u = srv.URL + strings.ReplaceAll(m[1], "&amp;", "&")
	}
	if fmt.Sprint(seen) != "[f00 f01 f02 f03 f04]" {
		t.Errorf("pages listed %v", seen)
	}
	_, body := get(t, srv.URL+"/dead?status=failed&journey=j0&class=validation")
	var got []string
	for _, m := range runLink.FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	if fmt.Sprint(got) != "[f00]" { // f00 (j0, validation); f03 is j1
		t.Errorf("filtered %v", got)
	}
	if code, _ := get(t, srv.URL+"/dead?status=completed"); code != http.StatusBadRequest {
		t.Errorf("dead list of completed runs: %d", code)
	}
}

// TestRunTimeline: a run's page lists each of its attempts with class,
// strategy and delay; an unknown run is 404.
func TestRunTimeline(t *testing.T) {
	s := fill(t, 1)
	srv := serve(t, dashboard.Config{Store: s})
	code, body := get(t, srv.URL+"/runs/r1")
	if code != http.StatusOK || !strings.Contains(body, `<rect class="att failed"`) ||
		!strings.Contains(body, "<td>short</td>") || !strings.Contains(body, ">1m0s<") {
		t.Errorf("run page %d:\n%s", code, body)
	}
	if strings.Contains(body, `id="replay"`) {
		t.Error("replay button while replay is disabled")
	}
	if code, _ := get(t, srv.URL+"/runs/nope"); code != http.StatusNotFound {
		t.Errorf("unknown run: %d", code)
	}
}

// TestUnlimitedShown: a run with no retry limit (-1) shows "unlimited"
// on its page and in the dead-letter list, not "-1".
func TestUnlimitedShown(t *testing.T) {
	s := fill(t, 0)
	r, err := s.Create(t.Context(), retry.NewRun{ID: "u1", JourneyID: "j0", StartNodeID: "a", MaxRetries: retry.Unlimited, Worker: "w", Lease: time.Hour}, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordFailure(t.Context(), r.Claim(), retry.FailureRecord{NodeID: "a", Class: retry.ClassValidation, Message: "bad",
		StartedAt: base, FinishedAt: base.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, dashboard.Config{Store: s})
	for _, page := range []string{"/runs/u1", "/dead?status=failed"} {
		if code, body := get(t, srv.URL+page); code != http.StatusOK || !strings.Contains(body, "0/unlimited") || strings.Contains(body, "/-1") {
			t.Errorf("%s: %d, want 0/unlimited:\n%s", page, code, body)
		}
	}
}

func post(t *testing.T, u string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReplay: without the flag there is no replay route; with it a
// same-origin POST replays the run, and a POST from another origin is
// refused and changes nothing.
func TestReplay(t *testing.T) {
	s := fill(t, 2)
	ro := serve(t, dashboard.Config{Store: s})
	if code := post(t, ro.URL+"/runs/f00/replay", nil); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("replay on a read-only dashboard: %d", code)
	}
	srv := serve(t, dashboard.Config{Store: s, Replay: true})
	_, body := get(t, srv.URL+"/runs/f00")
	if !strings.Contains(body, `id="replay"`) {
		t.Error("no replay button on a failed run")
	}
	if code := post(t, srv.URL+"/runs/f00/replay", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
		t.Errorf("cross-origin replay: %d, want 403", code)
	}
	if code := post(t, srv.URL+"/runs/f00/replay", map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("foreign Origin replay: %d, want 403", code)
	}
	if r, _ := s.Get(t.Context(), "f00"); r.Status != retry.StatusFailed {
		t.Fatalf("a refused replay moved the run to %s", r.Status)
	}
	u, _ := url.Parse(srv.URL)
	if code := post(t, srv.URL+"/runs/f00/replay", map[string]string{"Origin": "http://" + u.Host, "Sec-Fetch-Site": "same-origin"}); code != http.StatusSeeOther {
		t.Errorf("same-origin replay: %d, want 303", code)
	}
	if r, _ := s.Get(t.Context(), "f00"); r.Status != retry.StatusRetrying {
		t.Errorf("replayed run is %s, want retrying", r.Status)
	}
	if as, err := s.Attempts(t.Context(), "f00"); err != nil || as[len(as)-1].Act == nil || as[len(as)-1].Act.By != dashboard.ReplayedBy {
		t.Errorf("the replay in the history: %+v, %v; want one by %s", as, err, dashboard.ReplayedBy)
	}
	if code := post(t, srv.URL+"/runs/c1/replay", map[string]string{"Sec-Fetch-Site": "same-origin"}); code != http.StatusConflict {
		t.Errorf("replay of a completed run: %d, want 409", code)
	}
}

// TestNothingFromElsewhere: pages and assets name no other host: every
// script, style and image is the dashboard's own.
func TestNothingFromElsewhere(t *testing.T) {
	s := fill(t, 1)
	srv := serve(t, dashboard.Config{Store: s, Replay: true})
	for _, p := range []string{"/", "/dead", "/runs/f00", "/static/style.css", "/static/live.js"} {
		code, body := get(t, srv.URL+p)
		if code != http.StatusOK {
			t.Errorf("%s: %d", p, code)
		}
		if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//|url\(\s*["']?https?:|@import`).FindString(body); m != "" {
			t.Errorf("%s loads from elsewhere: %q", p, m)
		}
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestNewValidates(t *testing.T) {
	for field, c := range map[string]dashboard.Config{"Store": {}, "PageSize": {Store: fill(t, 0), PageSize: 501}, "Refresh": {Store: fill(t, 0), Refresh: -time.Second}} {
		_, err := dashboard.New(c)
		if fe, ok := errors.AsType[*retry.FieldError](err); !ok || fe.Field != field || !errors.Is(err, retry.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want a retry.FieldError naming %s, wrapping ErrInvalidArgument", c, err, field)
		}
	}
}
