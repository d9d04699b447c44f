package node

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

func sortIDs(ids []peer.ID) { slices.Sort(ids) }

func sortPeers(ps []Peer) {
	slices.SortFunc(ps, func(a, b Peer) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for i := range ps {
		slices.Sort(ps[i].Channels)
	}
}
