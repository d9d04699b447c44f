package node

import (
	"github.com/fabgossip/fabgossip/transport/wire"
)

// maxRanges bounds how many ranges a peer accepts in one digest or fetch
// request, so a hostile digest cannot make it allocate or iterate without
// limit.
const maxRanges = 256

// toRanges compresses ascending, distinct block numbers into inclusive ranges.
func toRanges(nums []uint64) []*wire.Range {
	var out []*wire.Range
	for _, n := range nums {
		if k := len(out); k > 0 && out[k-1].Last+1 == n {
			out[k-1].Last = n
			continue
		}
		out = append(out, &wire.Range{First: n, Last: n})
	}
	return out
}

// validRanges reports whether rs is usable: at most maxRanges ranges, each
// with First <= Last.
func validRanges(rs []*wire.Range) bool {
	if len(rs) > maxRanges {
		return false
	}
	for _, r := range rs {
		if r == nil || r.First > r.Last {
			return false
		}
	}
	return true
}

// eachNumber calls f for every number in rs, in range order, until f returns
// false or limit numbers were visited. It never materialises a range, so a
// range [0, 2^64-1] costs at most limit calls.
func eachNumber(rs []*wire.Range, limit int, f func(uint64) bool) {
	seen := 0
	for _, r := range rs {
		for n := r.First; ; n++ {
			if seen >= limit || !f(n) {
				return
			}
			seen++
			if n == r.Last {
				break
			}
		}
	}
}
