package routing

import (
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/peer"
)

// draw appends to dst a uniform random sample, without replacement, of at most k of the members
// indexed by idx that are sendable (alive, with an ID, not self) and that keep admits, and returns
// the extended dst. The sendable check is here, not in the callers' filters, so that no draw can
// ever pick self or a dead member.
//
// It runs a lazy Fisher–Yates shuffle over idx: the visited prefix is a uniformly random ordering
// of the candidates, so its first k matches are a uniform k-subset of the matches. It stops as soon
// as k matches are found, so a wide audience costs about k/p steps (p the fraction that matches)
// rather than a pass over the whole pool, and keep runs only on visited candidates. idx is
// permuted in place; a permutation of a candidate set is the same set, so the caller can draw from
// the same buffer again without refilling it.
func draw(dst []int32, k int, idx []int32, members []Member, self peer.ID, keep func(*Member) bool, rng *rand.Rand) []int32 {
	found := 0
	for i := 0; i < len(idx) && found < k; i++ {
		if j := i + rng.IntN(len(idx)-i); j != i {
			idx[i], idx[j] = idx[j], idx[i]
		}
		// Cheap rejections first: keep usually refuses on org or channel before any ID compare.
		if m := &members[idx[i]]; m.Alive && keep(m) && sendable(m, self) {
			dst = append(dst, idx[i])
			found++
		}
	}
	return dst
}

// sendable is the floor under every selection: a member can be sent to only if it is alive, has an
// ID, and is not self.
func sendable(m *Member, self peer.ID) bool {
	return m.Alive && m.ID != "" && m.ID != self
}
