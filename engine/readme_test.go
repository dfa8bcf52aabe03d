package engine_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/config"
	"github.com/journeyretry/journeyretry/engine"
	"github.com/journeyretry/journeyretry/executor"
)

// TestReadmeRolloutConfigurations: the README's rollout section is
// configuration files of this package, in phase order off, selective,
// full; each loads through package config and opens an engine in its
// mode (on SQLite, for the README's PostgreSQL URL).
func TestReadmeRolloutConfigurations(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Rolling out\n")
	if !ok {
		t.Fatal("README has no Rolling out section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(section, -1)
	want := []executor.Mode{executor.ModeOff, executor.ModeSelective, executor.ModeFull}
	if len(blocks) != len(want) {
		t.Fatalf("%d configurations in the rollout section, want %d", len(blocks), len(want))
	}
	for i, blk := range blocks {
		dir := t.TempDir()
		doc := strings.ReplaceAll(blk[1], "postgres://...", filepath.Join(dir, "runs.db"))
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := engine.DefaultConfig()
		l := config.New(&cfg, "TEST_README")
		l.File = path
		if err := l.Load(); err != nil {
			t.Fatalf("phase %d: %v", i+2, err)
		}
		eng, err := engine.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("phase %d: %v", i+2, err)
		}
		if got := cfg.ExecutorConfig().Mode; got != want[i] {
			t.Errorf("phase %d: mode %s, want %s", i+2, got, want[i])
		}
		if err := eng.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadmeQuickStart: README's quick start is the body of Example, at
// most 30 lines, so it compiles and runs with the tests.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n## Quick start\n.*?```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no quick start")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "func Example() {\n")
	body, _, _ = strings.Cut(body, "\t// Output:")
	var lines []string
	for l := range strings.Lines(body) {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	if want := strings.Join(lines, ""); string(m[1]) != want {
		t.Fatalf("README's quick start is not Example's body:\n%s\nwant:\n%s", m[1], want)
	}
	if n := strings.Count(string(m[1]), "\n"); n > 30 {
		t.Fatalf("quick start of %d lines, want at most 30", n)
	}
}
