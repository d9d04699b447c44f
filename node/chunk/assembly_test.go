package chunk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAdd runs one chunk against a fresh Assembly of 10 bytes in chunks of
// 4 (chunks of 4, 4 and 2 bytes) that holds chunk 0 already.
func TestAdd(t *testing.T) {
	data := randomData(10, 10)
	c := mustCommit(t, data, 4, tiny)
	chunk := func(i int) []byte { return append([]byte(nil), c.Chunk(data, i)...) }
	flip := func(b []byte, at int) []byte { b[at] ^= 1; return b }
	cases := []struct {
		name   string
		index  int
		data   []byte
		result Result
		err    error
	}{
		{"next chunk", 1, chunk(1), Added, nil},
		{"last chunk, short", 2, chunk(2), Added, nil},
		{"duplicate", 0, chunk(0), Duplicate, nil},
		{"tampered duplicate, not hashed, not stored", 0, flip(chunk(0), 0), Duplicate, nil},
		{"negative index", -1, chunk(0), Rejected, ErrOutOfRange},
		{"index past the end", 3, chunk(2), Rejected, ErrOutOfRange},
		{"tampered first byte", 1, flip(chunk(1), 0), Rejected, ErrTampered},
		{"tampered last byte", 2, flip(chunk(2), 1), Rejected, ErrTampered},
		{"chunk 2's bytes at index 1 (reordered)", 1, append(chunk(2), 0, 0), Rejected, ErrTampered},
		{"chunk 1's bytes at index 2 (reordered)", 2, chunk(1)[:2], Rejected, ErrTampered},
		{"truncated", 1, chunk(1)[:3], Rejected, ErrLength},
		{"extended", 1, append(chunk(1), 0), Rejected, ErrLength},
		{"last chunk extended to a full chunk", 2, append(chunk(2), 0, 0), Rejected, ErrLength},
		{"last chunk truncated", 2, chunk(2)[:1], Rejected, ErrLength},
		{"empty", 1, nil, Rejected, ErrLength},
		{"duplicate truncated", 0, chunk(0)[:3], Rejected, ErrLength},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAssembly(t, c)
			if r, err := a.Add(0, chunk(0)); r != Added || err != nil {
				t.Fatalf("Add(0) = %v, %v", r, err)
			}
			r, err := a.Add(tc.index, tc.data)
			if r != tc.result || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Add(%d) = %v, %v; want %v, %v", tc.index, r, err, tc.result, tc.err)
			}
			wantHeld := 1
			if r == Added {
				wantHeld = 2
			}
			if a.Held() != wantHeld || a.Have(tc.index) != (r != Rejected || tc.index == 0) {
				t.Fatalf("held %d chunks, Have(%d) %v after %v", a.Held(), tc.index, a.Have(tc.index), r)
			}
			for i := range c.Count() {
				if got, ok := a.Chunk(i); ok && !bytes.Equal(got, c.Chunk(data, i)) {
					t.Fatalf("chunk %d held with bytes that are not the block's", i)
				}
			}
		})
	}
}

// TestAddCompletesOnce: the last missing chunk, whichever it is, completes
// the block, and only it.
func TestAddCompletesOnce(t *testing.T) {
	data := randomData(11, 10)
	c := mustCommit(t, data, 4, tiny)
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 2, 0, 0, 1, 1, 2}} {
		a := mustAssembly(t, c)
		var results []Result
		for _, i := range order {
			r, err := a.Add(i, c.Chunk(data, i))
			if err != nil {
				t.Fatalf("order %v: Add(%d): %v", order, i, err)
			}
			results = append(results, r)
			if _, ok := a.Data(); ok != (r == Completed || a.Complete()) {
				t.Fatalf("order %v: Data available %v after %v", order, ok, r)
			}
		}
		if n := count(results, Completed); n != 1 {
			t.Fatalf("order %v: %d Completed in %v", order, n, results)
		}
		if got, ok := a.Data(); !ok || !bytes.Equal(got, data) || cap(got) != len(data) {
			t.Fatalf("order %v: Data() is not the block", order)
		}
	}
}

func count(rs []Result, want Result) int {
	n := 0
	for _, r := range rs {
		if r == want {
			n++
		}
	}
	return n
}

