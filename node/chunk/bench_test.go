package chunk

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// benchSizes are the chunk sizes measured for a block of DefaultMaxDataSize.
var benchSizes = []uint32{16 << 10, 64 << 10, 256 << 10, 1 << 20}

func sizeName(n uint32) string {
	if n >= 1<<20 {
		return fmt.Sprintf("chunk=%dMiB", n>>20)
	}
	return fmt.Sprintf("chunk=%dKiB", n>>10)
}

// BenchmarkAdd assembles a 64 MiB block from its chunks in order: a fresh
// Assembly (and its one buffer) per block, every chunk copied and hashed.
func BenchmarkAdd(b *testing.B) {
	data := randomData(30, DefaultMaxDataSize)
	for _, cs := range benchSizes {
		c := mustCommit(b, data, cs, DefaultLimits())
		b.Run(sizeName(cs), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				a := mustAssembly(b, c)
				for i := range c.Count() {
					if _, err := a.Add(i, c.Chunk(data, i)); err != nil {
						b.Fatal(err)
					}
				}
				if !a.Complete() {
					b.Fatal("incomplete")
				}
			}
		})
	}
}

// BenchmarkAddPerChunk is the alternative Assembly measured against: each
// chunk in its own allocation, joined into one slice at the end for the
// store and the application.
func BenchmarkAddPerChunk(b *testing.B) {
	data := randomData(30, DefaultMaxDataSize)
	for _, cs := range benchSizes {
		c := mustCommit(b, data, cs, DefaultLimits())
		b.Run(sizeName(cs), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				chunks := make([][]byte, c.Count())
				for i := range chunks {
					in := c.Chunk(data, i)
					chunks[i] = append([]byte(nil), in...)
					if sha256.Sum256(chunks[i]) != c.Hash(i) {
						b.Fatal("hash")
					}
				}
				out := make([]byte, 0, c.DataSize())
				for _, ch := range chunks {
					out = append(out, ch...)
				}
				if len(out) != len(data) {
					b.Fatal("short")
				}
			}
		})
	}
}

// BenchmarkHashOnly is SHA-256 over the chunks and nothing else: the floor
// under Add.
func BenchmarkHashOnly(b *testing.B) {
	data := randomData(30, DefaultMaxDataSize)
	for _, cs := range benchSizes {
		c := mustCommit(b, data, cs, DefaultLimits())
		b.Run(sizeName(cs), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for i := range c.Count() {
					sha256.Sum256(c.Chunk(data, i))
				}
			}
		})
	}
}

// BenchmarkVerify checks the header of a 64 MiB block: what every receiver
// pays once per block before any chunk.
func BenchmarkVerify(b *testing.B) {
	data := randomData(30, DefaultMaxDataSize)
	for _, cs := range benchSizes {
		c := mustCommit(b, data, cs, DefaultLimits())
		hs, r := hashList(c), c.Root()
		b.Run(sizeName(cs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Verify(cs, uint64(len(data)), hs, r[:], DefaultLimits()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
