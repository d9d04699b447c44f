package chunk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"runtime"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func TestLimitsValidate(t *testing.T) {
	mod := func(f func(*Limits)) Limits { l := DefaultLimits(); f(&l); return l }
	cases := []struct {
		name  string
		lim   Limits
		field string // "" when valid
	}{
		{"default", DefaultLimits(), ""},
		{"tiny", tiny, ""},
		{"zero", Limits{}, "MaxDataSize"},
		{"data over ceiling", mod(func(l *Limits) { l.MaxDataSize = 1 << 31 }), "MaxDataSize"},
		{"min chunk 0", mod(func(l *Limits) { l.MinChunkSize = 0 }), "MinChunkSize"},
		{"max below min", mod(func(l *Limits) { l.MaxChunkSize = l.MinChunkSize - 1 }), "MaxChunkSize"},
		{"max chunk over a frame", mod(func(l *Limits) { l.MaxChunkSize = 4<<20 + 1 }), "MaxChunkSize"},
		{"no chunks", mod(func(l *Limits) { l.MaxChunks = 0 }), "MaxChunks"},
		{"too many chunks", mod(func(l *Limits) { l.MaxChunks = 1<<16 + 1 }), "MaxChunks"},
		{"max data unreachable", mod(func(l *Limits) { l.MaxChunks = 63 }), "MaxChunks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.lim.Validate()
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tc.field != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte("Limits."+tc.field))):
				t.Fatalf("Validate: %v, want an error naming Limits.%s", err, tc.field)
			}
		})
	}
}

func TestGeometry(t *testing.T) {
	lim := DefaultLimits()
	cases := []struct {
		name      string
		chunkSize uint32
		dataSize  uint64
		count     int
		err       error
	}{
		{"one byte", 64 << 10, 1, 1, nil},
		{"one chunk exactly", 64 << 10, 64 << 10, 1, nil},
		{"one byte over a chunk", 64 << 10, 64<<10 + 1, 2, nil},
		{"max in min chunks", 16 << 10, 64 << 20, 4096, nil},
		{"max in max chunks", 1 << 20, 64 << 20, 64, nil},
		{"empty", 64 << 10, 0, 0, ErrBadCommitment},
		{"one byte over max", 1 << 20, 64<<20 + 1, 0, ErrTooLarge},
		{"huge", 1 << 20, 1 << 63, 0, ErrTooLarge},
		{"chunk 0", 0, 100, 0, ErrBadCommitment},
		{"chunk below min", 16<<10 - 1, 1 << 20, 0, ErrBadCommitment},
		{"chunk over max", 1<<20 + 1, 1 << 20, 0, ErrBadCommitment},
		{"chunk max uint32", 1<<32 - 1, 1 << 20, 0, ErrBadCommitment},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := lim.Geometry(tc.chunkSize, tc.dataSize)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Geometry(%d, %d) error %v, want %v", tc.chunkSize, tc.dataSize, err, tc.err)
			}
			if n != tc.count {
				t.Fatalf("Geometry(%d, %d) = %d chunks, want %d", tc.chunkSize, tc.dataSize, n, tc.count)
			}
		})
	}
	t.Run("chunk count cap", func(t *testing.T) {
		l := tiny
		l.MaxChunks = 4
		if _, err := l.Geometry(1, 5); !errors.Is(err, ErrBadCommitment) {
			t.Fatalf("5 chunks under MaxChunks 4: %v, want ErrBadCommitment", err)
		}
		if n, err := l.Geometry(1, 4); err != nil || n != 4 {
			t.Fatalf("4 chunks under MaxChunks 4: %d, %v", n, err)
		}
	})
	t.Run("zero limits refuse everything", func(t *testing.T) {
		if _, err := (Limits{}).Geometry(1, 1); err == nil {
			t.Fatal("zero Limits accepted a header")
		}
	})
}

func TestCommit(t *testing.T) {
	data := randomData(1, 10)
	c := mustCommit(t, data, 4, tiny)
	if c.Count() != 3 || c.DataSize() != 10 || c.ChunkSize() != 4 || !c.Valid() {
		t.Fatalf("Commit(10 bytes, 4): count %d, size %d, chunk %d", c.Count(), c.DataSize(), c.ChunkSize())
	}
	for i, want := range [][2]int{{0, 4}, {4, 8}, {8, 10}} {
		s, e := c.Bounds(i)
		if s != want[0] || e != want[1] {
			t.Fatalf("Bounds(%d) = %d, %d, want %v", i, s, e, want)
		}
		if h := c.Hash(i); h != sha256.Sum256(data[s:e]) {
			t.Fatalf("Hash(%d) is not SHA-256 of the chunk", i)
		}
		if ch := c.Chunk(data, i); &ch[0] != &data[s] || cap(ch) != e-s {
			t.Fatalf("Chunk(%d) copies or leaves capacity beyond the chunk", i)
		}
	}
	if _, err := Commit(nil, 4, tiny); !errors.Is(err, ErrBadCommitment) {
		t.Fatalf("Commit(empty): %v, want ErrBadCommitment", err)
	}
	if _, err := Commit(make([]byte, 100), 4, DefaultLimits()); !errors.Is(err, ErrBadCommitment) {
		t.Fatalf("Commit with a chunk size below the limits: %v, want ErrBadCommitment", err)
	}
	if (&Commitment{}).Valid() {
		t.Fatal("the zero Commitment is valid")
	}
}

