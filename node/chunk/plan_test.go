package chunk

import (
	"slices"
	"testing"
)

func TestCheckRanges(t *testing.T) {
	cases := []struct {
		name string
		rs   []Range
		ok   bool
	}{
		{"empty", nil, true},
		{"one", []Range{{0, 9}}, true},
		{"adjacent", []Range{{0, 1}, {2, 3}}, true},
		{"gaps", []Range{{1, 1}, {5, 9}}, true},
		{"reversed range", []Range{{3, 2}}, false},
		{"negative", []Range{{-1, 2}}, false},
		{"past the end", []Range{{5, 10}}, false},
		{"overlapping", []Range{{0, 4}, {4, 5}}, false},
		{"descending", []Range{{5, 6}, {0, 1}}, false},
		{"too many", []Range{{0, 0}, {2, 2}, {4, 4}, {6, 6}, {8, 8}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckRanges(tc.rs, 10, 4); (err == nil) != tc.ok {
				t.Fatalf("CheckRanges(%v, 10, 4) = %v, want ok %v", tc.rs, err, tc.ok)
			}
		})
	}
}

func TestSubtract(t *testing.T) {
	cases := []struct {
		name    string
		a, b    []Range
		want    []Range
		wantLen int
	}{
		{"nothing taken", []Range{{0, 9}}, nil, []Range{{0, 9}}, 10},
		{"middle", []Range{{0, 9}}, []Range{{3, 4}}, []Range{{0, 2}, {5, 9}}, 8},
		{"edges", []Range{{0, 9}}, []Range{{0, 0}, {9, 9}}, []Range{{1, 8}}, 8},
		{"all", []Range{{0, 4}, {6, 9}}, []Range{{0, 9}}, nil, 0},
		{"b spans two of a", []Range{{0, 4}, {6, 9}}, []Range{{3, 7}}, []Range{{0, 2}, {8, 9}}, 5},
		{"b outside", []Range{{5, 6}}, []Range{{0, 1}, {8, 9}}, []Range{{5, 6}}, 2},
		{"many holes", []Range{{0, 9}}, []Range{{1, 1}, {3, 3}, {5, 6}}, []Range{{0, 0}, {2, 2}, {4, 4}, {7, 9}}, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Subtract(tc.a, tc.b)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Subtract(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			n := 0
			for _, r := range got {
				n += r.Len()
			}
			if n != tc.wantLen {
				t.Fatalf("%d indexes left, want %d", n, tc.wantLen)
			}
		})
	}
}

func TestAssign(t *testing.T) {
	all := Source{}
	cases := []struct {
		name      string
		want      []Range
		sources   []Source
		perSource int
		out       []Assignment
	}{
		{"no sources", []Range{{0, 9}}, nil, 4, nil},
		{"no budget", []Range{{0, 9}}, []Source{all}, 0, nil},
		{"nothing wanted", nil, []Source{all}, 4, nil},
		{"one source, within budget", []Range{{0, 9}}, []Source{all}, 16, []Assignment{{0, []Range{{0, 9}}}}},
		{"one source, budget-bound", []Range{{0, 9}}, []Source{all}, 4, []Assignment{{0, []Range{{0, 3}}}}},
		{"striped in runs over whole holders", []Range{{0, 9}}, []Source{all, all, all}, 4,
			[]Assignment{{0, []Range{{0, 3}}}, {1, []Range{{4, 7}}}, {2, []Range{{8, 9}}}}},
		{"a run continues across wanted ranges", []Range{{0, 1}, {5, 6}}, []Source{all, all}, 4,
			[]Assignment{{0, []Range{{0, 1}, {5, 6}}}}},
		{"partial holders take what they have", []Range{{0, 9}}, []Source{{Have: []Range{{5, 9}}}, {Have: []Range{{0, 4}}}}, 8,
			[]Assignment{{0, []Range{{5, 9}}}, {1, []Range{{0, 4}}}}},
		{"the run switches where its holder's chunks end", []Range{{0, 9}}, []Source{{Have: []Range{{0, 2}}}, all}, 8,
			[]Assignment{{0, []Range{{0, 2}}}, {1, []Range{{3, 9}}}}},
		{"chunks nobody holds are skipped", []Range{{0, 99}}, []Source{{Have: []Range{{10, 11}, {90, 90}}}}, 8,
			[]Assignment{{0, []Range{{10, 11}, {90, 90}}}}},
		{"a holder without chunks gets nothing", []Range{{0, 3}}, []Source{{Have: []Range{}}, all}, 8,
			[]Assignment{{1, []Range{{0, 3}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Assign(tc.want, tc.sources, tc.perSource)
			if !slices.EqualFunc(got, tc.out, func(a, b Assignment) bool {
				return a.Source == b.Source && slices.Equal(a.Ranges, b.Ranges)
			}) {
				t.Fatalf("Assign = %v, want %v", got, tc.out)
			}
		})
	}
}

// TestAssignSkipsWithoutWalking: a wanted range of every index of the
// largest block, held by nobody but at its end, is not walked chunk by chunk.
func TestAssignSkipsWithoutWalking(t *testing.T) {
	last := ceilingChunks - 1
	src := []Source{{Have: []Range{{last, last}}}}
	allocs := testing.AllocsPerRun(10, func() {
		got := Assign([]Range{{0, last}}, src, 8)
		if len(got) != 1 || !slices.Equal(got[0].Ranges, []Range{{last, last}}) {
			t.Fatalf("Assign = %v", got)
		}
	})
	if allocs > 8 {
		t.Fatalf("Assign allocates %.0f times", allocs)
	}
}

// TestResumePull: a pull interrupted after some chunks resumes from the
// Missing ranges, less what is still in flight, from any peer.
func TestResumePull(t *testing.T) {
	data := randomData(20, 100)
	c := mustCommit(t, data, 10, tiny)
	a := mustAssembly(t, c)
	peers := []Source{{Have: []Range{{0, 9}}}, {Have: []Range{{0, 4}}}}
	first := Assign(a.Missing(), peers, 3)
	if len(first) != 2 || first[0].Chunks() != 3 || first[1].Chunks() != 2 { // peer 1 holds only 3 and 4 of the rest
		t.Fatalf("first round %v", first)
	}
	// Peer 0 answers, peer 1 is still in flight.
	for _, r := range first[0].Ranges {
		for i := r.First; i <= r.Last; i++ {
			if _, err := a.Add(i, c.Chunk(data, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	inflight := first[1].Ranges
	next := Assign(Subtract(a.Missing(), inflight), peers[:1], 100)
	want := Subtract(Subtract([]Range{{0, 9}}, first[0].Ranges), inflight)
	if len(next) != 1 || !slices.Equal(next[0].Ranges, want) {
		t.Fatalf("resumed round %v, want %v", next, want)
	}
}
