package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoBin is the demo binary, built once by demoBinary for the tests that
// need processes of their own (signals, SIGKILL, several workers, a real
// pipe), in a folder TestMain removes.
var (
	demoBin     string
	demoBinErr  error
	demoBinOnce sync.Once
	demoBinDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if demoBinDir != "" {
		os.RemoveAll(demoBinDir)
	}
	os.Exit(code)
}

// demoBinary builds the binary the first time a test needs it. A build
// that fails panics: no test of a process can run.
func demoBinary() string {
	demoBinOnce.Do(func() {
		if demoBinDir, demoBinErr = os.MkdirTemp("", "demo-bin-"); demoBinErr != nil {
			return
		}
		demoBin = filepath.Join(demoBinDir, "demo")
		args := []string{"build", "-o", demoBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
			demoBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if demoBinErr != nil {
		panic(demoBinErr)
	}
	return demoBin
}

// result is what one run of the binary gave.
type result struct {
	code           int
	stdout, stderr string
}

// cleanEnv is the environment the binary runs with: the test's, without
// any JRETRY_ variable that could change the configuration.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix+"_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// demoCmd returns the binary's command in dir.
func demoCmd(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, demoBinary(), args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	return cmd
}

// runDemo runs the command in-process as runBin runs the binary: in dir
// (the default database and relative paths are under it), with cleanEnv's
// environment.
func runDemo(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, surroundings{environ: cleanEnv(env...), dir: dir})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// runBin runs the binary in dir as a user would and waits for it.
func runBin(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx, dir, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run demo %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// fastArgs keep a test's demo short: few runs, a short lease.
func fastArgs(store string, runs int) []string {
	return []string{"--store", store, "--runs", fmt.Sprint(runs), "--lease", "2s"}
}

// TestBadConfigurationWritesNothing: a bad flag, environment variable or
// configuration file value is a one-line error naming it, exit status 2,
// and neither the data folder nor the database is created.
func TestBadConfigurationWritesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  []string
		file string // configuration file contents, passed with --config
		want string // in the error line
	}{
		{name: "unknown flag", args: []string{"--wokers", "3"}, want: "-wokers"},
		{name: "runs zero", args: []string{"--runs", "0"}, want: "demo.runs"},
		{name: "runs not a number", args: []string{"--runs", "many"}, want: "--runs"},
		{name: "scheduler redis without a URL", args: []string{"--scheduler", "redis"}, want: "scheduler.redisUrl: required"},
		{name: "redis cluster seed without a port", args: []string{"--scheduler", "redis", "--redis-cluster", "127.0.0.1"}, want: "scheduler.redisCluster"},
		{name: "redis cluster on a database", args: []string{"--scheduler", "redis", "--redis", "redis://u:s3cr3t@h/2", "--redis-cluster", "h:1"}, want: "redis://u:xxxxx@h/2"},
		{name: "poll interval", args: []string{"--scheduler", "sqlpoll", "--poll-interval", "-1s"}, want: "--poll-interval"},
		{name: "scheduler unknown", args: []string{"--scheduler", "kafka"}, want: "scheduler.backend"},
		{name: "mode", args: []string{"--mode", "partial"}, want: "--mode"},
		{name: "workers", args: []string{"--workers", "-1"}, want: "--workers"},
		{name: "lease", args: []string{"--lease", "soon"}, want: "--lease"},
		{name: "lease too short", args: []string{"--lease", "500us"}, want: "--lease"},
		{name: "sweep", args: []string{"--sweep", "every now and then"}, want: "--sweep"},
		{name: "sweep grace", args: []string{"--sweep-grace", "-1s"}, want: "--sweep-grace"},
		{name: "fault rate", args: []string{"--fault-network", "1.5"}, want: "demo.faults.networkBlip"},
		{name: "max retries below -1", args: []string{"--max-retries", "-2"}, want: "retry.maxRetries: -2: want -1 (unlimited), 0 (none) or more (flag --max-retries)"},
		{name: "env max retries below -1", env: []string{"JRETRY_RETRY_MAX_RETRIES=-2"}, want: "retry.maxRetries: -2: want -1 (unlimited), 0 (none) or more (environment JRETRY_RETRY_MAX_RETRIES)"},
		{name: "max elapsed negative", env: []string{"JRETRY_RETRY_MAX_ELAPSED_MS=-1"}, want: "retry.maxElapsedMs: -1: want 0 (no limit) to"},
		{name: "max snoozes below -1", file: `{"executor": {"maxSnoozes": -2}}`, want: "executor.maxSnoozes: -2: want -1 (unlimited) or more"},
		{name: "max delay below base", args: []string{"--max-delay-ms", "1"}, want: "retry.maxDelayMs"},
		{name: "jitter", args: []string{"--jitter", "wobbly"}, want: "--jitter"},
		{name: "bad rule", args: []string{"--retryable", "re:("}, want: "retry.retryableErrors[0]"},
		{name: "bad rule names the flag", args: []string{"--retryable", "re:("}, want: "(flag --retryable)"},
		{name: "env value names the variable", env: []string{"JRETRY_DEMO_RUNS=0"}, want: "demo.runs: 0: want 1 to 1000000 (environment JRETRY_DEMO_RUNS)"},
		{name: "file value names the file", file: `{"demo": {"runs": 0}}`, want: "demo.json)"},
		{name: "redis not a URL", args: []string{"--redis", "localhost:6379"}, want: "scheduler.redisUrl: localhost:6379: want a redis:// or rediss:// URL with a host (flag --redis)"},
		{name: "redis of another scheme", args: []string{"worker", "--redis", "http://cache:6379"}, want: "(flag --redis)"},
		{name: "redis password hidden", args: []string{"--redis", "redis://u:secret@"}, want: "redis://u:xxxxx@"},
		{name: "empty store", args: []string{"--store", ""}, want: "store.dsn"},
		{name: "store with a bad sslmode", args: []string{"--store", "postgres://u@127.0.0.1:1/db?sslmode=bogus"}, want: "store.dsn"},
		{name: "store of another scheme", args: []string{"migrate", "--store", "mysql://x@localhost/db"}, want: "store.dsn"},
		{name: "store batch too large", env: []string{"JRETRY_STORE_MAX_BATCH=4611686018427387904"}, want: "store.max_batch"},
		{name: "env integer", env: []string{"JRETRY_EXECUTOR_WORKERS=lots"}, want: "JRETRY_EXECUTOR_WORKERS"},
		{name: "serve on every interface", args: []string{"serve", "--listen", ":8080"}, want: "serve.listen: \":8080\" is not a loopback address"},
		{name: "serve on a public address", args: []string{"serve", "--listen", "192.0.2.1:8080"}, want: "--allow-remote"},
		{name: "serve listen not host:port", args: []string{"serve", "--listen", "8080"}, want: "serve.listen"},
		{name: "log level", args: []string{"worker", "--log-level", "loud"}, want: "log.level"},
		{name: "log format", args: []string{"--log-format", "xml"}, want: "log.format"},
		{name: "metrics listen", args: []string{"worker", "--metrics-listen", "nowhere"}, want: "metrics.listen"},
		{name: "env typo", env: []string{"JRETRY_EXECUTOR_WROKERS=3"}, want: "JRETRY_EXECUTOR_WROKERS: names no setting"},
		{name: "env mode", env: []string{"JRETRY_EXECUTOR_MODE=sometimes"}, want: "executor.mode"},
		{name: "env fault", env: []string{"JRETRY_DEMO_FAULTS_RATE_LIMIT=-0.1"}, want: "demo.faults.rateLimit"},
		{name: "file unknown key", file: `{"retry": {"maxRetrys": 3}}`, want: "retry.maxRetrys"},
		{name: "file unknown section", file: `{"demo": {"runs": 5}, "sheduler": {}}`, want: "sheduler"},
		{name: "file bad value", file: `{"demo": {"seed": "abc"}}`, want: "demo.seed"},
		{name: "file bad scheduler", file: `{"scheduler": {"backend": "pigeon"}}`, want: "scheduler.backend"},
		{name: "file redis without a URL", file: `{"scheduler": {"backend": "redis"}}`, want: "scheduler.redisUrl"},
		{name: "file not JSON", file: `runs = 5`, want: "config file"},
		{name: "flag over valid file", file: `{"demo": {"runs": 5}}`, args: []string{"--runs", "-5"}, want: "--runs"},
		{name: "unknown command", args: []string{"launch"}, want: "launch"},
		{name: "start bad runs", args: []string{"start", "--runs", "0"}, want: "demo.runs"},
		{name: "worker bad scheduler", args: []string{"worker", "--scheduler", "kafka"}, want: "scheduler.backend"},
		{name: "worker takes no runs", args: []string{"worker", "--runs", "5"}, want: "-runs"},
		{name: "start takes no jitter", args: []string{"start", "--jitter", "full"}, want: "-jitter"},
		{name: "runs list bad status", args: []string{"runs", "list", "--status", "done"}, want: "--status"},
		{name: "explain unknown class", args: []string{"explain", "--class", "network_blib"}, want: "--class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := tt.args
			if tt.file != "" {
				path := filepath.Join(dir, "demo.json")
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", path}, args...)
				if len(tt.args) > 0 && !strings.HasPrefix(tt.args[0], "-") { // a subcommand comes first
					args = append(append([]string{tt.args[0]}, "--config", path), tt.args[1:]...)
				}
			}
			r := runDemo(t, dir, tt.env, args...)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			line := strings.TrimSuffix(r.stderr, "\n")
			if line == "" || strings.Contains(line, "\n") {
				t.Errorf("want one error line, got:\n%s", r.stderr)
			}
			if !strings.Contains(line, tt.want) {
				t.Errorf("error %q does not name %q", line, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("wrote to stdout: %q", r.stdout)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "demo.json" {
					t.Errorf("wrote %s", e.Name())
				}
			}
		})
	}
}

// TestHelp: every command answers --help with its usage and status 0, and
// offers the flags it uses and none it would ignore.
func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args        []string
		want, avoid []string // flags offered and not
	}{
		{args: []string{"--help"}, want: []string{"-runs", "-jitter", "-workers", "-fault-network", "-fault-bad-patient"}},
		{args: []string{"migrate", "--help"}, want: []string{"-store", "-adopt-legacy"}, avoid: []string{"-runs", "-mode"}},
		{args: []string{"start", "--help"}, want: []string{"-runs", "-seed", "-max-retries", "-fault-bad-patient"},
			avoid: []string{"-jitter", "-base-delay-ms", "-max-delay-ms", "-workers", "-lease", "-retryable", "-fault-network"}},
		{args: []string{"worker", "--help"}, want: []string{"-workers", "-lease", "-jitter", "-seed", "-fault-network"},
			avoid: []string{"-runs", "-fault-bad-patient"}},
		{args: []string{"runs", "--help"}},
		{args: []string{"runs", "list", "--help"}, want: []string{"-status", "-json"}},
		{args: []string{"runs", "show", "--help"}, want: []string{"-json"}},
		{args: []string{"runs", "retry", "--help"}, want: []string{"-from", "-max-retries", "-strategy", "-by", "-status", "-class", "-node", "-journey", "-since", "-until", "-dry-run", "-confirm"},
			avoid: []string{"-json"}},
		{args: []string{"runs", "cancel", "--help"}, want: []string{"-by", "-store"}, avoid: []string{"-json"}},
		{args: []string{"stats", "--help"}, want: []string{"-json"}, avoid: []string{"-runs"}},
		{args: []string{"explain", "--help"}, want: []string{"-class", "-mode", "-jitter", "-budgets", "-store"}, avoid: []string{"-runs", "-workers"}},
	}
	for _, tt := range tests {
		r := runDemo(t, t.TempDir(), nil, tt.args...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: demo") {
			t.Errorf("%v: status %d, stdout %q, stderr %q", tt.args, r.code, r.stdout, r.stderr)
		}
		offers := func(f string) bool { return regexp.MustCompile(`(?m)^  ` + f + `( |$)`).MatchString(r.stdout) }
		for _, f := range tt.want {
			if !offers(f) {
				t.Errorf("%v does not offer %s", tt.args, f)
			}
		}
		for _, f := range tt.avoid {
			if offers(f) {
				t.Errorf("%v offers %s, which it ignores", tt.args, f)
			}
		}
	}
}

