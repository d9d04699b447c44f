package node_test

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
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
			hs = append(hs, connectStranger(t, c, ti))
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

// TestStrangerStreamsBounded: a stranger that opens push streams without
// ever sending a hello is disconnected and kept out once it passes
// MaxRefusedBeforeHello, long before its handshake timeout; one that
// stays under the bound stays connected.
func TestStrangerStreamsBounded(t *testing.T) {
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 37})
	target := c.Peers[0]
	ti := peer.AddrInfo{ID: target.Host.ID(), Addrs: target.Host.Addrs()}
	// open opens n push streams and waits for each to be reset unread.
	open := func(h host.Host, n int) {
		for range n {
			s, err := h.NewStream(context.Background(), ti.ID, transport.ProtocolPush)
			if err != nil {
				return // disconnected
			}
			_, _ = s.Write([]byte{1, 0})
			_, _ = s.Read(make([]byte, 1)) // returns when the target resets it
			_ = s.Reset()
		}
	}
	under, over := connectStranger(t, c, ti), connectStranger(t, c, ti)
	open(under, node.MaxRefusedBeforeHello)
	open(over, node.MaxRefusedBeforeHello+1)
	waitFor(t, "the stranger past the bound disconnected", func() bool {
		return target.Host.Network().Connectedness(over.ID()) != network.Connected
	})
	if err := over.Connect(context.Background(), ti); err == nil {
		waitFor(t, "the rejected stranger kept out", func() bool {
			return target.Host.Network().Connectedness(over.ID()) != network.Connected
		})
	}
	if target.Host.Network().Connectedness(under.ID()) != network.Connected {
		t.Fatalf("a stranger with %d refused streams, the bound, was disconnected", node.MaxRefusedBeforeHello)
	}
}

// connectStranger connects a new mocknet host, with no certificate and no
// hello, to the peer ti.
func connectStranger(t *testing.T, c *testnet.Cluster, ti peer.AddrInfo) host.Host {
	t.Helper()
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
	return h
}
