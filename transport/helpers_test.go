package transport

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// testTimeout bounds every wait in the tests; reaching it is a failure.
const testTimeout = 20 * time.Second

// netKinds are the networks the end-to-end tests run on.
var netKinds = []string{"tcp", "quic", "mocknet"}

// newHosts returns n hosts of kind, connected pairwise, closed at cleanup.
func newHosts(t testing.TB, kind string, n int) []host.Host {
	t.Helper()
	if kind == "mocknet" {
		mn := mocknet.New()
		t.Cleanup(func() { _ = mn.Close() })
		hs := make([]host.Host, n)
		for i := range hs {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			hs[i] = h
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		return hs
	}
	addr := map[string]string{
		"tcp":  "/ip4/127.0.0.1/tcp/0",
		"quic": "/ip4/127.0.0.1/udp/0/quic-v1",
	}[kind]
	if addr == "" {
		t.Fatalf("unknown network kind %q", kind)
	}
	hs := make([]host.Host, n)
	for i := range hs {
		h, err := libp2p.New(
			libp2p.ListenAddrStrings(addr),
			libp2p.DisableMetrics(),
			libp2p.DisableRelay(),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		hs[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for i, a := range hs {
		for _, b := range hs[i+1:] {
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"tcp": "tcp", "quic": "quic-v1"}[kind]
			for _, c := range a.Network().ConnsToPeer(b.ID()) {
				if got := c.ConnState().Transport; got != want {
					t.Fatalf("connection over %q, want %q", got, want)
				}
			}
		}
	}
	return hs
}

// newTransport starts a transport on h, closed at cleanup (before the host).
func newTransport(t testing.TB, h host.Host, cfg Config, opts ...Option) *Transport {
	t.Helper()
	tr, err := New(h, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// received is one batch as a PushHandler saw it.
type received struct {
	from peer.ID
	b    *wire.Batch
}

// collect returns a PushHandler that forwards batches to a buffered channel.
func collect(n int) (PushHandler, <-chan received) {
	ch := make(chan received, n)
	return func(from peer.ID, b *wire.Batch) { ch <- received{from, b} }, ch
}

// batchOf returns a batch with one envelope whose payload is size bytes
// filled with tag.
func batchOf(size int, tag byte) *wire.Batch {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = tag
	}
	return &wire.Batch{Envelopes: []*wire.Envelope{{Payload: payload, Signature: []byte{tag}}}}
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// traceEvent is a StreamError or Dropped event seen by a recorder.
type traceEvent struct {
	peer   peer.ID
	proto  protocol.ID
	kind   ErrorKind  // StreamError
	reason DropReason // Dropped
	drop   bool
	err    error
}

// recorder counts like CountingTracer and also delivers error and drop
// events on a channel, so tests can wait for them.
type recorder struct {
	CountingTracer
	events chan traceEvent

	mu    sync.Mutex
	drops map[peer.ID]map[DropReason]int
}

func newRecorder() *recorder {
	return &recorder{events: make(chan traceEvent, 4096), drops: make(map[peer.ID]map[DropReason]int)}
}

func (r *recorder) Dropped(p peer.ID, proto protocol.ID, reason DropReason, frames int) {
	r.CountingTracer.Dropped(p, proto, reason, frames)
	r.mu.Lock()
	if r.drops[p] == nil {
		r.drops[p] = make(map[DropReason]int)
	}
	r.drops[p][reason] += frames
	r.mu.Unlock()
	r.emit(traceEvent{peer: p, proto: proto, reason: reason, drop: true})
}

func (r *recorder) StreamError(p peer.ID, proto protocol.ID, kind ErrorKind, err error) {
	r.CountingTracer.StreamError(p, proto, kind, err)
	r.emit(traceEvent{peer: p, proto: proto, kind: kind, err: err})
}

func (r *recorder) emit(e traceEvent) {
	select {
	case r.events <- e:
	default: // tests that care drain the channel
	}
}

func (r *recorder) dropsOf(p peer.ID, reason DropReason) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drops[p][reason]
}

// drain discards the events seen so far.
func (r *recorder) drain() {
	for {
		select {
		case <-r.events:
		default:
			return
		}
	}
}

// waitEvent waits for the first event matching ok.
func (r *recorder) waitEvent(t testing.TB, what string, ok func(traceEvent) bool) traceEvent {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case e := <-r.events:
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for tracer event: %s", what)
		}
	}
}

// testKey returns a deterministic Ed25519 key from seed.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// waitCounts polls the tracer's counts of pid until ok holds, and returns
// them: a sender counts a frame after its write returns, which may be after
// the receiver has already handled it.
func (r *recorder) waitCounts(t testing.TB, pid protocol.ID, ok func(Counts) bool) Counts {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c := r.Counts(pid)
		if ok(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(time.Millisecond)
	}
}
