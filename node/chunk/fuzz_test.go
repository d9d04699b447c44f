package chunk

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// FuzzCommitment decodes arbitrary bytes as a Block and reads its
// commitment under tiny. It must never panic; an accepted header must be
// consistent (chunk count, bounds tiling the data, the root recomputed)
// and survive Fill and FromBlock unchanged; a refused one must say why with
// exactly one of the package's header errors.
func FuzzCommitment(f *testing.F) {
	for _, seed := range []struct {
		size      int
		chunkSize uint32
	}{{1, 1}, {10, 4}, {12, 4}, {100, 7}, {1000, 1000}, {1000, 1024}} {
		c, err := Commit(randomData(uint64(seed.size), seed.size), seed.chunkSize, tiny)
		if err != nil {
			f.Fatal(err)
		}
		b := &wire.Block{Channel: "ch", Number: 3, Publisher: []byte("p")}
		c.Fill(b)
		raw, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	single, _ := proto.Marshal(&wire.Block{Channel: "ch", Data: []byte("data"), DataHash: make([]byte, 32)})
	f.Add(single)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b wire.Block
		if proto.Unmarshal(raw, &b) != nil {
			return
		}
		c, err := FromBlock(&b, tiny)
		if err != nil {
			k := 0
			for _, e := range []error{ErrNotChunked, ErrTooLarge, ErrBadCommitment} {
				if errors.Is(err, e) {
					k++
				}
			}
			if k != 1 || c.Valid() {
				t.Fatalf("refusal %v wraps %d package errors, commitment valid %v", err, k, c.Valid())
			}
			return
		}
		n := c.Count()
		if n != len(b.ChunkHashes) || uint64(c.DataSize()) != b.DataSize || c.ChunkSize() != b.ChunkSize {
			t.Fatalf("commitment %d chunks, %d bytes, chunk %d from a header of %d, %d, %d",
				n, c.DataSize(), c.ChunkSize(), len(b.ChunkHashes), b.DataSize, b.ChunkSize)
		}
		next := 0
		for i := range n {
			s, e := c.Bounds(i)
			if s != next || e <= s || e-s > int(c.ChunkSize()) || (i < n-1 && e-s != int(c.ChunkSize())) {
				t.Fatalf("chunk %d at [%d, %d) after %d", i, s, e, next)
			}
			if h := c.Hash(i); !bytes.Equal(h[:], b.ChunkHashes[i]) {
				t.Fatalf("hash %d changed", i)
			}
			next = e
		}
		if next != c.DataSize() {
			t.Fatalf("chunks end at %d of %d bytes", next, c.DataSize())
		}
		if r := root(c.ChunkSize(), uint64(c.DataSize()), c.hashes); r != c.Root() || !bytes.Equal(r[:], b.DataHash) {
			t.Fatal("the accepted root is not the hash list's")
		}
		var again wire.Block
		c.Fill(&again)
		c2, err := FromBlock(&again, tiny)
		if err != nil || c2.Root() != c.Root() || !bytes.Equal(c2.hashes, c.hashes) {
			t.Fatalf("Fill then FromBlock: %v", err)
		}
	})
}

// FuzzAssembly commits data in chunks of chunkSize and plays ops against an
// Assembly: each op is two bytes, a chunk index and a kind (genuine,
// tampered, truncated, extended, another chunk's bytes, out of range). It
// must never panic, never hold a byte that is not the block's, and answer
// each op as the kind requires; once every chunk is added genuinely the
// data is the input and exactly one Add said Completed.
func FuzzAssembly(f *testing.F) {
	f.Add([]byte("hello, chunked world"), uint16(4), []byte{0, 0, 1, 1, 2, 0, 2, 0, 4, 2, 3, 3, 9, 5})
	f.Add([]byte{7}, uint16(1), []byte{0, 1, 0, 0, 0, 0})
	f.Add(make([]byte, 64), uint16(16), []byte{3, 4, 0, 0, 1, 0, 2, 0, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte, chunkSize uint16, ops []byte) {
		c, err := Commit(data, uint32(chunkSize), tiny)
		if err != nil {
			return
		}
		a, err := NewAssembly(c)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Count()
		completed := 0
		add := func(i int, chunk []byte, wantErr error) {
			held := a.Have(i)
			r, err := a.Add(i, chunk)
			switch {
			case wantErr == nil && held:
				if r != Duplicate || err != nil {
					t.Fatalf("held chunk %d again: %v, %v", i, r, err)
				}
			case wantErr == nil:
				if (r != Added && r != Completed) || err != nil || !a.Have(i) {
					t.Fatalf("genuine chunk %d: %v, %v", i, r, err)
				}
			case r == Duplicate && held && err == nil && wantErr == ErrTampered:
				// A held index of the right length is not hashed again.
			case r != Rejected || !errors.Is(err, wantErr) || a.Have(i) != held:
				t.Fatalf("forged chunk %d: %v, %v; want %v", i, r, err, wantErr)
			}
			if r == Completed {
				completed++
			}
		}
		for k := 0; k+1 < len(ops); k += 2 {
			i := int(ops[k]) % n
			genuine := append([]byte(nil), c.Chunk(data, i)...)
			switch ops[k+1] % 6 {
			case 0:
				add(i, genuine, nil)
			case 1:
				genuine[int(ops[k])%len(genuine)] ^= 0x5a
				add(i, genuine, ErrTampered)
			case 2:
				add(i, genuine[:len(genuine)-1], ErrLength)
			case 3:
				add(i, append(genuine, 0), ErrLength)
			case 4:
				other := c.Chunk(data, (i+1)%n)
				switch {
				case bytes.Equal(other, genuine):
					add(i, genuine, nil) // the same bytes: genuine
				case len(other) != len(genuine):
					add(i, other, ErrLength)
				default:
					add(i, other, ErrTampered)
				}
			case 5:
				add(n+int(ops[k]), genuine, ErrOutOfRange)
			}
			for j := range n {
				if got, ok := a.Chunk(j); ok && !bytes.Equal(got, c.Chunk(data, j)) {
					t.Fatalf("chunk %d held with bytes that are not the block's", j)
				}
			}
		}
		for _, r := range a.Missing() {
			for i := r.First; i <= r.Last; i++ {
				add(i, c.Chunk(data, i), nil)
			}
		}
		if got, ok := a.Data(); !ok || !bytes.Equal(got, data) || completed != 1 {
			t.Fatalf("after every chunk: complete %v, equal %v, Completed %d times", ok, bytes.Equal(got, data), completed)
		}
	})
}
