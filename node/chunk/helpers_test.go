package chunk

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// tiny are limits under which a few bytes make a chunked block, so tests
// and fuzzers reach every edge with small inputs.
var tiny = Limits{MaxDataSize: 1 << 16, MinChunkSize: 1, MaxChunkSize: 1 << 10, MaxChunks: 1 << 12}

// randomData returns n bytes from a seeded source.
func randomData(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// mustCommit commits data or fails the test.
func mustCommit(t testing.TB, data []byte, chunkSize uint32, lim Limits) Commitment {
	t.Helper()
	c, err := Commit(data, chunkSize, lim)
	if err != nil {
		t.Fatalf("Commit(%d bytes, chunk %d): %v", len(data), chunkSize, err)
	}
	return c
}

// mustAssembly returns an empty Assembly for c or fails the test.
func mustAssembly(t testing.TB, c Commitment) *Assembly {
	t.Helper()
	a, err := NewAssembly(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hashList returns c's chunk hashes as a header carries them, each a copy.
func hashList(c Commitment) [][]byte {
	out := make([][]byte, c.Count())
	for i := range out {
		h := c.Hash(i)
		out[i] = h[:]
	}
	return out
}
