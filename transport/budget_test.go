package transport

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// TestInboundBudgetSlowsNeverDrops: a peer sending faster than its inbound
// budget has every batch delivered, in order, but no sooner than the budget
// allows after the burst. (A lower bound on time: a slow machine only makes
// the wait longer.)
func TestInboundBudgetSlowsNeverDrops(t *testing.T) {
	const (
		frames = 10
		size   = 30 << 10
		rate   = 128 << 10
	)
	cfg := DefaultConfig()
	cfg.MaxFrameSize = 32 << 10
	cfg.InboundBytesPerSecond = rate
	hs := newHosts(t, "mocknet", 2)
	sender := newTransport(t, hs[0], cfg)
	handler, got := collect(frames)
	newTransport(t, hs[1], cfg, WithPushHandler(handler), WithAdmission(func(peer.ID, protocol.ID) bool { return true }))

	start := time.Now()
	for i := range frames {
		if err := sender.Send(hs[1].ID(), batchOf(size, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range frames {
		r := recv(t, got, "a batch")
		if tag := r.b.Envelopes[0].Signature[0]; tag != byte(i) {
			t.Fatalf("batch %d arrived as %d", i, tag)
		}
	}
	burst := 2 * (cfg.MaxFrameSize + 10)
	// The last frame's tokens are taken after it is handed over, so it
	// does not count.
	want := time.Duration(float64((frames-1)*(size+8)-burst) / rate * float64(time.Second))
	if elapsed := time.Since(start); elapsed < want*9/10 {
		t.Fatalf("%d frames of %d B in %v, want at least %v at %d B/s with a %d B burst", frames, size, elapsed, want, rate, burst)
	}
}

func TestInboundBudgetValidated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.InboundBytesPerSecond = -1
	if err := cfg.Validate(); err == nil {
		t.Fatal("a negative InboundBytesPerSecond validated")
	}
}
