package discovery

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/fabgossip/fabgossip/node/p2phost"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBootstrapDialConnects(t *testing.T) {
	a, b := newHost(t), newHost(t)
	rec := newRecorder()
	cfg := testConfig(t)
	cfg.Bootstrap = addrInfoString(b)
	d := startDiscovery(t, a, cfg, WithTracer(rec))

	if got := d.Bootstrap(); len(got) != 1 || got[0].ID != b.ID() {
		t.Fatalf("Bootstrap() = %v, want b", got)
	}
	rec.waitFor(t, "a successful bootstrap dial of b", dialed(SourceBootstrap, b.ID(), true))
	if !connected(a, b) {
		t.Fatal("a is not connected to b after a successful dial")
	}
}

func TestBootstrapSkipsSelf(t *testing.T) {
	a := newHost(t)
	cfg := testConfig(t)
	cfg.Bootstrap = addrInfoString(a)
	d, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := d.Bootstrap(); len(got) != 0 {
		t.Fatalf("Bootstrap() = %v, want the host itself removed", got)
	}
}

// TestBootstrapRedialsLateStarterAndAfterDrop: the bootstrap peer is not
// up when discovery starts, so dials fail and are retried with back-off
// (20 ms doubling to 200 ms here); once it is up the next retry connects,
// retries stop, and when the connection drops they resume.
func TestBootstrapRedialsLateStarterAndAfterDrop(t *testing.T) {
	// Reserve a port for b, then free it: b starts on it later.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	bKey := newKey(t)
	bID, err := peer.IDFromPrivateKey(bKey)
	if err != nil {
		t.Fatal(err)
	}
	bAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)

	a := newHost(t)
	rec := newRecorder()
	cfg := testConfig(t)
	cfg.Bootstrap = []string{bAddr + "/p2p/" + bID.String()}
	startDiscovery(t, a, cfg, WithTracer(rec), WithRand(rand.New(rand.NewPCG(7, 7))))

	// Three failed dials: the first at Start, two retries after back-off.
	for i := range 3 {
		e := rec.waitFor(t, fmt.Sprintf("failed dial %d of the absent bootstrap peer", i+1), dialed(SourceBootstrap, bID, false))
		if e.err == nil {
			t.Fatal("dial of a peer that is not listening succeeded")
		}
	}

	bCfg := p2phost.LocalConfig()
	bCfg.ListenAddrs = []string{bAddr}
	b := newHostWith(t, bKey, bCfg)
	rec.waitFor(t, "a successful redial once b is up", dialed(SourceBootstrap, bID, true))
	if !connected(a, b) {
		t.Fatal("not connected after a successful redial")
	}
	connectedDials := rec.count(dialed(SourceBootstrap, bID, true))

	// b drops the connection: a redials.
	if err := b.Network().ClosePeer(a.ID()); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a redial after the connection dropped", dialed(SourceBootstrap, bID, true))
	if got := rec.count(dialed(SourceBootstrap, bID, true)); got != connectedDials+1 {
		t.Fatalf("%d successful dials, want %d: retries did not stop while connected", got, connectedDials+1)
	}
}

func TestStartCloseLifecycle(t *testing.T) {
	a := newHost(t)
	d, err := New(a, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	for i := range 2 {
		if err := d.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := d.Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}

	never, err := New(a, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Close(); err != nil {
		t.Fatalf("Close without Start: %v", err)
	}
}
