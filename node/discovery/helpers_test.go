package discovery

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/node/p2phost"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// eventTimeout bounds every wait for something libp2p does on loopback.
const eventTimeout = 10 * time.Second

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newHost is a real TCP+QUIC host on 127.0.0.1, closed at the end of the test.
func newHost(t *testing.T) *p2phost.Host {
	t.Helper()
	return newHostWith(t, newKey(t), p2phost.LocalConfig())
}

func newHostWith(t *testing.T, key crypto.PrivKey, cfg p2phost.Config) *p2phost.Host {
	t.Helper()
	h, err := p2phost.New(key, cfg)
	if err != nil {
		t.Fatalf("p2phost.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// uniqueNetwork keeps concurrent test runs on this machine (mDNS is
// machine-wide) from finding each other.
func uniqueNetwork(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "test-" + hex.EncodeToString(b)
}

func testConfig(t *testing.T) Config {
	cfg := LocalConfig()
	cfg.Network = uniqueNetwork(t)
	cfg.Backoff = Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: 0.2}
	cfg.FindPeersInterval = 100 * time.Millisecond
	return cfg
}

// startDiscovery builds and starts a Discovery, closed at the end of the test.
func startDiscovery(t *testing.T, h *p2phost.Host, cfg Config, opts ...Option) *Discovery {
	t.Helper()
	d, err := New(h, cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func addrInfoString(h *p2phost.Host) []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		panic(err)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// traceEvent is one Tracer call.
type traceEvent struct {
	kind string // "found", "dialed", "advertised"
	src  Source
	peer peer.ID
	err  error
}

// recorder is a Tracer that forwards every event to a channel the test
// reads; it never blocks discovery (events beyond the buffer are dropped,
// which would fail the test by timeout, not hang it).
type recorder struct {
	events chan traceEvent
	mu     sync.Mutex
	log    []traceEvent
}

func newRecorder() *recorder { return &recorder{events: make(chan traceEvent, 4096)} }

func (r *recorder) add(e traceEvent) {
	r.mu.Lock()
	r.log = append(r.log, e)
	r.mu.Unlock()
	select {
	case r.events <- e:
	default:
	}
}

func (r *recorder) CandidateFound(src Source, p peer.ID) {
	r.add(traceEvent{kind: "found", src: src, peer: p})
}

func (r *recorder) Dialed(src Source, p peer.ID, err error) {
	r.add(traceEvent{kind: "dialed", src: src, peer: p, err: err})
}

func (r *recorder) Advertised(_ string, _ time.Duration, err error) {
	r.add(traceEvent{kind: "advertised", err: err})
}

// waitFor returns the first event (from now on) that match accepts.
func (r *recorder) waitFor(t *testing.T, what string, match func(traceEvent) bool) traceEvent {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		select {
		case e := <-r.events:
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("timed out after %v waiting for %s", eventTimeout, what)
		}
	}
}

func (r *recorder) count(match func(traceEvent) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.log {
		if match(e) {
			n++
		}
	}
	return n
}

func dialed(src Source, p peer.ID, ok bool) func(traceEvent) bool {
	return func(e traceEvent) bool {
		return e.kind == "dialed" && e.src == src && e.peer == p && (e.err == nil) == ok
	}
}

// watchConnections subscribes to h's connectedness events; subscribe
// before acting, so that no event is missed.
func watchConnections(t *testing.T, h *p2phost.Host) event.Subscription {
	t.Helper()
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// waitConnected waits until the host of sub is connected to p.
func waitConnected(t *testing.T, sub event.Subscription, p peer.ID, what string) {
	t.Helper()
	timeout := time.After(eventTimeout)
	for {
		select {
		case e := <-sub.Out():
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Peer == p && ev.Connectedness == network.Connected {
				return
			}
		case <-timeout:
			t.Fatalf("timed out after %v waiting for %s", eventTimeout, what)
		}
	}
}

func connected(a, b *p2phost.Host) bool {
	return a.Network().Connectedness(b.ID()) == network.Connected
}
