package store_test

import (
	"fmt"
	"testing"

	"github.com/fabgossip/fabgossip/node/store"
)

// benchSizes are the envelope sizes measured: a typical small block and a
// large one (bbolt keeps it in overflow pages).
var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"128KiB", 128 << 10}}

// BenchmarkAppend measures durable append throughput: one block per
// transaction (Append) against ten (AppendBatch), with fsync and without.
// It reports blocks/s; MB/s counts envelope bytes.
func BenchmarkAppend(b *testing.B) {
	for _, sz := range benchSizes {
		for _, batch := range []int{1, 10} {
			for _, sync := range []bool{true, false} {
				name := fmt.Sprintf("%s/batch=%d/sync=%v", sz.name, batch, sync)
				b.Run(name, func(b *testing.B) {
					var opts []store.Option
					if !sync {
						opts = append(opts, store.WithNoSync())
					}
					s := openBolt(b, b.TempDir(), opts...)
					// A fixed pool of blocks, renumbered per append: building
					// envelopes is not what is measured.
					pool := testBlocks(0, batch, sz.size)
					b.SetBytes(int64(batch * sz.size))
					next := uint64(0)
					for b.Loop() {
						for i := range pool {
							pool[i].Number = next + uint64(i)
						}
						var err error
						if batch == 1 {
							err = s.Append("c", next, pool[0].Hash, pool[0].Envelope)
						} else {
							err = s.AppendBatch("c", pool)
						}
						if err != nil {
							b.Fatal(err)
						}
						next += uint64(batch)
					}
					b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "blocks/s")
				})
			}
		}
	}
}

// BenchmarkRange measures reading a stored channel back in bounded ranges
// of at most 100 blocks or 4 MiB, as catch-up serves it (checksums verified,
// envelopes copied out). One op is one Range call; blocks/s and MB/s count
// what f received.
func BenchmarkRange(b *testing.B) {
	const stored = 1000
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			s := openBolt(b, b.TempDir(), store.WithNoSync())
			for i := 0; i < stored; i += 100 {
				if err := s.AppendBatch("c", testBlocks(uint64(i), 100, sz.size)); err != nil {
					b.Fatal(err)
				}
			}
			var blocks, bytes int
			from := uint64(0)
			for b.Loop() {
				err := s.Range("c", from, 100, 4<<20, func(n uint64, env []byte) bool {
					blocks++
					bytes += len(env)
					from = n + 1
					return true
				})
				if err != nil {
					b.Fatal(err)
				}
				if from >= stored {
					from = 0
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(blocks)/secs, "blocks/s")
			b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
		})
	}
}
