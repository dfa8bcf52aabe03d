package combine

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-multierror"
)

// TestErrors: nil for none, one error reads as itself, several one a line
// and each found by errors.Is, nested combinations flattened.
func TestErrors(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	if err := Errors(nil, nil); err != nil {
		t.Fatalf("Errors(nil, nil) = %v", err)
	}
	if err := Errors(nil, a); err == nil || err.Error() != "a" {
		t.Fatalf("Errors(nil, a) = %q, want %q", err, "a")
	}
	err := Errors(a, Errors(b, c))
	if err.Error() != "a\nb\nc" || !errors.Is(err, a) || !errors.Is(err, c) {
		t.Fatalf("Errors(a, Errors(b, c)) = %q", err)
	}
	if me, ok := err.(*multierror.Error); !ok || len(me.WrappedErrors()) != 3 {
		t.Fatalf("Errors(a, Errors(b, c)) = %#v, want a flat *multierror.Error of three", err)
	}
}
