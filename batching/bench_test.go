package batching

import (
	"testing"
)

// BenchmarkQueueAddTake measures the pure queue: Push messages and Take a
// batch every BurstSize of them, as a busy emitter does. In steady state it
// should not allocate.
func BenchmarkQueueAddTake(b *testing.B) {
	for _, bc := range []struct {
		name   string
		budget int
		keyed  bool
	}{
		{"plain", 0, false},
		{"budget", 4 * 100, false},
		{"keyed", 0, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.MaxBatchBytes = bc.budget
			q, err := NewQueue[int](cfg)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
			}
			batch := make([]int, 0, cfg.BurstSize)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				it := Item[int]{Msg: i, Size: 100}
				if bc.keyed {
					it.Key = keys[i%len(keys)]
				}
				if err := q.Push(it); err != nil {
					b.Fatal(err)
				}
				if q.Unsent() >= cfg.BurstSize {
					batch = q.Take(batch[:0])
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkEmitterAdd measures Add throughput through the whole emitter, flush
// goroutine included, with a send function that does nothing. The clock
// covers Close, so every message counted has been handed to send.
func BenchmarkEmitterAdd(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		e := newBenchEmitter(b)
		b.ReportAllocs()
		for i := range b.N {
			if err := e.Add(Item[int]{Msg: i}); err != nil {
				b.Fatal(err)
			}
		}
		e.Close()
		reportEmitter(b, e)
	})
	b.Run("parallel", func(b *testing.B) {
		e := newBenchEmitter(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := e.Add(Item[int]{Msg: i}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		e.Close()
		reportEmitter(b, e)
	})
}

func newBenchEmitter(b *testing.B) *Emitter[int] {
	cfg := DefaultConfig()
	cfg.MaxPending = 1 << 22 // measure throughput, not ErrFull
	e, err := New(cfg, func([]int) {})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func reportEmitter(b *testing.B, e *Emitter[int]) {
	s := e.Stats()
	if s.Sent != uint64(b.N) {
		b.Fatalf("sent %d of %d messages", s.Sent, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(s.Flushes), "msgs/batch")
}