// TestRootBindsEverything: the root changes with the geometry, every chunk
// hash and their order, so the signed header commits to all of them.
func TestRootBindsEverything(t *testing.T) {
	c := mustCommit(t, randomData(2, 10), 4, tiny)
	base := c.Root()
	hs := append([]byte(nil), c.hashes...)
	swapped := append(append(append([]byte(nil), hs[HashSize:2*HashSize]...), hs[:HashSize]...), hs[2*HashSize:]...)
	plain := sha256.Sum256(hs)
	for name, r := range map[string][HashSize]byte{
		"chunk size":       root(5, 10, hs),
		"data size":        root(4, 9, hs),
		"reordered hashes": root(4, 10, swapped),
		"untagged":         plain,
	} {
		if r == base {
			t.Errorf("%s: same root", name)
		}
	}
}

func TestVerify(t *testing.T) {
	data := randomData(3, 10)
	c := mustCommit(t, data, 4, tiny)
	r := c.Root()
	good := func() (uint32, uint64, [][]byte, []byte) { return 4, 10, hashList(c), r[:] }
	cases := []struct {
		name   string
		mutate func(cs *uint32, ds *uint64, hs *[][]byte, root *[]byte)
		err    error
	}{
		{"as committed", func(*uint32, *uint64, *[][]byte, *[]byte) {}, nil},
		{"flipped hash bit", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { (*hs)[1][7] ^= 1 }, ErrBadCommitment},
		{"flipped root bit", func(_ *uint32, _ *uint64, _ *[][]byte, root *[]byte) { (*root)[0] ^= 0x80 }, ErrBadCommitment},
		{"short root", func(_ *uint32, _ *uint64, _ *[][]byte, root *[]byte) { *root = (*root)[:31] }, ErrBadCommitment},
		{"short hash", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { (*hs)[2] = (*hs)[2][:31] }, ErrBadCommitment},
		{"long hash", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { (*hs)[0] = append((*hs)[0], 0) }, ErrBadCommitment},
		{"hash dropped", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { *hs = (*hs)[:2] }, ErrBadCommitment},
		{"hash added", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { *hs = append(*hs, (*hs)[0]) }, ErrBadCommitment},
		{"hashes swapped", func(_ *uint32, _ *uint64, hs *[][]byte, _ *[]byte) { (*hs)[0], (*hs)[1] = (*hs)[1], (*hs)[0] }, ErrBadCommitment},
		{"data size shrunk", func(_ *uint32, ds *uint64, _ *[][]byte, _ *[]byte) { *ds = 9 }, ErrBadCommitment},
		{"data size grown", func(_ *uint32, ds *uint64, _ *[][]byte, _ *[]byte) { *ds = 12 }, ErrBadCommitment},
		{"data size over the limit", func(_ *uint32, ds *uint64, _ *[][]byte, _ *[]byte) { *ds = tiny.MaxDataSize + 1 }, ErrTooLarge},
		{"chunk size changed", func(cs *uint32, _ *uint64, _ *[][]byte, _ *[]byte) { *cs = 5 }, ErrBadCommitment},
		{"chunk size 0", func(cs *uint32, _ *uint64, _ *[][]byte, _ *[]byte) { *cs = 0 }, ErrBadCommitment},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, ds, hs, root := good()
			tc.mutate(&cs, &ds, &hs, &root)
			got, err := Verify(cs, ds, hs, root, tiny)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.err)
			}
			if err == nil && (got.Root() != c.Root() || !bytes.Equal(got.hashes, c.hashes) || got.Count() != 3) {
				t.Fatal("Verify returned another commitment than Commit")
			}
			if err != nil && got.Valid() {
				t.Fatal("Verify returned a valid commitment with its error")
			}
		})
	}
}

// TestVerifyDoesNotAlias: the commitment outlives the frame it came in.
func TestVerifyDoesNotAlias(t *testing.T) {
	c := mustCommit(t, randomData(4, 10), 4, tiny)
	hs, r := hashList(c), c.Root()
	got, err := Verify(4, 10, hs, r[:], tiny)
	if err != nil {
		t.Fatal(err)
	}
	hs[0][0] ^= 1
	r[0] ^= 1
	if got.Hash(0) != c.Hash(0) || got.Root() != c.Root() {
		t.Fatal("the commitment changed with the caller's buffers")
	}
}

