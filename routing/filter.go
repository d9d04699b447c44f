package routing

import (
	"math/rand/v2"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Filter decides whether a member may be chosen (Fabric's RoutingFilter). Filters must not be nil.
type Filter func(Member) bool

// All admits every member (Fabric's SelectAllPolicy).
func All() Filter { return func(Member) bool { return true } }

// None admits no member (Fabric's SelectNonePolicy).
func None() Filter { return func(Member) bool { return false } }

// And admits a member that every filter admits, evaluating them in order and stopping at the first
// refusal, so cheap filters belong first. With no filters it admits everyone.
func And(fs ...Filter) Filter {
	fs = slices.Clone(fs)
	return func(m Member) bool {
		for _, f := range fs {
			if !f(m) {
				return false
			}
		}
		return true
	}
}

// Or admits a member that at least one filter admits, evaluating them in order and stopping at the
// first acceptance. With no filters it admits no one.
func Or(fs ...Filter) Filter {
	fs = slices.Clone(fs)
	return func(m Member) bool {
		for _, f := range fs {
			if f(m) {
				return true
			}
		}
		return false
	}
}

// Not admits exactly the members f refuses.
func Not(f Filter) Filter { return func(m Member) bool { return !f(m) } }

// SameOrg admits members of org.
func SameOrg(org string) Filter { return func(m Member) bool { return m.Org == org } }

// OrgInChannel admits members whose org is a member org of channel in v's network config. It says
// nothing about whether the member itself has joined the channel; see [Eligible].
func OrgInChannel(v View, channel string) Filter {
	orgs := v.ChannelOrgs[channel]
	return func(m Member) bool { return slices.Contains(orgs, m.Org) }
}

// Eligible admits the members that may receive blocks of channel: alive, of an org in the channel,
// and holding a verified StateInfo for it (Fabric's EligibleForChannel ∧ IsMemberInChan).
func Eligible(v View, channel string) Filter {
	orgs := v.ChannelOrgs[channel]
	return func(m Member) bool {
		return m.Alive && m.Channels[channel] && slices.Contains(orgs, m.Org)
	}
}

// External admits external members: those reachable by other orgs.
func External() Filter { return func(m Member) bool { return m.External } }

// Except admits every member whose ID is not among ids.
func Except(ids ...peer.ID) Filter {
	ids = slices.Clone(ids)
	return func(m Member) bool { return !slices.Contains(ids, m.ID) }
}

// SelectPeers returns a uniform random sample, without replacement, of at most k members of pool
// that f admits. Dead members, members with an empty ID and members whose ID is self are never
// returned, whatever f says. It returns nil when k <= 0, when f is nil, or when nothing matches.
// The result is in random order. f is evaluated lazily, only on visited candidates, as in Fabric.
//
// rng belongs to the caller and must not be nil: a *rand.Rand is not safe for concurrent use, and
// SelectPeers uses it only for the duration of the call.
func SelectPeers(k int, self peer.ID, pool []Member, f Filter, rng *rand.Rand) []Member {
	if k <= 0 || f == nil {
		return nil
	}
	idx := make([]int32, len(pool))
	for i := range idx {
		idx[i] = int32(i)
	}
	picks := draw(make([]int32, 0, min(k, len(idx))), k, idx, pool, self, func(m *Member) bool { return f(*m) }, rng)
	if len(picks) == 0 {
		return nil
	}
	res := make([]Member, len(picks))
	for i, p := range picks {
		res[i] = pool[p]
	}
	return res
}

// First returns the first member of pool, in pool order, that f admits (Fabric's First). Unlike
// [SelectPeers] it applies no implicit exclusions.
func First(pool []Member, f Filter) (Member, bool) {
	for _, m := range pool {
		if f(m) {
			return m, true
		}
	}
	return Member{}, false
}

// Partition splits msgs into those pred accepts and the rest, both in their original order
// (Fabric's partitionMessages). The two results share one new backing array; msgs is not modified.
func Partition[T any](pred func(T) bool, msgs []T) (matched, rest []T) {
	if len(msgs) == 0 {
		return nil, nil
	}
	buf := make([]T, len(msgs))
	lo, hi := 0, len(buf)
	for _, m := range msgs {
		if pred(m) {
			buf[lo] = m
			lo++
		} else {
			hi--
			buf[hi] = m
		}
	}
	rest = buf[lo:]
	slices.Reverse(rest)
	if lo == 0 {
		return nil, rest
	}
	if lo == len(buf) {
		return buf, nil
	}
	return buf[:lo:lo], rest
}
