package discovery

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestMDNSPeersFindEachOther runs real mDNS: two hosts of the same network
// (a name unique to this test run) find each other by multicast on this
// machine and connect. A host of another network is not found.
func TestMDNSPeersFindEachOther(t *testing.T) {
	a, b, stranger := newHost(t), newHost(t), newHost(t)
	cfg := testConfig(t)
	cfg.MDNS = true
	recA, recB := newRecorder(), newRecorder()
	other := cfg
	other.Network = uniqueNetwork(t)
	recS := newRecorder()
	aConns := watchConnections(t, a)
	startDiscovery(t, stranger, other, WithTracer(recS))
	startDiscovery(t, a, cfg, WithTracer(recA))
	startDiscovery(t, b, cfg, WithTracer(recB))

	found := func(p peer.ID) func(traceEvent) bool {
		return func(e traceEvent) bool { return e.kind == "found" && e.src == SourceMDNS && e.peer == p }
	}
	recA.waitFor(t, "a to find b by mDNS", found(b.ID()))
	recB.waitFor(t, "b to find a by mDNS", found(a.ID()))
	// a's dial or b's connects them.
	waitConnected(t, aConns, b.ID(), "a and b to connect after mDNS")
	for _, p := range []peer.ID{a.ID(), b.ID()} {
		if recS.count(found(p)) != 0 {
			t.Errorf("a host of another network found %s", p)
		}
	}
}

// TestMDNSHandlerDials exercises the handler mDNS calls, without multicast.
func TestMDNSHandlerDials(t *testing.T) {
	a, b := newHost(t), newHost(t)
	rec := newRecorder()
	d := startDiscovery(t, a, testConfig(t), WithTracer(rec))
	mdnsNotifee{d}.HandlePeerFound(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	rec.waitFor(t, "the dial of the mDNS candidate", dialed(SourceMDNS, b.ID(), true))
	if !connected(a, b) {
		t.Fatal("not connected to the mDNS candidate")
	}
}
