package chunk

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// drawBlock draws data and a chunk size under tiny: from 1 byte to the
// maximum, with chunk sizes that divide the size exactly, exceed it, or
// leave a short last chunk, in at most maxChunks chunks.
func drawBlock(t *rapid.T, maxChunks int) ([]byte, uint32) {
	size := rapid.OneOf(
		rapid.Just(1),
		rapid.Just(int(tiny.MaxDataSize)),
		rapid.IntRange(1, 4096),
	).Draw(t, "size")
	chunkSize := rapid.OneOf(
		rapid.Just(uint32(1)),
		rapid.Uint32Range(1, 1024),
		rapid.Custom(func(t *rapid.T) uint32 { // an exact divisor
			n := rapid.IntRange(1, 64).Draw(t, "parts")
			return uint32(max(1, size/n))
		}),
	).Draw(t, "chunkSize")
	chunkSize = max(chunkSize, uint32((size+maxChunks-1)/maxChunks))
	chunkSize = min(chunkSize, tiny.MaxChunkSize)
	return randomData(rapid.Uint64().Draw(t, "seed"), size), chunkSize
}

// TestAssemblyProperties feeds an Assembly the chunks of a random block in
// random order, each genuine chunk possibly several times, interleaved with
// tampered, truncated, extended, misplaced and out-of-range ones, and
// checks after every step against a set of held indexes:
//   - a genuine chunk is Added (Completed when it is the last) the first
//     time and Duplicate afterwards;
//   - a forged chunk is Rejected with the error of its forgery, or is a
//     Duplicate of a held index of the right length, and never stored;
//   - Have, Held, Missing and Ranges agree with the set, and Missing and
//     Ranges are valid, disjoint and together cover every chunk;
//   - exactly one step returns Completed, and Data is then the input.
func TestAssemblyProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Every step checks the whole state: few chunks keep that quick.
		data, chunkSize := drawBlock(t, 300)
		c, err := Commit(data, chunkSize, tiny)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAssembly(c)
		if err != nil {
			t.Fatal(err)
		}
		n := c.Count()
		order := rapid.Permutation(seq(n)).Draw(t, "order")
		held := make([]bool, n)
		completed := 0
		for _, i := range order {
			for range rapid.IntRange(1, 3).Draw(t, "copies") {
				forgeries := rapid.IntRange(0, 2).Draw(t, "forgeries")
				for range forgeries {
					j, bad, wantErr := forge(t, c, data, i)
					r, err := a.Add(j, bad)
					switch {
					case r == Duplicate && err == nil && j >= 0 && j < n && held[j]:
						s, e := c.Bounds(j)
						if len(bad) != e-s {
							t.Fatalf("Duplicate for a chunk of %d bytes at %d, want %d", len(bad), j, e-s)
						}
					case r != Rejected || !errors.Is(err, wantErr):
						t.Fatalf("forged chunk at %d (%d bytes): %v, %v; want Rejected, %v", j, len(bad), r, err, wantErr)
					}
				}
				want := Added
				switch {
				case held[i]:
					want = Duplicate
				case a.Held() == n-1:
					want = Completed
				}
				r, err := a.Add(i, c.Chunk(data, i))
				if r != want || err != nil {
					t.Fatalf("genuine chunk %d: %v, %v; want %v", i, r, err, want)
				}
				if r == Completed {
					completed++
				}
				held[i] = true
				checkState(t, a, c, data, held)
			}
		}
		if completed != 1 {
			t.Fatalf("Completed %d times", completed)
		}
		if got, ok := a.Data(); !ok || !bytes.Equal(got, data) {
			t.Fatal("the assembled data is not the input")
		}
	})
}