// TestExplain prints the decision and the delays of retries 1-10, and one
// line for a failure that is never retried.
func TestExplain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		args        []string
		want, avoid []string
	}{
		{name: "retried class", args: []string{"--class", "rate_limit"},
			want: []string{"strategy: long (rule class:rate_limit)", "\n  10 ", "beyond maxRetries"}},
		{name: "non-retryable rule", args: []string{"--message", "invalid patient data: missing phone number", "--non-retryable", "re:^invalid patient"},
			want: []string{"decision: never retried (rule nonretryable:0): the run ends failed\n"}, avoid: []string{"strategy:", "never  "}},
		{name: "strategy none", args: []string{"--class", "validation"},
			want:  []string{"decision: never retried (rule class:validation): the run ends failed\n"},
			avoid: []string{"strategy:", "retried as below", "never  ", "failed_max_retries"}},
		{name: "every strategy", want: []string{"  immediate ", "  short ", "  long ", "  none ", "  exponential "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runDemo(t, t.TempDir(), nil, append([]string{"explain"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("status %d\n%s", r.code, r.stderr)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("no %q in:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.avoid {
				if strings.Contains(r.stdout, s) {
					t.Errorf("%q in:\n%s", s, r.stdout)
				}
			}
		})
	}
}

// TestBanner: the banner shows the values the demo runs with (the
// library's defaults for zeros), and says the delays are scaled down only
// when they are.
func TestBanner(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		want, avoid []string
	}{
		{name: "defaults", want: []string{"workers: 8 ", "lease: 5s ", "sweeper: @every 1s (grace 1s)", "delays scaled down for the demo: long backoff 500ms-2s"}},
		{name: "zeros mean the library's defaults", args: []string{"--workers", "0", "--lease", "0", "--sweep-grace", "0"},
			want: []string{"workers: 8 ", "lease: 30s ", "(grace 5s)"}, avoid: []string{"workers: 0", "lease: 0s", "grace 0s"}},
		{name: "set values", args: []string{"--workers", "3", "--mode", "shadow"}, want: []string{"workers: 3 ", "rollout mode: shadow "}},
		{name: "library delays", args: []string{"--config", writeTemp(t, `{"retry": {"strategies": {"long": {"baseDelayMs": 120000, "maxDelayMs": 600000}}}}`)},
			avoid: []string{"scaled down"}},
		{name: "empty retry section keeps the demo's delays", args: []string{"--config", writeTemp(t, `{"retry": {}}`)},
			want: []string{"scaled down"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCommand(t.Context(), "demo", "", allFlags...)
			c.loader.LookupEnv = func(string) (string, bool) { return "", false }
			if err := c.parseNoArgs(tt.args); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			writeBanner(&b, c.cfg)
			for _, s := range tt.want {
				if !strings.Contains(b.String(), s) {
					t.Errorf("no %q in:\n%s", s, b.String())
				}
			}
			for _, s := range tt.avoid {
				if strings.Contains(b.String(), s) {
					t.Errorf("%q in:\n%s", s, b.String())
				}
			}
		})
	}
}

// writeTemp writes a file for t and returns its path.
func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "demo.json")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRedisPasswordNeverShown: a Redis password given by flag or
// environment appears in no output: not in --help, not in the error of a
// server that cannot be reached or refuses it.
func TestRedisPasswordNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-pw"
	reach := "redis://u:" + secret + "@127.0.0.1:1/0"
	refuse := reach
	if u := os.Getenv("RETRY_TEST_REDIS_URL"); u != "" {
		refuse = strings.Replace(u, "redis://", "redis://u:"+secret+"@", 1)
	}
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{[]string{"JRETRY_SCHEDULER_REDIS_URL=" + reach}, []string{"--help"}},
		{[]string{"JRETRY_SCHEDULER_REDIS_URL=" + reach}, []string{"worker", "--help"}},
		{nil, []string{"worker", "--scheduler", "redis", "--redis", reach}},
		{[]string{"JRETRY_SCHEDULER_REDIS_URL=" + refuse}, []string{"worker", "--scheduler", "redis"}},
		{nil, []string{"--scheduler", "redis", "--redis", refuse, "--runs", "1"}},
	} {
		dir := t.TempDir()
		r := runDemo(t, dir, tc.env, append(tc.args, "--store", filepath.Join(dir, "runs.db"))...)
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("%v %v: the password shows:\n%s%s", tc.env, tc.args, r.stdout, r.stderr)
		}
		if !slices.Contains(tc.args, "--help") && r.code == 0 {
			t.Errorf("%v: exit status 0 with no Redis to reach", tc.args)
		}
	}
}

// TestOutputSerialized: a command's output writers take concurrent writes
// (the progress line beside the executor's log records, which once raced
// on a test's buffer): under -race, unlocked writes to a bytes.Buffer
// fail this test. A file is left as it is, so that a terminal is still
// recognised.
func TestOutputSerialized(t *testing.T) {
	var buf bytes.Buffer
	w := serialized(&buf)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintln(w, "line")
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "line\n"); n != 400 {
		t.Fatalf("%d whole lines, want 400", n)
	}
	if serialized(os.Stderr) != io.Writer(os.Stderr) {
		t.Fatal("os.Stderr was wrapped: a terminal would no longer be recognised")
	}
}
