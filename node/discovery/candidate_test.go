package discovery

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestAddCandidateDialsAndIsRateLimited(t *testing.T) {
	a, b := newHost(t), newHost(t)
	rec := newRecorder()
	clk := &manualClock{now: time.Unix(1_800_000_000, 0)}
	cfg := testConfig(t)
	cfg.CandidateRedialInterval = time.Minute
	d := startDiscovery(t, a, cfg, WithTracer(rec), WithClock(clk.Now))

	d.AddCandidate(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	rec.waitFor(t, "a dial of the candidate", dialed(SourceExternal, b.ID(), true))
	if !connected(a, b) {
		t.Fatal("not connected to the candidate")
	}
	if got := a.Peerstore().Addrs(b.ID()); len(got) == 0 {
		t.Fatal("candidate addresses not in the peerstore")
	}

	// Connected: found again, not dialled.
	d.AddCandidate(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID()}) {
		t.Fatal("dialled a connected candidate")
	}

	// Disconnected, but dialled less than a minute ago: not dialled.
	if err := a.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID()}) {
		t.Fatal("redialled a candidate within CandidateRedialInterval")
	}
	clk.Advance(time.Minute)
	if !d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID()}) {
		t.Fatal("did not redial the candidate after CandidateRedialInterval")
	}
	rec.waitFor(t, "the redial", dialed(SourceExternal, b.ID(), true))

	// Ourselves: never.
	d.AddCandidate(peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()})
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: a.ID()}) {
		t.Fatal("dialled ourselves")
	}
}

func TestAddCandidateOutsideStartCloseOnlyRecordsAddrs(t *testing.T) {
	a, b := newHost(t), newHost(t)
	cfg := testConfig(t)
	d, err := New(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.AddCandidate(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID()}) {
		t.Fatal("dialled before Start")
	}
	if len(a.Peerstore().Addrs(b.ID())) == 0 {
		t.Fatal("addresses not recorded before Start")
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID()}) {
		t.Fatal("dialled after Close")
	}
}

// TestCandidateDialsAreBounded: with one dial slot, held by a dial that
// hangs (a socket that accepts and never speaks), another candidate is
// dropped; Close cancels the hanging dial instead of waiting for its
// timeout.
func TestCandidateDialsAreBounded(t *testing.T) {
	silent, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var accepted sync.WaitGroup
	accepted.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	defer accepted.Wait()
	defer silent.Close()

	a, b := newHost(t), newHost(t)
	hanging := newKey(t)
	hangingID, _ := peer.IDFromPrivateKey(hanging)
	cfg := testConfig(t)
	cfg.MaxConcurrentDials = 1
	cfg.DialTimeout = time.Hour // only Close ends it
	rec := newRecorder()
	d, err := New(a, cfg, WithTracer(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	silentAddr, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + portOf(silent))
	if err != nil {
		t.Fatal(err)
	}
	if !d.dials.try(SourceExternal, peer.AddrInfo{ID: hangingID, Addrs: []ma.Multiaddr{silentAddr}}) {
		t.Fatal("first candidate not dialled")
	}
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: hangingID, Addrs: []ma.Multiaddr{silentAddr}}) {
		t.Fatal("a second dial of a peer already being dialled was started")
	}
	if d.dials.try(SourceExternal, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}) {
		t.Fatal("a dial was started with every slot busy")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	e := rec.waitFor(t, "the hanging dial to end", dialed(SourceExternal, hangingID, false))
	if e.err == nil {
		t.Fatal("hanging dial succeeded")
	}
}

func portOf(l net.Listener) string {
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
