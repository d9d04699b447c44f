package batching

import (
	"fmt"
	"time"
)

// Config holds the emitter's tunables. Start from DefaultConfig and change
// fields; New and NewQueue reject a Config that fails Validate.
type Config struct {
	// Iterations is how many successive flushes hand each message over before
	// it is dropped (Fabric's PropagateIterations). More iterations raise the
	// chance that a message reaches everyone on a lossy network at the cost of
	// proportionally more traffic. 0 disables push: messages are dropped on
	// Add and no goroutine runs.
	Iterations int

	// BurstSize is how many messages waiting for their first send trigger a
	// flush at once, without waiting for the next tick (Fabric's
	// MaxPropagationBurstSize). Smaller values lower latency under load and
	// make smaller batches; 1 flushes on every Add. Fabric counts every
	// buffered message instead, so with Iterations > 1 each Add past the
	// threshold flushes again and burns the others' iterations; counting only
	// unsent messages keeps re-sends on the Latency clock.
	BurstSize int

	// Latency is the flush period (Fabric's MaxPropagationBurstLatency): a
	// message waits at most about this long before its first send, unless the
	// byte budget holds it back. Shorter periods lower latency and make
	// smaller batches.
	Latency time.Duration

	// MaxBatchBytes caps the summed Item.Size of one batch; 0 means no cap.
	// A message larger than the cap alone is sent in a batch of its own. What
	// does not fit waits for the next flush, so a cap far below the traffic
	// rate turns into queueing delay and, eventually, ErrFull.
	MaxBatchBytes int

	// MaxPending bounds the number of buffered messages, counting those that
	// still have iterations left. When it is reached Add returns ErrFull
	// instead of growing the buffer. It must be at least BurstSize, or a burst
	// could never happen.
	MaxPending int
}

// DefaultConfig returns Fabric's defaults (1 iteration, bursts of 10, 10ms),
// no byte budget, and room for 10,000 pending messages.
func DefaultConfig() Config {
	return Config{
		Iterations:    1,
		BurstSize:     10,
		Latency:       10 * time.Millisecond,
		MaxBatchBytes: 0,
		MaxPending:    10_000,
	}
}

// Validate reports the first field that is out of range, naming the field and
// its value.
func (c Config) Validate() error {
	switch {
	case c.Iterations < 0:
		return fmt.Errorf("batching: Iterations must be >= 0, got %d", c.Iterations)
	case c.BurstSize < 1:
		return fmt.Errorf("batching: BurstSize must be >= 1, got %d", c.BurstSize)
	case c.Latency <= 0:
		return fmt.Errorf("batching: Latency must be > 0, got %v", c.Latency)
	case c.MaxBatchBytes < 0:
		return fmt.Errorf("batching: MaxBatchBytes must be >= 0 (0 = unlimited), got %d", c.MaxBatchBytes)
	case c.MaxPending < c.BurstSize:
		return fmt.Errorf("batching: MaxPending must be >= BurstSize (%d), got %d", c.BurstSize, c.MaxPending)
	}
	return nil
}
