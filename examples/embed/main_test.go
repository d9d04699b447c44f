package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRun runs the example as `go run ./examples/embed` does and checks that
// every peer received every block, the echo answered, and that closing the
// nodes and hosts left no goroutine behind.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "echo: ping from the app\n") {
		t.Errorf("no echo reply in the output:\n%s", got)
	}
	for p := range peers {
		for b := range blocks {
			want := fmt.Sprintf("peer %d: block %d on ch0: block payload %d\n", p, b, b)
			if !strings.Contains(got, want) {
				t.Errorf("missing %q in the output:\n%s", want, got)
			}
		}
	}
}
