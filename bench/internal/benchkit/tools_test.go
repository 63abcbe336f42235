package benchkit

import "testing"

func TestLastLines(t *testing.T) {
	if got := LastLines([]byte("a\nb\nc\n"), 2); got != "b\nc" {
		t.Errorf("last 2: %q", got)
	}
	if got := LastLines([]byte("a"), 5); got != "a" {
		t.Errorf("last 5 of 1: %q", got)
	}
}
