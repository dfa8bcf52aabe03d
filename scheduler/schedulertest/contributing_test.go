package schedulertest_test

import (
	"os"
	"strings"
	"testing"
)

// CONTRIBUTING.md shows example_backend_test.go verbatim, so the backend a
// contributor copies is one that compiles and passes the suite.
func TestContributingShowsExampleBackend(t *testing.T) {
	const marker = "<!-- scheduler/schedulertest/example_backend_test.go -->\n```go\n"
	doc, err := os.ReadFile("../../CONTRIBUTING.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_backend_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), marker)
	block, _, closed := strings.Cut(rest, "```\n")
	if !ok || !closed {
		t.Fatalf("CONTRIBUTING.md has no fenced go block after %q", strings.TrimSpace(marker))
	}
	if block != string(src) {
		t.Error("CONTRIBUTING.md's copy of example_backend_test.go differs from the file: copy the file into the doc")
	}
}
