package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/journeyretry/journeyretry/retry"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// TestDashboardInBrowser drives headless Chromium against demo serve on a
// database a demo run filled: the numbers on the page are the store's, a
// run's timeline lists its attempts, the replay button moves the run, a
// form on another origin cannot replay, and the screenshot is not blank.
// Set DASHBOARD_SCREENSHOT to a path to keep the screenshot (the README's
// picture is made so).
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no browser at %s (apt-get install chromium); CI is unset, so skipping", chromiumPath)
		}
		t.Fatalf("CI is set and there is no browser at %s: %v", chromiumPath, err)
	}
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "b.db")
	if r := runDemo(t, dir, nil, append(fastArgs(store, 120), "--fault-bad-patient", "0.1")...); r.code != 0 {
		t.Fatalf("demo: %d\n%s", r.code, r.stderr)
	}
	_, base := startListening(t, dir, "serve", "--store", store, "--listen", "127.0.0.1:0", "--enable-replay")

	alloc, cancel := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		must("text of "+sel, err)
		return s
	}
	// eventually polls the page (across navigations) until ok.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	location := func() string {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		return loc
	}

	// The overview's counts are the store's.
	counts := countRuns(t, store)
	must("overview", chromedp.Do(ctx, chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#runs-total"))))
	total := text("#runs-total")
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("[data-status]")].map(e => e.dataset.status + "=" + e.textContent)`))
	must("counts", err)
	want := []string{}
	sum := 0
	for _, st := range retry.Statuses {
		want = append(want, fmt.Sprintf("%s=%d", st, counts[st]))
		sum += counts[st]
	}
	if strings.Join(shown, " ") != strings.Join(want, " ") || total != strconv.Itoa(sum) {
		t.Errorf("page shows %v (total %s); store %v (total %d)", shown, total, want, sum)
	}
	if counts[retry.StatusFailed] == 0 {
		t.Fatalf("the demo left no failed run to replay: %v", counts)
	}

	// The screenshot, while the overview is up.
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	must("screenshot", err)
	checkNotBlank(t, shot)
	if p := os.Getenv("DASHBOARD_SCREENSHOT"); p != "" {
		must("save screenshot", os.WriteFile(p, shot, 0o644))
	}
	must("save screenshot", os.WriteFile(filepath.Join(t.TempDir(), "dashboard.png"), shot, 0o644))

	// The dead-letter list's count, then the first failed run's timeline:
	// one row per attempt in the store.
	must("dead letters", chromedp.Do(ctx, chromedp.Navigate(base+"/dead?status=failed"), chromedp.WaitVisible(chromedp.CSS("#dead-list"))))
	if n := text(`[data-dead="failed"]`); n != strconv.Itoa(counts[retry.StatusFailed]) {
		t.Errorf("dead letters show %s failed, store %d", n, counts[retry.StatusFailed])
	}
	runID := text("#dead-list a.run")
	must("open run", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#dead-list a.run"))))
	eventually("timeline", func() bool { return strings.HasSuffix(location(), "/runs/"+runID) })
	must("timeline", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#attempts"))))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#attempts tr").length - 1`))
	must("rows", err)
	s := openDB(t, store)
	atts, err := s.Attempts(t.Context(), runID)
	must("attempts", err)
	if rows != len(atts) {
		t.Errorf("timeline of %s lists %d attempts, store %d", runID, rows, len(atts))
	}

	// A POST with a foreign Origin is refused and changes nothing.
	req, err := http.NewRequest(http.MethodPost, base+"/runs/"+runID+"/replay", nil)
	must("request", err)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	must("foreign POST", err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a foreign Origin: %s, want 403", resp.Status)
	}
	if r, err := s.Get(t.Context(), runID); err != nil || r.Status != retry.StatusFailed {
		t.Errorf("after a foreign POST the run is %s, %v; want failed", r.Status, err)
	}

	// The replay button moves the run.
	must("run page", chromedp.Do(ctx, chromedp.Navigate(base+"/runs/"+runID), chromedp.WaitVisible(chromedp.CSS("#replay"))))
	must("replay", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#replay"))))
	eventually("replayed run shown retrying", func() bool {
		st, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#run-status")))
		return err == nil && st == "retrying"
	})
	if r, err := s.Get(t.Context(), runID); err != nil || r.Status != retry.StatusRetrying {
		t.Errorf("after replay the store holds %s, %v", r.Status, err)
	}
}

// checkNotBlank fails unless the PNG has many colours: a page that did not
// render is one colour.
func checkNotBlank(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colours := map[[3]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 4 {
		for x := r.Min.X; x < r.Max.X; x += 4 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			colours[[3]uint32{cr >> 8, cg >> 8, cb >> 8}] = true
		}
	}
	if r.Dx() < 800 || len(colours) < 20 {
		t.Errorf("screenshot %dx%d with %d colours: blank", r.Dx(), r.Dy(), len(colours))
	}
}