// forge returns a chunk meant for index i but forged one way, its index
// and the error it must be rejected with (unless it duplicates a held one).
func forge(t *rapid.T, c Commitment, data []byte, i int) (int, []byte, error) {
	genuine := append([]byte(nil), c.Chunk(data, i)...)
	n := c.Count()
	switch rapid.IntRange(0, 4).Draw(t, "forgery") {
	case 0: // tampered
		at := rapid.IntRange(0, len(genuine)-1).Draw(t, "at")
		genuine[at] ^= byte(rapid.IntRange(1, 255).Draw(t, "xor"))
		return i, genuine, ErrTampered
	case 1: // truncated
		return i, genuine[:rapid.IntRange(0, len(genuine)-1).Draw(t, "keep")], ErrLength
	case 2: // extended
		return i, append(genuine, make([]byte, rapid.IntRange(1, 9).Draw(t, "extra"))...), ErrLength
	case 3: // another chunk's bytes (reordered)
		j := rapid.IntRange(0, n-1).Draw(t, "other")
		other := c.Chunk(data, j)
		if bytes.Equal(other, genuine) { // identical content: tamper instead
			genuine[0] ^= 1
			return i, genuine, ErrTampered
		}
		if len(other) != len(genuine) {
			return i, other, ErrLength
		}
		return i, other, ErrTampered
	default: // out of range
		return rapid.SampledFrom([]int{-1, n, n + 1, -1 << 31}).Draw(t, "index"), genuine, ErrOutOfRange
	}
}

