package node_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
)

// TestPendingHandshakesBounded: connections from strangers that never send
// a hello hold at most node.MaxPendingStrangers handshake timers; past it
// the oldest stranger is disconnected, without a strike (it may connect
// again at once), and the newest keep waiting for their hello.
func TestPendingHandshakesBounded(t *testing.T) {
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 31})
	target := c.Peers[0]
	ti := peer.AddrInfo{ID: target.Host.ID(), Addrs: target.Host.Addrs()}
	connect := func(n int) []host.Host {
		var hs []host.Host
		for range n {
			h, err := c.Mocknet.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Mocknet.LinkPeers(h.ID(), ti.ID); err != nil {
				t.Fatal(err)
			}
			if err := h.Connect(context.Background(), ti); err != nil {
				t.Fatal(err)
			}
			hs = append(hs, h)
		}
		return hs
	}
	const early = 8
	first := connect(early)
	waitFor(t, "the first strangers pending", func() bool { return target.PendingStrangers() == early })
	later := connect(node.MaxPendingStrangers)
	waitFor(t, "the oldest strangers disconnected", func() bool {
		for _, h := range first {
			if target.Host.Network().Connectedness(h.ID()) == network.Connected {
				return false
			}
		}
		return true
	})
	if got := target.PendingStrangers(); got > node.MaxPendingStrangers {
		t.Fatalf("%d pending handshakes, cap %d", got, node.MaxPendingStrangers)
	}
	for i, h := range later {
		if target.Host.Network().Connectedness(h.ID()) != network.Connected {
			t.Fatalf("stranger %d of the later %d disconnected before its timeout", i, len(later))
		}
	}
	// Evicted, not gated: the stranger connects again, and is now the
	// newest; the oldest of the later ones makes room.
	if err := first[0].Connect(context.Background(), ti); err != nil {
		t.Fatalf("an evicted stranger cannot reconnect: %v", err)
	}
	waitFor(t, "the oldest later stranger disconnected", func() bool {
		return target.Host.Network().Connectedness(later[0].ID()) != network.Connected
	})
	if target.Host.Network().Connectedness(first[0].ID()) != network.Connected {
		t.Fatal("the reconnected stranger was disconnected at once")
	}
}
