package discovery

import (
	"slices"
	"strings"
	"testing"

	"github.com/fabgossip/fabgossip/node/p2phost"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// TestDHTPeersFindEachOtherThroughNamespace: three hosts run the private
// DHT; b and c know only a (their bootstrap peer). Each advertises the
// network's namespace; b and c find each other by looking it up and
// connect. The DHT speaks only "/fabgossip/kad/1.0.0".
func TestDHTPeersFindEachOtherThroughNamespace(t *testing.T) {
	a, b, c := newHost(t), newHost(t), newHost(t)
	cfg := testConfig(t)
	cfg.DHT = true
	recB, recC := newRecorder(), newRecorder()
	bConns := watchConnections(t, b)

	startDiscovery(t, a, cfg)
	joiner := cfg
	joiner.Bootstrap = addrInfoString(a)
	dB := startDiscovery(t, b, joiner, WithTracer(recB))
	startDiscovery(t, c, joiner, WithTracer(recC))

	foundByDHT := func(p peer.ID) func(traceEvent) bool {
		return func(e traceEvent) bool { return e.kind == "found" && e.src == SourceDHT && e.peer == p }
	}
	recB.waitFor(t, "b to find c in the namespace", foundByDHT(c.ID()))
	recC.waitFor(t, "c to find b in the namespace", foundByDHT(b.ID()))
	waitConnected(t, bConns, c.ID(), "b and c to connect")

	if got := dB.Namespace(); got != "fabgossip/"+cfg.Network {
		t.Errorf("Namespace() = %q", got)
	}
	assertPrivateDHT(t, a)
}

// assertPrivateDHT checks that h serves our DHT protocol and not the
// public IPFS one.
func assertPrivateDHT(t *testing.T, h *p2phost.Host) {
	t.Helper()
	protos := h.Mux().Protocols()
	if !slices.Contains(protos, protocol.ID("/fabgossip/kad/1.0.0")) {
		t.Errorf("protocols %v lack /fabgossip/kad/1.0.0", protos)
	}
	for _, p := range protos {
		if strings.HasPrefix(string(p), "/ipfs/kad") {
			t.Errorf("host serves the public DHT protocol %s", p)
		}
	}
}
