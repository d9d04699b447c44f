package routing

import (
	"math/rand/v2"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Member is what the planner knows about one peer.
type Member struct {
	ID  peer.ID
	Org string
	// External reports whether the peer is reachable by other orgs. Traffic crosses an org
	// boundary only between two external peers.
	External bool
	// Channels holds the channels for which a verified, not-left StateInfo of this member is held.
	// Only those channels' blocks may reach it.
	Channels map[string]bool
	// Alive is false once the member has expired; dead members are never chosen.
	Alive bool
}

// View is the membership snapshot a plan is made against. The planner only reads it; it must not
// be changed while a call that uses it is running.
type View struct {
	// Self is the local peer. It is never chosen, whether or not it also appears in Members.
	Self Member
	// Members are the known peers. IDs are expected to be distinct; members with an empty ID are
	// never chosen.
	Members []Member
	// ChannelOrgs is the network config: the member orgs of each channel. A channel that is not
	// listed has no orgs, so nothing of it is sent anywhere.
	ChannelOrgs map[string][]string
}

// OrgInChannel reports whether org is a member org of channel in the network config.
func (v View) OrgInChannel(org, channel string) bool {
	return slices.Contains(v.ChannelOrgs[channel], org)
}

// SelectPeers is [SelectPeers] over the view's members, excluding the view's Self.
func (v View) SelectPeers(k int, f Filter, rng *rand.Rand) []Member {
	return SelectPeers(k, v.Self.ID, v.Members, f, rng)
}
