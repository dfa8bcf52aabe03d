package retry

import "testing"

func TestStorableText(t *testing.T) {
	for s, want := range map[string]bool{"": true, "patient-1 é": true, "a\x00b": false, "\xff": false} {
		if got := StorableText(s); got != want {
			t.Errorf("StorableText(%q) = %v; want %v", s, got, want)
		}
	}
}
