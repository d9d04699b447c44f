package discovery

import (
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential back-off with proportional jitter: the
// delay before retry number attempt (0 for the first retry) is
// min(Base·2^attempt, Max), shortened by a random fraction of up to Jitter.
// The jitter spreads the redials of many peers that lost the same bootstrap
// peer at the same moment.
type Backoff struct {
	// Base is the first delay.
	Base time.Duration
	// Max caps the delay.
	Max time.Duration
	// Jitter in [0, 1]: each delay is reduced by up to this fraction.
	Jitter float64
}

// Delay is the delay before retry number attempt (counting from 0), drawing
// the jitter from rng. It is pure: the same attempt and rng state give the
// same delay.
func (b Backoff) Delay(attempt int, rng *rand.Rand) time.Duration {
	d := b.Base
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d -= time.Duration(b.Jitter * rng.Float64() * float64(d))
	}
	return d
}
