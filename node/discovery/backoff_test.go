package discovery

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for attempt, w := range want {
		if got := b.Delay(attempt, nil); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", attempt, got, w*time.Millisecond)
		}
	}
	if got := b.Delay(1_000_000, nil); got != time.Second {
		t.Errorf("Delay(huge) = %v, want the cap", got)
	}
}

func TestBackoffJitterIsBoundedAndSeeded(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 8 * time.Second, Jitter: 0.25}
	r1 := rand.New(rand.NewPCG(1, 2))
	r2 := rand.New(rand.NewPCG(1, 2))
	for attempt := range 50 {
		full := Backoff{Base: b.Base, Max: b.Max}.Delay(attempt, nil)
		d1, d2 := b.Delay(attempt, r1), b.Delay(attempt, r2)
		if d1 != d2 {
			t.Fatalf("attempt %d: same seed gave %v and %v", attempt, d1, d2)
		}
		if d1 > full || d1 < full*3/4 {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d1, full*3/4, full)
		}
	}
}