func TestFromBlock(t *testing.T) {
	data := randomData(5, 1000)
	c := mustCommit(t, data, 64, tiny)
	chunked := func() *wire.Block {
		b := &wire.Block{Channel: "ch", Number: 7, Data: []byte("replaced")}
		c.Fill(b)
		return b
	}
	single := func() *wire.Block {
		h := sha256.Sum256(data)
		return &wire.Block{Channel: "ch", Number: 7, DataHash: h[:], Data: data}
	}
	cases := []struct {
		name  string
		block func() *wire.Block
		err   error
	}{
		{"chunked", chunked, nil},
		{"single frame", single, ErrNotChunked},
		{"empty single frame", func() *wire.Block { return &wire.Block{} }, ErrNotChunked},
		{"single frame with a chunk size", func() *wire.Block { b := single(); b.ChunkSize = 64; return b }, ErrBadCommitment},
		{"single frame with a data size", func() *wire.Block { b := single(); b.DataSize = 1000; return b }, ErrBadCommitment},
		{"chunked with data", func() *wire.Block { b := chunked(); b.Data = data; return b }, ErrBadCommitment},
		{"chunked with the data's hash as root", func() *wire.Block { b := chunked(); b.DataHash = single().DataHash; return b }, ErrBadCommitment},
		{"chunked without a root", func() *wire.Block { b := chunked(); b.DataHash = nil; return b }, ErrBadCommitment},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromBlock(tc.block(), tiny)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("FromBlock: %v, want %v", err, tc.err)
			}
			if err == nil && got.Root() != c.Root() {
				t.Fatal("FromBlock returned another commitment")
			}
		})
	}
}

// TestHeaderRoundTrip: a header survives the wire and its commitment comes
// back equal; a chunked header of a 64 MiB block in 16 KiB chunks fits one
// frame with room to spare.
func TestHeaderRoundTrip(t *testing.T) {
	data := randomData(6, DefaultMaxDataSize)
	c := mustCommit(t, data, DefaultMinChunkSize, DefaultLimits())
	b := &wire.Block{Channel: "ch", Number: 1, Publisher: []byte("p")}
	c.Fill(b)
	raw, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 160<<10 {
		t.Fatalf("header of %d chunks is %d bytes, want under 160 KiB", c.Count(), len(raw))
	}
	var back wire.Block
	if err := proto.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	got, err := FromBlock(&back, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got.Root() != c.Root() || !bytes.Equal(got.hashes, c.hashes) || got.DataSize() != len(data) || got.ChunkSize() != DefaultMinChunkSize {
		t.Fatal("the commitment changed on the wire")
	}
}

// TestSingleFrameEncodingUnchanged: a block without chunks encodes exactly
// as before the chunk fields existed, field by field.
func TestSingleFrameEncodingUnchanged(t *testing.T) {
	b := &wire.Block{
		Channel: "ch", Number: 300, PreviousHash: []byte{1, 2}, DataHash: []byte{3},
		Data: []byte("data"), Publisher: []byte("pub"), PublishedAt: 42,
		PublisherCertificate: &wire.Certificate{Body: []byte("b"), Signature: []byte("s")},
	}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := proto.Marshal(b.PublisherCertificate)
	var want []byte
	bytesField := func(f protowire.Number, v []byte) {
		want = protowire.AppendTag(want, f, protowire.BytesType)
		want = protowire.AppendBytes(want, v)
	}
	varintField := func(f protowire.Number, v uint64) {
		want = protowire.AppendTag(want, f, protowire.VarintType)
		want = protowire.AppendVarint(want, v)
	}
	bytesField(1, []byte("ch"))
	varintField(2, 300)
	bytesField(3, []byte{1, 2})
	bytesField(4, []byte{3})
	bytesField(5, []byte("data"))
	bytesField(6, []byte("pub"))
	bytesField(7, cert)
	varintField(8, 42)
	if !bytes.Equal(got, want) {
		t.Fatalf("single-frame block encodes as\n%x\nwant\n%x", got, want)
	}
}

// TestVerifyRefusesBeforeAllocating: a header whose numbers are refused
// costs a few hundred bytes of error, not memory in proportion to what it
// claims, and a header whose hash list is wrong is refused before the list
// is copied.
func TestVerifyRefusesBeforeAllocating(t *testing.T) {
	lim := DefaultLimits()
	full := make([][]byte, DefaultMaxChunks)
	for i := range full {
		full[i] = make([]byte, HashSize)
	}
	shortLast := append(append([][]byte(nil), full[:len(full)-1]...), make([]byte, HashSize-1))
	root := make([]byte, HashSize)
	cases := []struct {
		name      string
		chunkSize uint32
		dataSize  uint64
		hashes    [][]byte
	}{
		{"claims 2^63 bytes", 1 << 20, 1 << 63, full[:1]},
		{"claims 2^32 one-byte chunks", 1, 1 << 32, full[:1]},
		{"claims the maximum, carries one hash", DefaultMinChunkSize, DefaultMaxDataSize, full[:1]},
		{"last hash short", DefaultMinChunkSize, DefaultMaxDataSize, shortLast},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const runs = 100
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				if _, err := Verify(tc.chunkSize, tc.dataSize, tc.hashes, root, lim); err == nil {
					t.Fatal("accepted")
				}
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1<<10 {
				t.Fatalf("refusal allocates %d bytes", per)
			}
		})
	}
}
