package p2phost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

const eventTimeout = 10 * time.Second

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newHost(t *testing.T, cfg Config, opts ...Option) *Host {
	t.Helper()
	h, err := New(newKey(t), cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// addrsOver is h's AddrInfo restricted to one transport (ma.P_TCP or
// ma.P_QUIC_V1), so that a dial cannot fall back to the other one.
func addrsOver(h *Host, code int) peer.AddrInfo {
	ai := h.AddrInfo()
	ai.Addrs = slices.DeleteFunc(ai.Addrs, func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(code)
		return err != nil
	})
	return ai
}

// connectedness subscribes to h's connectedness events before the caller
// acts, so that no event is missed.
func connectedness(t *testing.T, h *Host) event.Subscription {
	t.Helper()
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// waitConnectedness waits for p to reach state in sub.
func waitConnectedness(t *testing.T, sub event.Subscription, p peer.ID, state network.Connectedness) {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		select {
		case e := <-sub.Out():
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Peer == p && ev.Connectedness == state {
				return
			}
		case <-timeout:
			t.Fatalf("peer %s did not become %v within %v", p, state, eventTimeout)
		}
	}
}

func TestTwoHostsConnect(t *testing.T) {
	for _, tr := range []struct {
		name string
		code int
	}{{"tcp", ma.P_TCP}, {"quic", ma.P_QUIC_V1}} {
		t.Run(tr.name, func(t *testing.T) {
			a, b := newHost(t, LocalConfig()), newHost(t, LocalConfig())
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			if err := a.Connect(ctx, addrsOver(b, tr.code)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			conns := a.Network().ConnsToPeer(b.ID())
			if len(conns) != 1 {
				t.Fatalf("%d connections, want 1", len(conns))
			}
			if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(tr.code); err != nil {
				t.Fatalf("connection over %s, want %s", conns[0].RemoteMultiaddr(), tr.name)
			}
			if tr.code == ma.P_TCP {
				st := conns[0].ConnState()
				if st.Security != "/tls/1.0.0" || st.StreamMultiplexer != "/yamux/1.0.0" {
					t.Fatalf("security %q muxer %q, want /tls/1.0.0 and /yamux/1.0.0", st.Security, st.StreamMultiplexer)
				}
			}
		})
	}
}

func TestGaterKeepsBlockedPeerOutForBackoff(t *testing.T) {
	for _, tr := range []struct {
		name string
		code int
	}{{"tcp", ma.P_TCP}, {"quic", ma.P_QUIC_V1}} {
		t.Run(tr.name, func(t *testing.T) {
			clk := newFakeClock()
			cfg := LocalConfig()
			cfg.GaterBackoff = time.Hour // only the fake clock can end it
			a := newHost(t, cfg, WithClock(clk.Now))
			b := newHost(t, LocalConfig())
			aEvents, bEvents := connectedness(t, a), connectedness(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
			defer cancel()
			// Skip libp2p's own dial back-off: this test is about the gater's.
			ctx = network.WithForceDirectDial(ctx, "test")

			if err := a.BlockPeer(b.ID(), "failed hello"); err != nil {
				t.Fatalf("BlockPeer: %v", err)
			}

			// Outbound: a refuses to dial b.
			err := a.Connect(ctx, addrsOver(b, tr.code))
			if !errors.Is(err, swarm.ErrGaterDisallowedConnection) {
				t.Fatalf("a dialing blocked b: err = %v, want ErrGaterDisallowedConnection", err)
			}

			// Inbound: b's dial is refused by a once b's peer ID is proven.
			// b's Connect may return nil before a's refusal arrives (the
			// dialer finishes its side of the upgrade first); b then sees the
			// connection close.
			if err := b.Connect(ctx, addrsOver(a, tr.code)); err == nil {
				waitConnectedness(t, bEvents, a.ID(), network.NotConnected)
			}
			if n := len(a.Network().ConnsToPeer(b.ID())); n != 0 {
				t.Fatalf("a accepted %d connections from blocked b", n)
			}

			// After the back-off, b gets in and a dials b again.
			clk.Advance(cfg.GaterBackoff)
			if a.Gater().Blocked(b.ID()) {
				t.Fatal("still blocked after the back-off")
			}
			if err := b.Connect(ctx, addrsOver(a, tr.code)); err != nil {
				t.Fatalf("b dialing a after the back-off: %v", err)
			}
			waitConnectedness(t, aEvents, b.ID(), network.Connected)

			if err := a.Network().ClosePeer(b.ID()); err != nil {
				t.Fatal(err)
			}
			waitConnectedness(t, aEvents, b.ID(), network.NotConnected)
			if err := a.Connect(ctx, addrsOver(b, tr.code)); err != nil {
				t.Fatalf("a dialing b after the back-off: %v", err)
			}
		})
	}
}

func TestBlockPeerClosesExistingConnections(t *testing.T) {
	a, b := newHost(t, LocalConfig()), newHost(t, LocalConfig())
	aEvents := connectedness(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	waitConnectedness(t, aEvents, b.ID(), network.Connected)
	if err := a.BlockPeer(b.ID(), "expired certificate"); err != nil {
		t.Fatal(err)
	}
	if got := a.Network().Connectedness(b.ID()); got == network.Connected {
		t.Fatalf("connectedness after BlockPeer = %v, want not connected", got)
	}
}

func TestAnnounceAddrsReplaceAdvertised(t *testing.T) {
	announce := []string{"/ip4/203.0.113.7/tcp/7051", "/dns4/peer0.org1.example/udp/7051/quic-v1"}
	cfg := LocalConfig()
	cfg.AnnounceAddrs = announce
	a := newHost(t, cfg)
	b := newHost(t, LocalConfig())

	var got []string
	for _, x := range a.Addrs() {
		got = append(got, x.String())
	}
	if strings.Join(got, " ") != strings.Join(announce, " ") {
		t.Fatalf("Addrs() = %v, want exactly %v", got, announce)
	}

	// What identify tells a peer is the announced set too.
	sub, err := b.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	listen, err := a.Network().InterfaceListenAddresses()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: listen}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-sub.Out():
			ev := e.(event.EvtPeerIdentificationCompleted)
			if ev.Peer != a.ID() {
				continue
			}
			var advertised []string
			for _, x := range ev.ListenAddrs {
				advertised = append(advertised, x.String())
			}
			if strings.Join(advertised, " ") != strings.Join(announce, " ") {
				t.Fatalf("identify advertised %v, want %v", advertised, announce)
			}
			return
		case <-ctx.Done():
			t.Fatal("no identify from a")
		}
	}
}

func TestProtocolLimitsAreApplied(t *testing.T) {
	cfg := LocalConfig()
	h := newHost(t, cfg)
	for _, pl := range cfg.Protocols {
		err := h.ResourceManager().ViewProtocol(pl.ID, func(s network.ProtocolScope) error {
			l := s.(rcmgr.ResourceScopeLimiter).Limit()
			if got := l.GetStreamLimit(network.DirInbound); got != pl.Limit.StreamsInbound {
				t.Errorf("%s inbound stream limit = %d, want %d", pl.ID, got, pl.Limit.StreamsInbound)
			}
			if got := l.GetMemoryLimit(); got != pl.Limit.Memory {
				t.Errorf("%s memory limit = %d, want %d", pl.ID, got, pl.Limit.Memory)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := h.ResourceManager().ViewService(cfg.ServiceName, func(s network.ServiceScope) error {
		l := s.(rcmgr.ResourceScopeLimiter).Limit()
		if got := l.GetStreamTotalLimit(); got != cfg.ServiceLimit.Streams {
			t.Errorf("service stream limit = %d, want %d", got, cfg.ServiceLimit.Streams)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestProtocolPeerLimitIsEnforced opens one more hello stream than a peer is
// allowed and sees the extra one refused by the receiver's resource manager.
func TestProtocolPeerLimitIsEnforced(t *testing.T) {
	cfg := LocalConfig()
	for i := range cfg.Protocols {
		if cfg.Protocols[i].ID == protoHello {
			cfg.Protocols[i].PeerLimit = StreamLimit{StreamsInbound: 1, StreamsOutbound: 1, Streams: 2, Memory: 1 << 20}
		}
	}
	a, b := newHost(t, LocalConfig()), newHost(t, cfg)
	release := make(chan struct{})
	defer close(release)
	b.SetStreamHandler(protoHello, func(s network.Stream) {
		defer s.Close()
		if _, err := s.Write([]byte{1}); err != nil {
			_ = s.Reset()
			return
		}
		<-release // hold the stream open
	})
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	open := func() error {
		s, err := a.NewStream(ctx, b.ID(), protoHello)
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = s.Reset() })
		_ = s.SetReadDeadline(time.Now().Add(eventTimeout))
		_, err = io.ReadFull(s, make([]byte, 1))
		return err
	}
	if err := open(); err != nil {
		t.Fatalf("first hello stream: %v", err)
	}
	if err := open(); err == nil {
		t.Fatal("second concurrent hello stream was accepted; the per-peer limit is 1")
	}
}

func TestPrometheusRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newHost(t, LocalConfig(), WithPrometheusRegisterer(reg))
	b := newHost(t, LocalConfig())
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var swarmMetrics bool
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "libp2p_swarm_") {
			swarmMetrics = true
		}
	}
	if !swarmMetrics {
		t.Fatal("no libp2p_swarm_ metrics registered")
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := New(nil, LocalConfig()); !errors.Is(err, ErrNoKey) {
		t.Errorf("New(nil key) = %v, want ErrNoKey", err)
	}
	cfg := LocalConfig()
	cfg.GaterBackoff = 0
	if _, err := New(newKey(t), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(invalid config) = %v, want ErrInvalidConfig", err)
	}
}

// TestNewFailsWhenAListenAddressIsTaken: libp2p alone would start with only
// the QUIC listener; a peer must not silently lose its TCP address. The port
// is taken by a plain socket: libp2p's TCP listeners set SO_REUSEPORT, so a
// second libp2p host could share the port.
func TestNewFailsWhenAListenAddressIsTaken(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tcp := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	cfg := LocalConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1", tcp}
	h, err := New(newKey(t), cfg)
	if err == nil {
		_ = h.Close()
		t.Fatalf("New listening on taken %s succeeded", tcp)
	}
	if !strings.Contains(err.Error(), tcp) {
		t.Errorf("error %q does not name the address %s", err, tcp)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	h, err := New(newKey(t), LocalConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