// checkState compares a with the set of held indexes.
func checkState(t *rapid.T, a *Assembly, c Commitment, data []byte, held []bool) {
	var want []Range
	nHeld := 0
	for i, h := range held {
		if a.Have(i) != h {
			t.Fatalf("Have(%d) = %v, want %v", i, a.Have(i), h)
		}
		if h {
			nHeld++
			got, ok := a.Chunk(i)
			if !ok || !bytes.Equal(got, c.Chunk(data, i)) {
				t.Fatalf("held chunk %d is not the block's", i)
			}
			if k := len(want); k > 0 && want[k-1].Last+1 == i {
				want[k-1].Last = i
			} else {
				want = append(want, Range{i, i})
			}
		}
	}
	if a.Held() != nHeld || a.Complete() != (nHeld == len(held)) {
		t.Fatalf("Held() %d, Complete() %v with %d of %d held", a.Held(), a.Complete(), nHeld, len(held))
	}
	ranges, missing := a.Ranges(), a.Missing()
	if !slices.Equal(ranges, want) {
		t.Fatalf("Ranges() = %v, want %v", ranges, want)
	}
	if !slices.Equal(missing, Subtract([]Range{{0, len(held) - 1}}, want)) {
		t.Fatalf("Missing() = %v is not the complement of %v", missing, want)
	}
	for _, rs := range [][]Range{ranges, missing} {
		if err := CheckRanges(rs, len(held), len(held)); err != nil {
			t.Fatal(err)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestHeaderTamperProperties: any change to a committed header (a bit of a
// hash or of the root, the sizes, the hash list's length or order) is
// refused, unless it leaves the header as it was.
func TestHeaderTamperProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		data, chunkSize := drawBlock(t, tiny.MaxChunks)
		c, err := Commit(data, chunkSize, tiny)
		if err != nil {
			t.Fatal(err)
		}
		hs, r := hashList(c), c.Root()
		cs, ds, root := chunkSize, uint64(len(data)), r[:]
		same := false
		switch rapid.IntRange(0, 6).Draw(t, "change") {
		case 0:
			k := rapid.IntRange(0, len(hs)-1).Draw(t, "hash")
			hs[k][rapid.IntRange(0, HashSize-1).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		case 1:
			root[rapid.IntRange(0, HashSize-1).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		case 2:
			ds = uint64(rapid.IntRange(1, int(tiny.MaxDataSize)).Filter(func(v int) bool { return v != len(data) }).Draw(t, "dataSize"))
		case 3:
			cs = rapid.Uint32Range(1, tiny.MaxChunkSize).Filter(func(v uint32) bool { return v != chunkSize }).Draw(t, "chunkSize")
		case 4:
			hs = hs[:len(hs)-1]
		case 5:
			hs = append(hs, hs[rapid.IntRange(0, len(hs)-1).Draw(t, "dup")])
		case 6:
			if len(hs) < 2 {
				hs = nil
				break
			}
			j := rapid.IntRange(0, len(hs)-2).Draw(t, "swap")
			same = bytes.Equal(hs[j], hs[j+1]) // equal chunks: the same header
			hs[j], hs[j+1] = hs[j+1], hs[j]
		}
		_, err = Verify(cs, ds, hs, root, tiny)
		if same && err != nil {
			t.Fatalf("unchanged header refused: %v", err)
		}
		if !same && err == nil {
			t.Fatal("changed header accepted")
		}
	})
}

// TestAssignProperties: every chunk assigned is wanted and held by its
// source, no chunk goes to two sources, no source exceeds its budget, the
// ranges are valid, and a wanted chunk left out is held by no source with
// budget left.
func TestAssignProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 300).Draw(t, "chunks")
		drawSet := func(label string) []Range {
			var rs []Range
			p := rapid.Float64Range(0, 1).Draw(t, label+"Density")
			for i := range n {
				if rapid.Float64Range(0, 1).Draw(t, label) < p {
					if k := len(rs); k > 0 && rs[k-1].Last+1 == i {
						rs[k-1].Last = i
					} else {
						rs = append(rs, Range{i, i})
					}
				}
			}
			return rs
		}
		want := drawSet("want")
		sources := make([]Source, rapid.IntRange(0, 5).Draw(t, "sources"))
		for s := range sources {
			if !rapid.Bool().Draw(t, "whole") {
				sources[s].Have = drawSet("have")
				if sources[s].Have == nil {
					sources[s].Have = []Range{}
				}
			}
		}
		per := rapid.IntRange(0, 40).Draw(t, "perSource")
		out := Assign(want, sources, per)

		owner := map[int]int{}
		used := make([]int, len(sources))
		prev := -1
		for _, as := range out {
			if as.Source <= prev || as.Source >= len(sources) || len(as.Ranges) == 0 {
				t.Fatalf("assignment to source %d out of order or empty: %v", as.Source, out)
			}
			prev = as.Source
			if err := CheckRanges(as.Ranges, n, n); err != nil {
				t.Fatal(err)
			}
			for k, r := range as.Ranges {
				if k > 0 && as.Ranges[k-1].Last+1 == r.First {
					t.Fatalf("adjacent ranges not merged: %v", as.Ranges)
				}
				for i := r.First; i <= r.Last; i++ {
					if !Contains(want, i) || !sources[as.Source].has(i) {
						t.Fatalf("chunk %d to source %d: wanted %v, held %v", i, as.Source, Contains(want, i), sources[as.Source].has(i))
					}
					if o, dup := owner[i]; dup {
						t.Fatalf("chunk %d to sources %d and %d", i, o, as.Source)
					}
					owner[i] = as.Source
				}
			}
			used[as.Source] = as.Chunks()
			if used[as.Source] > per {
				t.Fatalf("source %d asked for %d chunks, budget %d", as.Source, used[as.Source], per)
			}
		}
		for _, r := range want {
			for i := r.First; i <= r.Last; i++ {
				if _, ok := owner[i]; ok {
					continue
				}
				for s, src := range sources {
					if src.has(i) && used[s] < per {
						t.Fatalf("chunk %d left out though source %d holds it with %d of %d used", i, s, used[s], per)
					}
				}
			}
		}
	})
}

// TestSubtractProperties compares Subtract with set difference.
func TestSubtractProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 200).Draw(t, "n")
		draw := func(label string) ([]Range, []bool) {
			in := rapid.SliceOfN(rapid.Bool(), n, n).Draw(t, label)
			var rs []Range
			for i, ok := range in {
				if !ok {
					continue
				}
				if k := len(rs); k > 0 && rs[k-1].Last+1 == i {
					rs[k-1].Last = i
				} else {
					rs = append(rs, Range{i, i})
				}
			}
			return rs, in
		}
		a, inA := draw("a")
		b, inB := draw("b")
		got := Subtract(a, b)
		if err := CheckRanges(got, n, n); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if Contains(got, i) != (inA[i] && !inB[i]) {
				t.Fatalf("index %d: in result %v, in a %v, in b %v", i, Contains(got, i), inA[i], inB[i])
			}
		}
	})
}
