package chunk

import (
	"fmt"
	"sort"
)

// Range is an inclusive range of chunk indexes, as wire.Range is of block
// numbers. Lists of ranges in this package are ascending and disjoint.
type Range struct {
	First, Last int
}

// Len returns the number of indexes in r.
func (r Range) Len() int { return r.Last - r.First + 1 }

// CheckRanges reports whether rs, received from a peer, is a usable list
// for a block of count chunks: at most max ranges, each First <= Last,
// ascending and disjoint, all within [0, count). It takes O(len(rs)) and
// allocates nothing; other functions here assume lists that pass it.
func CheckRanges(rs []Range, count, max int) error {
	if len(rs) > max {
		return fmt.Errorf("chunk: %d ranges, limit %d", len(rs), max)
	}
	next := 0
	for i, r := range rs {
		if r.First < next || r.First > r.Last || r.Last >= count {
			return fmt.Errorf("chunk: range %d [%d, %d] not ascending, disjoint and within %d chunks", i, r.First, r.Last, count)
		}
		next = r.Last + 1
	}
	return nil
}

// Contains reports whether index i is in rs.
func Contains(rs []Range, i int) bool {
	k := sort.Search(len(rs), func(k int) bool { return rs[k].Last >= i })
	return k < len(rs) && rs[k].First <= i
}

// nextIn returns the smallest index >= i in rs, if any.
func nextIn(rs []Range, i int) (int, bool) {
	k := sort.Search(len(rs), func(k int) bool { return rs[k].Last >= i })
	if k == len(rs) {
		return 0, false
	}
	return max(i, rs[k].First), true
}

// Subtract returns the indexes of a that are not in b: for example the
// missing chunks less those already requested.
func Subtract(a, b []Range) []Range {
	var out []Range
	k := 0
	for _, r := range a {
		for k < len(b) && b[k].Last < r.First {
			k++
		}
		first := r.First
		for j := k; j < len(b) && b[j].First <= r.Last; j++ {
			if b[j].First > first {
				out = append(out, Range{first, b[j].First - 1})
			}
			first = max(first, b[j].Last+1)
		}
		if first <= r.Last {
			out = append(out, Range{first, r.Last})
		}
	}
	return out
}
