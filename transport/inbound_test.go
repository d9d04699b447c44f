package transport

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// rawStream opens a stream of pid from h to p, reset at cleanup.
func rawStream(t *testing.T, h host.Host, p peer.ID, pid protocol.ID) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	return s
}

// expectReset reads s until it fails, and wants a reset, not a clean end.
func expectReset(t *testing.T, s network.Stream) {
	t.Helper()
	if _, err := io.ReadAll(s); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want a reset", err)
	}
}

// expectRefused opens a stream of pid from h to p, writes data and wants
// the stream reset. The reset may come while the protocol is negotiated,
// failing the open.
func expectRefused(t *testing.T, h host.Host, p peer.ID, pid protocol.ID, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, pid)
	if err != nil {
		var se *network.StreamError
		if !errors.As(err, &se) && !errors.Is(err, network.ErrReset) {
			t.Fatalf("open: %v, want a reset", err)
		}
		return
	}
	defer s.Reset()
	_, _ = s.Write(data) // may fail: the stream is reset at once
	expectReset(t, s)
}

func pushFrame(t *testing.T, tag byte) []byte {
	t.Helper()
	frame, err := AppendFrame(nil, batchOf(10, tag), DefaultConfig().MaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	return frame
}

// TestAdmission: push and pull streams of a peer the admission function
// refuses are reset before anything is read and never reach a handler, the
// hello is not gated, admitted peers are served, and ResetInbound ends the
// streams of a peer refused later.
func TestAdmission(t *testing.T) {
	hs := newHosts(t, "mocknet", 2)
	a, b := hs[0], hs[1]
	var admitted atomic.Bool
	var asked atomic.Int32
	admit := func(from peer.ID, pid protocol.ID) bool {
		asked.Add(1)
		if from != a.ID() || pid == ProtocolHello {
			t.Errorf("admission asked about %s on %s", from, pid)
		}
		return admitted.Load()
	}
	pulls := make(chan struct{}, 10)
	pull := func(ctx context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
		pulls <- struct{}{}
		return echoPull(ctx, from, req)
	}
	handler, got := collect(10)
	trace := newRecorder()
	ta := newTransport(t, a, DefaultConfig())
	tb := newTransport(t, b, DefaultConfig(), WithAdmission(admit), WithTracer(trace),
		WithPushHandler(handler), WithPullHandler(pull), WithHelloHandler(helloFrom([]byte("b"))))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	digest := &wire.PullRequest{Request: &wire.PullRequest_Digest{Digest: &wire.DigestRequest{Channel: "c"}}}
	unadmitted := func(t *testing.T, pid protocol.ID) {
		t.Helper()
		e := trace.waitEvent(t, "unadmitted stream", func(e traceEvent) bool { return !e.drop && e.proto == pid })
		if e.kind != ErrorUnadmitted || !errors.Is(e.err, ErrUnadmitted) {
			t.Fatalf("traced %s (%v), want %s", e.kind, e.err, ErrorUnadmitted)
		}
	}

	t.Run("refused", func(t *testing.T) {
		expectRefused(t, a, b.ID(), ProtocolPush, pushFrame(t, 1))
		unadmitted(t, ProtocolPush)
		if _, err := ta.Pull(ctx, b.ID(), digest); err == nil {
			t.Fatal("unadmitted pull served")
		}
		unadmitted(t, ProtocolPull)
		if _, err := ta.Hello(ctx, b.ID(), &wire.Hello{}); err != nil {
			t.Fatalf("hello of an unadmitted peer: %v", err)
		}
		for _, pid := range []protocol.ID{ProtocolPush, ProtocolPull} {
			if c := trace.Counts(pid); c.FramesReceived != 0 {
				t.Fatalf("%s: read %d frames from an unadmitted peer", pid, c.FramesReceived)
			}
		}
		if n := asked.Load(); n != 2 {
			t.Fatalf("admission asked %d times, want 2", n)
		}
	})

	t.Run("admitted", func(t *testing.T) {
		admitted.Store(true)
		if err := ta.Send(b.ID(), batchOf(10, 2)); err != nil {
			t.Fatal(err)
		}
		// The first batch to arrive is this one: the refused frame never
		// reached the handler.
		if r := recv(t, got, "admitted batch"); r.b.GetEnvelopes()[0].GetPayload()[0] != 2 {
			t.Fatalf("got batch %d, want 2", r.b.GetEnvelopes()[0].GetPayload()[0])
		}
		if _, err := ta.Pull(ctx, b.ID(), digest); err != nil {
			t.Fatalf("admitted pull: %v", err)
		}
		recv(t, pulls, "pull handler")
	})

	t.Run("reset inbound", func(t *testing.T) {
		s := rawStream(t, a, b.ID(), ProtocolPush)
		if _, err := s.Write(pushFrame(t, 3)); err != nil {
			t.Fatal(err)
		}
		recv(t, got, "batch on the raw stream") // s is open and served
		trace.drain()
		admitted.Store(false)
		tb.ResetInbound(a.ID())
		expectReset(t, s)
		unadmitted(t, ProtocolPush)
		// A new stream is refused at open.
		expectRefused(t, a, b.ID(), ProtocolPush, pushFrame(t, 4))
		unadmitted(t, ProtocolPush)
		select {
		case r := <-got:
			t.Fatalf("batch %d handled after ResetInbound", r.b.GetEnvelopes()[0].GetPayload()[0])
		default:
		}
	})
}

// TestHelloBounds: a hello stream that stays silent is reset after
// HelloFirstByteTimeout, a hello over MaxHelloSize is refused on both
// sides, and a peer over MaxInboundHellosPerPeer is reset
// at once while other peers are still served.
func TestHelloBounds(t *testing.T) {
	hs := newHosts(t, "mocknet", 3)
	a, b, c := hs[0], hs[1], hs[2]
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	hello := func(ctx context.Context, from peer.ID, _ *wire.Hello) (*wire.Hello, error) {
		if from == a.ID() {
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return &wire.Hello{}, nil
	}

	t.Run("silent caller", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.HelloFirstByteTimeout = 20 * time.Millisecond // only how soon the reset comes
		trace := newRecorder()
		tb := newTransport(t, b, cfg, WithHelloHandler(hello), WithTracer(trace))
		expectRefused(t, c, b.ID(), ProtocolHello, nil)
		e := trace.waitEvent(t, "silent hello", func(e traceEvent) bool { return !e.drop })
		if !errors.Is(e.err, errHelloSilent) {
			t.Fatalf("traced %s (%v), want the first-byte timeout", e.kind, e.err)
		}
		_ = tb.Close()
	})

	t.Run("oversized", func(t *testing.T) {
		cfg := DefaultConfig()
		trace := newRecorder()
		tb := newTransport(t, b, cfg, WithHelloHandler(hello), WithTracer(trace))
		ta := newTransport(t, a, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		big := &wire.Hello{Alive: &wire.Envelope{Payload: make([]byte, cfg.MaxHelloSize)}}
		if _, err := ta.Hello(ctx, b.ID(), big); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("hello over MaxHelloSize: %v, want ErrFrameTooLarge", err)
		}
		expectRefused(t, a, b.ID(), ProtocolHello, rawFrame(uint64(cfg.MaxHelloSize)+1, nil))
		e := trace.waitEvent(t, "oversized hello", func(e traceEvent) bool { return !e.drop })
		if e.kind != ErrorOversized {
			t.Fatalf("traced %s (%v), want %s", e.kind, e.err, ErrorOversized)
		}
		_ = ta.Close()
		_ = tb.Close()
	})

	t.Run("per peer", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxInboundHellosPerPeer = 2
		trace := newRecorder()
		newTransport(t, b, cfg, WithHelloHandler(hello), WithTracer(trace))
		ta := newTransport(t, a, cfg)
		tc := newTransport(t, c, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		errc := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := ta.Hello(ctx, b.ID(), &wire.Hello{})
				errc <- err
			}()
		}
		recv(t, entered, "first hello")
		recv(t, entered, "second hello")
		// A third from a, silent or not, is reset at once; c is served.
		expectRefused(t, a, b.ID(), ProtocolHello, nil)
		e := trace.waitEvent(t, "refused hello", func(e traceEvent) bool { return !e.drop })
		if e.kind != ErrorHandler || !errors.Is(e.err, errHelloBusy) {
			t.Fatalf("traced %s (%v), want %s for a busy peer", e.kind, e.err, ErrorHandler)
		}
		if _, err := tc.Hello(ctx, b.ID(), &wire.Hello{}); err != nil {
			t.Fatalf("hello of another peer: %v", err)
		}
		close(release)
		for range 2 {
			if err := recv(t, errc, "blocked hello"); err != nil {
				t.Fatalf("blocked hello: %v", err)
			}
		}
	})
}