// TestCutThrough: a verified chunk is readable at once, before the block is
// complete, from the one buffer the block lives in; the caller's slice is
// not retained.
func TestCutThrough(t *testing.T) {
	data := randomData(12, 10)
	c := mustCommit(t, data, 4, tiny)
	a := mustAssembly(t, c)
	if _, ok := a.Chunk(1); ok {
		t.Fatal("Chunk(1) before it arrived")
	}
	in := append([]byte(nil), c.Chunk(data, 1)...)
	if r, err := a.Add(1, in); r != Added || err != nil {
		t.Fatalf("Add(1) = %v, %v", r, err)
	}
	got, ok := a.Chunk(1)
	if !ok || !bytes.Equal(got, c.Chunk(data, 1)) {
		t.Fatal("Chunk(1) is not chunk 1 once verified")
	}
	if &got[0] == &in[0] {
		t.Fatal("the Assembly kept the caller's slice")
	}
	if cap(got) != len(got) {
		t.Fatalf("Chunk(1) has capacity %d beyond its %d bytes: an append would overwrite chunk 2", cap(got), len(got))
	}
	in[0] ^= 1 // the caller reuses its buffer
	if again, _ := a.Chunk(1); !bytes.Equal(again, c.Chunk(data, 1)) {
		t.Fatal("the held chunk changed with the caller's buffer")
	}
	if r, err := a.Add(0, c.Chunk(data, 0)); r != Added || err != nil {
		t.Fatalf("Add(0) = %v, %v", r, err)
	}
	first, _ := a.Chunk(0)
	if &first[len(first)-1:][0] != &a.buf[3] || &got[0] != &a.buf[4] {
		t.Fatal("chunks do not share the block's one buffer")
	}
	if _, ok := a.Data(); ok {
		t.Fatal("Data() before the block is complete")
	}
}

// TestTamperedChunkLeavesNoTrace: a refused chunk is neither held nor
// readable, and the genuine chunk is accepted after it.
func TestTamperedChunkLeavesNoTrace(t *testing.T) {
	data := randomData(13, 10)
	c := mustCommit(t, data, 4, tiny)
	a := mustAssembly(t, c)
	bad := append([]byte(nil), c.Chunk(data, 1)...)
	bad[2] ^= 0xff
	if r, err := a.Add(1, bad); r != Rejected || !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered Add = %v, %v", r, err)
	}
	if _, ok := a.Chunk(1); ok || a.Have(1) || a.Held() != 0 {
		t.Fatal("a tampered chunk is held")
	}
	if !slices.Equal(a.Missing(), []Range{{0, 2}}) {
		t.Fatalf("Missing() = %v after a refused chunk", a.Missing())
	}
	if r, err := a.Add(1, c.Chunk(data, 1)); r != Added || err != nil {
		t.Fatalf("genuine Add after a tampered one = %v, %v", r, err)
	}
}

