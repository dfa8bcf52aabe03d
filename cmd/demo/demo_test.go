package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demoBin is the demo binary, built once by TestMain.
var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "demo")
	args := []string{"build", "-o", demoBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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
	cmd := exec.CommandContext(ctx, demoBin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	return cmd
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
		{name: "scheduler redis not yet", args: []string{"--scheduler", "redis"}, want: "not available yet"},
		{name: "scheduler sqlpoll not yet", args: []string{"--scheduler", "sqlpoll"}, want: "--scheduler"},
		{name: "scheduler unknown", args: []string{"--scheduler", "kafka"}, want: "scheduler.backend"},
		{name: "mode", args: []string{"--mode", "partial"}, want: "--mode"},
		{name: "workers", args: []string{"--workers", "-1"}, want: "--workers"},
		{name: "lease", args: []string{"--lease", "soon"}, want: "--lease"},
		{name: "lease too short", args: []string{"--lease", "500us"}, want: "--lease"},
		{name: "sweep", args: []string{"--sweep", "every now and then"}, want: "--sweep"},
		{name: "sweep grace", args: []string{"--sweep-grace", "-1s"}, want: "--sweep-grace"},
		{name: "fault rate", args: []string{"--fault-network", "1.5"}, want: "demo.faults.networkBlip"},
		{name: "max delay below base", args: []string{"--max-delay-ms", "1"}, want: "retry.maxDelayMs"},
		{name: "jitter", args: []string{"--jitter", "wobbly"}, want: "--jitter"},
		{name: "bad rule", args: []string{"--retryable", "re:("}, want: "retry.retryableErrors"},
		{name: "empty store", args: []string{"--store", ""}, want: "store.dsn"},
		{name: "store of another scheme", args: []string{"migrate", "--store", "mysql://x@localhost/db"}, want: "store.dsn"},
		{name: "store batch too large", env: []string{"JRETRY_STORE_MAX_BATCH=4611686018427387904"}, want: "store.max_batch"},
		{name: "env integer", env: []string{"JRETRY_EXECUTOR_WORKERS=lots"}, want: "JRETRY_EXECUTOR_WORKERS"},
		{name: "env mode", env: []string{"JRETRY_EXECUTOR_MODE=sometimes"}, want: "executor.mode"},
		{name: "env fault", env: []string{"JRETRY_DEMO_FAULTS_RATE_LIMIT=-0.1"}, want: "demo.faults.rateLimit"},
		{name: "file unknown key", file: `{"retry": {"maxRetrys": 3}}`, want: "retry.maxRetrys"},
		{name: "file unknown section", file: `{"demo": {"runs": 5}, "sheduler": {}}`, want: "sheduler"},
		{name: "file bad value", file: `{"demo": {"seed": "abc"}}`, want: "demo.seed"},
		{name: "file bad scheduler", file: `{"scheduler": {"backend": "redis"}}`, want: "scheduler.backend"},
		{name: "file not JSON", file: `runs = 5`, want: "config file"},
		{name: "flag over valid file", file: `{"demo": {"runs": 5}}`, args: []string{"--runs", "-5"}, want: "--runs"},
		{name: "unknown command", args: []string{"launch"}, want: "launch"},
		{name: "start bad runs", args: []string{"start", "--runs", "0"}, want: "demo.runs"},
		{name: "worker bad scheduler", args: []string{"worker", "--scheduler", "redis"}, want: "not available yet"},
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
			r := runBin(t, dir, tt.env, args...)
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

// TestHelp: every command answers --help with its usage and status 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"migrate", "--help"}, {"start", "--help"}, {"worker", "--help"},
		{"runs", "--help"}, {"runs", "list", "--help"}, {"runs", "show", "--help"}, {"runs", "retry", "--help"},
		{"stats", "--help"}, {"explain", "--help"},
	} {
		r := runBin(t, t.TempDir(), nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: demo") {
			t.Errorf("%v: status %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestExplain prints the decision and the delays of retries 1-10.
func TestExplain(t *testing.T) {
	t.Parallel()
	r := runBin(t, t.TempDir(), nil, "explain", "--class", "rate_limit")
	if r.code != 0 || !strings.Contains(r.stdout, "strategy: long (rule class:rate_limit)") || !strings.Contains(r.stdout, "\n  10 ") {
		t.Errorf("explain --class rate_limit: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, t.TempDir(), nil, "explain", "--message", "invalid patient data: missing phone number", "--non-retryable", "re:^invalid patient")
	if r.code != 0 || !strings.Contains(r.stdout, "never retried (rule nonretryable:0)") {
		t.Errorf("explain --message: status %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, t.TempDir(), nil, "explain")
	for _, s := range []string{"immediate", "short", "long", "none", "exponential"} {
		if !strings.Contains(r.stdout, "  "+s+" ") {
			t.Errorf("explain: no row for %s:\n%s", s, r.stdout)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
