package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/report"
	"github.com/journeyretry/journeyretry/retry"
)

// startListening starts the binary and returns it with the URL it says it
// serves on (the first http:// URL on its stdout).
func startListening(t *testing.T, dir string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := demoCmd(t.Context(), dir, nil, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`http://\S+`)
		sent := false
		for sc.Scan() {
			if u := re.FindString(sc.Text()); u != "" && !sent {
				urls <- u
				sent = true
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-urls:
		return cmd, u
	case <-time.After(60 * time.Second):
		t.Fatalf("%v printed no URL; stderr:\n%s", args, stderr.String())
		return nil, ""
	}
}

// scrapeMetrics returns the text exposition's samples, "name{labels}" ->
// value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestWorkerMetricsAgreeWithStore: a worker's /metrics, once its runs have
// finished, counts the attempts and runs the store holds, and demo stats
// --json says the same.
func TestWorkerMetricsAgreeWithStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := dir + "/w.db"
	if r := runDemo(t, dir, nil, "start", "--store", store, "--runs", "40"); r.code != 0 {
		t.Fatalf("start: %d\n%s", r.code, r.stderr)
	}
	w, base := startListening(t, dir, "worker", "--store", store, "--lease", "2s", "--sweep", "@every 1s",
		"--metrics-listen", "127.0.0.1:0", "--log-level", "error")
	waitFor(t, store, 60*time.Second, func(c map[retry.Status]int) bool { return report.Unfinished(c) == 0 })
	counts := countRuns(t, store)
	// The runs gauge is cached for a few seconds: poll until it shows the
	// finished store.
	var m map[string]float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		m = scrapeMetrics(t, base)
		same := true
		for _, st := range retry.Statuses {
			same = same && m[`journeyretry_runs{status="`+string(st)+`"}`] == float64(counts[st])
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs gauge never matched the store %v:\n%v", counts, m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var attempts, retries float64
	for k, v := range m {
		switch {
		case strings.HasPrefix(k, "journeyretry_attempts_total{"):
			attempts += v
		case strings.HasPrefix(k, "journeyretry_retries_scheduled_total{"):
			retries += v
		}
	}
	var s jsonSummary
	r := runDemo(t, dir, nil, "stats", "--json", "--store", store)
	if r.code != 0 {
		t.Fatalf("stats: %d\n%s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if int(attempts) != s.Database.Attempts || int(retries) != s.Database.Retries {
		t.Errorf("metrics: %g attempts, %g retries; stats --json: %d attempts, %d retries", attempts, retries, s.Database.Attempts, s.Database.Retries)
	}
	if s.Database.Attempts == 0 || s.Database.Retries == 0 {
		t.Errorf("the run shows nothing: %+v", s.Database)
	}
	if m[`journeyretry_wakeup_lateness_seconds_count{scheduler="memory"}`] == 0 {
		t.Error("no wake-up lateness observed")
	}
	w.Process.Signal(syscall.SIGTERM)
	if err := w.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v", err)
	}
}

// TestLogsByConfiguration: the attempt records as a user configures them,
// at each layer: JSON at info by flags (each line an object with the
// fields an operator filters on), text at info by the environment, and a
// file's info level overridden by a flag's error, which leaves no attempt
// record.
func TestLogsByConfiguration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := func(name string) []string { return []string{"--runs", "20", "--store", filepath.Join(dir, name)} }
	stderr := func(env []string, args ...string) string {
		t.Helper()
		r := runDemo(t, dir, env, args...)
		if r.code != 0 {
			t.Fatalf("demo %v: status %d\n%s", args, r.code, r.stderr)
		}
		return r.stderr
	}

	attempts := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr(nil, append(store("json.db"), "--log-format", "json", "--log-level", "info")...)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--log-format json wrote a line that is not JSON: %q (%v)", line, err)
		}
		if rec["msg"] != "attempt" || rec["decision"] != "retry" {
			continue
		}
		attempts++
		for _, k := range []string{"run", "journey", "node", "nodeType", "attempt", "outcome", "class", "strategy", "rule", "delay", "err"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("attempt record without %q: %s", k, line)
			}
		}
	}
	if attempts == 0 {
		t.Fatal("--log-level info: no record of a retried attempt")
	}

	if text := stderr([]string{"JRETRY_LOG_LEVEL=info"}, store("text.db")...); !regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=attempt run=\S+ journey=patient-reminder .*decision=retry`).MatchString(text) {
		t.Fatalf("JRETRY_LOG_LEVEL=info: no text record of a retried attempt in\n%s", text)
	}

	cfg := filepath.Join(dir, "info.json")
	if err := os.WriteFile(cfg, []byte(`{"log": {"level": "info"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if quiet := stderr(nil, append(store("quiet.db"), "--config", cfg, "--log-level", "error")...); strings.Contains(quiet, "msg=attempt") {
		t.Fatalf("--log-level error over a file's info: attempt records written\n%s", quiet)
	}
}