func TestMissingAndRanges(t *testing.T) {
	data := randomData(14, 130) // 130 chunks of 1 byte: three bitset words
	c := mustCommit(t, data, 1, tiny)
	cases := []struct {
		name    string
		held    []int
		missing []Range
		ranges  []Range
	}{
		{"none", nil, []Range{{0, 129}}, nil},
		{"first", []int{0}, []Range{{1, 129}}, []Range{{0, 0}}},
		{"last", []int{129}, []Range{{0, 128}}, []Range{{129, 129}}},
		{"word boundaries", []int{63, 64, 127, 128}, []Range{{0, 62}, {65, 126}, {129, 129}}, []Range{{63, 64}, {127, 128}}},
		{"alternate", []int{1, 3, 5}, []Range{{0, 0}, {2, 2}, {4, 4}, {6, 129}}, []Range{{1, 1}, {3, 3}, {5, 5}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustAssembly(t, c)
			for _, i := range tc.held {
				if _, err := a.Add(i, c.Chunk(data, i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := a.Missing(); !slices.Equal(got, tc.missing) {
				t.Fatalf("Missing() = %v, want %v", got, tc.missing)
			}
			if got := a.Ranges(); !slices.Equal(got, tc.ranges) {
				t.Fatalf("Ranges() = %v, want %v", got, tc.ranges)
			}
		})
	}
	t.Run("all of a full word", func(t *testing.T) {
		c := mustCommit(t, data[:128], 1, tiny)
		a := mustAssembly(t, c)
		if !slices.Equal(a.Missing(), []Range{{0, 127}}) {
			t.Fatalf("Missing() = %v", a.Missing())
		}
		for i := range 128 {
			if _, err := a.Add(i, c.Chunk(data, i)); err != nil {
				t.Fatal(err)
			}
		}
		if a.Missing() != nil || !slices.Equal(a.Ranges(), []Range{{0, 127}}) {
			t.Fatalf("complete: Missing() = %v, Ranges() = %v", a.Missing(), a.Ranges())
		}
	})
}

func TestAssembled(t *testing.T) {
	data := randomData(15, 10)
	c := mustCommit(t, data, 4, tiny)
	a, err := Assembled(c, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := a.Data(); !ok || &got[0] != &data[0] || a.Missing() != nil {
		t.Fatal("Assembled is not complete over the caller's data")
	}
	if r, err := a.Add(2, c.Chunk(data, 2)); r != Duplicate || err != nil {
		t.Fatalf("Add to a complete Assembly = %v, %v", r, err)
	}
	bad := append([]byte(nil), data...)
	bad[9] ^= 1
	if _, err := Assembled(c, bad); !errors.Is(err, ErrTampered) {
		t.Fatalf("Assembled over tampered data: %v", err)
	}
	if _, err := Assembled(c, data[:9]); !errors.Is(err, ErrLength) {
		t.Fatalf("Assembled over truncated data: %v", err)
	}
	if _, err := Assembled(Commitment{}, data); !errors.Is(err, ErrBadCommitment) {
		t.Fatalf("Assembled with the zero Commitment: %v", err)
	}
}

func TestNewAssemblyRefusesZeroCommitment(t *testing.T) {
	if _, err := NewAssembly(Commitment{}); !errors.Is(err, ErrBadCommitment) {
		t.Fatalf("NewAssembly(Commitment{}): %v", err)
	}
}

// TestAllocatesOnFirstChunk: a header alone costs no buffer, and no chunk
// after the first allocates.
func TestAllocatesOnFirstChunk(t *testing.T) {
	data := randomData(16, 64<<10)
	c := mustCommit(t, data, 1<<10, tiny)
	a := mustAssembly(t, c)
	if a.buf != nil {
		t.Fatal("buffer allocated before any chunk arrived")
	}
	if _, err := a.Add(0, c.Chunk(data, 0)); err != nil {
		t.Fatal(err)
	}
	i := 1
	allocs := testing.AllocsPerRun(62, func() {
		if _, err := a.Add(i, c.Chunk(data, i)); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("Add allocates %.1f times per chunk after the first", allocs)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{Rejected: "rejected", Added: "added", Completed: "completed", Duplicate: "duplicate", 9: "unknown"} {
		if r.String() != want {
			t.Errorf("Result(%d).String() = %q, want %q", r, r.String(), want)
		}
	}
}

// TestLargestBlock assembles a block of DefaultMaxDataSize in the most
// chunks DefaultLimits allow, in a shuffled order with every chunk sent
// twice, as from two senders.
func TestLargestBlock(t *testing.T) {
	data := randomData(17, DefaultMaxDataSize)
	c := mustCommit(t, data, DefaultMinChunkSize, DefaultLimits())
	if c.Count() != DefaultMaxChunks {
		t.Fatalf("%d chunks, want %d", c.Count(), DefaultMaxChunks)
	}
	order := append(seq(c.Count()), seq(c.Count())...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	a := mustAssembly(t, c)
	var got [Duplicate + 1]int
	for _, i := range order {
		r, err := a.Add(i, c.Chunk(data, i))
		if err != nil {
			t.Fatalf("Add(%d): %v", i, err)
		}
		got[r]++
	}
	if got[Added] != c.Count()-1 || got[Completed] != 1 || got[Duplicate] != c.Count() {
		t.Fatalf("results %v", got)
	}
	if out, ok := a.Data(); !ok || !bytes.Equal(out, data) {
		t.Fatal("the assembled block is not the input")
	}
}
