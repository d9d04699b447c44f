package p2phost

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeClock is a settable clock for the Gater.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testPeer is a distinct, syntactically valid-enough peer ID for the gater,
// which never decodes it.
func testPeer(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%04d", i)) }

func TestGaterBlocksForBackoff(t *testing.T) {
	clk := newFakeClock()
	g := NewGater(time.Minute, 16, clk.Now)
	p, other := testPeer(1), testPeer(2)

	g.Block(p, "bad certificate")
	until, reason, ok := g.BlockedFor(p)
	if !ok || reason != "bad certificate" || !until.Equal(clk.Now().Add(time.Minute)) {
		t.Fatalf("BlockedFor = (%v, %q, %v), want (now+1m, bad certificate, true)", until, reason, ok)
	}
	for name, allowed := range map[string]bool{
		"InterceptPeerDial":         g.InterceptPeerDial(p),
		"InterceptSecured inbound":  g.InterceptSecured(network.DirInbound, p, nil),
		"InterceptSecured outbound": g.InterceptSecured(network.DirOutbound, p, nil),
	} {
		if allowed {
			t.Errorf("%s allowed a blocked peer", name)
		}
	}
	if !g.InterceptPeerDial(other) || !g.InterceptSecured(network.DirInbound, other, nil) {
		t.Error("gater refused a peer that is not blocked")
	}

	clk.Advance(time.Minute - time.Nanosecond)
	if !g.Blocked(p) {
		t.Fatal("block ended before its back-off")
	}
	clk.Advance(time.Nanosecond)
	if g.Blocked(p) || !g.InterceptPeerDial(p) || !g.InterceptSecured(network.DirInbound, p, nil) {
		t.Fatal("block did not end after its back-off")
	}
	if g.Len() != 0 {
		t.Fatalf("Len = %d after expiry, want 0", g.Len())
	}
}

func TestGaterReblockKeepsLaterExpiry(t *testing.T) {
	clk := newFakeClock()
	g := NewGater(time.Minute, 16, clk.Now)
	p := testPeer(1)
	g.BlockFor(p, time.Hour, "first")
	g.BlockFor(p, time.Second, "second")
	until, reason, _ := g.BlockedFor(p)
	if !until.Equal(clk.Now().Add(time.Hour)) || reason != "second" {
		t.Fatalf("BlockedFor = (%v, %q), want (now+1h, second)", until, reason)
	}
	g.Unblock(p)
	if g.Blocked(p) {
		t.Fatal("Unblock did not unblock")
	}
}

func TestGaterIsBounded(t *testing.T) {
	clk := newFakeClock()
	const max = 8
	g := NewGater(time.Minute, max, clk.Now)

	// Peer i expires at now + (i+1) minutes: peer 0 expires first.
	for i := range max {
		g.BlockFor(testPeer(i), time.Duration(i+1)*time.Minute, "full")
	}
	g.BlockFor(testPeer(100), time.Hour, "one more")
	if g.Len() != max {
		t.Fatalf("Len = %d, want %d", g.Len(), max)
	}
	if g.Blocked(testPeer(0)) {
		t.Error("the entry expiring first was kept")
	}
	for i := 1; i < max; i++ {
		if !g.Blocked(testPeer(i)) {
			t.Errorf("peer %d was dropped, want only peer 0 dropped", i)
		}
	}
	if !g.Blocked(testPeer(100)) {
		t.Error("the new entry was not added")
	}

	// Once entries have expired, blocking sweeps them instead of dropping
	// live ones.
	clk.Advance(3*time.Minute + time.Second) // peers 1 and 2 expired
	g.BlockFor(testPeer(200), time.Hour, "after expiry")
	g.BlockFor(testPeer(201), time.Hour, "after expiry")
	for _, i := range []int{3, 4, 5, 6, 7, 100, 200, 201} {
		if !g.Blocked(testPeer(i)) {
			t.Errorf("peer %d is not blocked, want it kept", i)
		}
	}
	if g.Len() != max {
		t.Fatalf("Len = %d, want %d", g.Len(), max)
	}
	g.mu.Lock()
	held := len(g.blocked)
	g.mu.Unlock()
	if held > max {
		t.Fatalf("gater holds %d entries, cap is %d", held, max)
	}
}

func TestGaterConcurrentUse(t *testing.T) {
	g := NewGater(time.Minute, 64, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				p := testPeer(w*1000 + i)
				g.Block(p, "load")
				if !g.Blocked(p) && g.Len() < 64 {
					t.Errorf("peer %v not blocked right after Block", p)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := g.Len(); n != 64 {
		t.Fatalf("Len = %d, want the cap 64", n)
	}
}
