package conformance_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/journeyretry/journeyretry/internal/conformance"
)

// A check a backend makes panic fails with the panic's message, and the
// checks after it still run: the test binary is not taken down. Run in a
// child process, since the panicking check must fail its test.
func TestRunSurvivesAPanickingCheck(t *testing.T) {
	if os.Getenv("CONFORMANCE_PANIC_CHILD") == "1" {
		conformance.Run(t, []conformance.Check[int]{
			{Name: "Panics", Run: func(int) { _ = []int{}[1] }},
			{Name: "After", Run: func(int) { t.Log("the next check ran") }},
		}, func(*testing.T) int { return 0 })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunSurvivesAPanickingCheck$", "-test.v")
	cmd.Env = append(os.Environ(), "CONFORMANCE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed; want its panicking check to fail:\n%s", out)
	}
	for _, want := range []string{"--- FAIL: TestRunSurvivesAPanickingCheck/Panics", "check panicked", "index out of range", "--- PASS: TestRunSurvivesAPanickingCheck/After"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}
