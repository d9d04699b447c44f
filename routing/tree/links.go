package tree

import (
	"cmp"
	"slices"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Candidate is a peer that self may link with in a channel's trees.
type Candidate struct {
	ID peer.ID
	// CrossOrg marks a door: a link between external peers of two different orgs.
	CrossOrg bool
}

// Candidates returns the links of channel for v.Self, ordered by ID. They are the only peers the
// machine ever addresses in that channel:
//
//   - every member of self's org that is [routing.Eligible] for channel;
//   - if self is external, doors: external eligible members of the channel's other orgs, doors per
//     pair of orgs. Each org's external eligible peers (self included) are ordered by a hash of
//     channel and ID, and the i-th of one org is paired with the i-th of the other for
//     i < min(doors, the longer list), the shorter list wrapping. Both ends compute the same pairs
//     from the same view, and every two orgs with eligible external peers are linked.
//
// A self that is not a member of channel (its org is not in the channel or it holds no StateInfo
// for it) has no links.
func Candidates(v routing.View, channel string, doors int) []Candidate {
	self := v.Self
	if self.ID == "" || !v.OrgInChannel(self.Org, channel) || !self.Channels[channel] {
		return nil
	}
	ownOrg := routing.And(routing.SameOrg(self.Org), routing.Eligible(v, channel))
	var out []Candidate
	for _, m := range v.Members {
		if m.ID != "" && m.ID != self.ID && m.Org == self.Org && ownOrg(m) {
			out = append(out, Candidate{ID: m.ID})
		}
	}
	if self.External {
		for _, org := range v.ChannelOrgs[channel] {
			for _, p := range DoorPairs(v, channel, self.Org, org, doors) {
				if p[0] == self.ID {
					out = append(out, Candidate{ID: p[1], CrossOrg: true})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int { return cmp.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Candidate) bool { return a.ID == b.ID })
}

// byDoorHash orders ids by a hash of channel and ID, so that the door pairs of different channels
// fall on different external peers.
func byDoorHash(channel string, ids []peer.ID) []peer.ID {
	type keyed struct {
		h  uint64
		id peer.ID
	}
	ks := make([]keyed, len(ids))
	for i, id := range ids {
		ks[i] = keyed{hashStrings(channel, string(id)), id}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.id, b.id))
	})
	out := make([]peer.ID, len(ks))
	for i, k := range ks {
		out[i] = k.id
	}
	return slices.Compact(out)
}

// hashStrings is FNV-1a over the strings, each followed by a zero byte so that ("ab", "c") and
// ("a", "bc") differ.
func hashStrings(ss ...string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h *= prime
	}
	return h
}

// initiallyEager is the symmetric initial rule: both ends of a link in tree id decide alike,
// because the hash is over the unordered pair and n, the number of own-org links, is the same
// for two eligible peers of one org holding the same view. About k of n links come out eager.
func initiallyEager(id ID, a, b peer.ID, crossOrg bool, k, n int) bool {
	if crossOrg || n <= k {
		return true
	}
	lo, hi := min(a, b), max(a, b)
	// Mixed once more: FNV's low bits depend weakly on the last bytes, and the modulus reads them.
	return mix(hashStrings(id.Channel, string(id.Root), string(lo), string(hi)))%uint64(n) < uint64(k)
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// DoorPairs returns the doors between orgs a and b of channel as Candidates pairs them: pair i
// links a's i-th external eligible peer with b's, for i < min(doors, the longer list), the
// shorter list wrapping. v.Self counts as a member of its org when it is external and in
// channel. Every peer computes the same pairs from the same view, so a chunk can be assigned one
// door of each pair of orgs without asking anyone.
func DoorPairs(v routing.View, channel, a, b string, doors int) [][2]peer.ID {
	own, other := orgExternals(v, channel, a), orgExternals(v, channel, b)
	if a == b || len(own) == 0 || len(other) == 0 || doors <= 0 {
		return nil
	}
	out := make([][2]peer.ID, 0, min(doors, max(len(own), len(other))))
	for i := range cap(out) {
		out = append(out, [2]peer.ID{own[i%len(own)], other[i%len(other)]})
	}
	return out
}

// orgExternals returns org's external eligible peers of channel in door order.
func orgExternals(v routing.View, channel, org string) []peer.ID {
	if !v.OrgInChannel(org, channel) {
		return nil
	}
	var ids []peer.ID
	if s := v.Self; s.ID != "" && s.Org == org && s.External && s.Channels[channel] {
		ids = append(ids, s.ID)
	}
	eligible := routing.And(routing.SameOrg(org), routing.External(), routing.Eligible(v, channel))
	for _, m := range v.Members {
		if m.ID != "" && m.ID != v.Self.ID && m.Org == org && m.External && eligible(m) {
			ids = append(ids, m.ID)
		}
	}
	return byDoorHash(channel, ids)
}

// ChunkOrgs returns the orgs that org forwards a large block's chunks to, when the block was
// published in root: the channel's orgs with external eligible peers form a tree of fan-out
// fanout, root first and the others ordered by a hash of channel, root and org, and each org
// forwards to its children in it. So no org sends a block to every other org (its doors would
// need one copy per org), and each org is at most about log(orgs) door hops from root. It
// returns nil for an org that is not in the tree.
func ChunkOrgs(v routing.View, channel, root, org string, fanout int) []string {
	var orgs []string
	for _, o := range v.ChannelOrgs[channel] {
		if o != root && len(orgExternals(v, channel, o)) > 0 {
			orgs = append(orgs, o)
		}
	}
	slices.SortFunc(orgs, func(a, b string) int {
		return cmp.Or(cmp.Compare(hashStrings(channel, root, a), hashStrings(channel, root, b)), cmp.Compare(a, b))
	})
	orgs = slices.Insert(slices.Compact(orgs), 0, root)
	i := slices.Index(orgs, org)
	if i < 0 || fanout <= 0 {
		return nil
	}
	first := min(i*fanout+1, len(orgs))
	return orgs[first:min(first+fanout, len(orgs))]
}
