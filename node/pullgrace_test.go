package node_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestPullLeavesYoungBlocksToPush: a pull round that falls while a block is
// on its way to the asker by push does not take the delivery from push. The
// benchmark found this: its peers start together, so their 4 s pull rounds
// fall at one moment of every eighth 500 ms block period; where that moment
// was just after one channel's publish, members fetched that channel's
// block from peers that had it 30-110 ms after the publish, most while its
// push was already sent to them (no loss, no drop), and P_full_push stayed
// below 1 on that channel, every missed block 8 numbers apart.
//
// Here the publisher's pushes to the other peer are held back while that
// peer pulls round after round, by digest and, once the publisher's
// StateInfo tells it the height, by catch-up too. The block stays younger
// than PullGrace at the publisher for the whole test, so no round may fetch
// it; let go, the push delivers it. Serving young blocks, the first round
// fetches it.
func TestPullLeavesYoungBlocksToPush(t *testing.T) {
	cfg := node.LocalConfig()
	cfg.PullInterval = 20 * time.Millisecond
	cfg.PullGrace = time.Hour
	gate := &pushGate{}
	obs := &pullObserver{}
	c := startCluster(t, oneOrg(2), testnet.Options{Seed: 41, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		if p.Index != 1 {
			return nil
		}
		return []node.Option{node.WithTracer(obs), node.WithNetworkWrap(gate.wrap, obs.wrap)}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	pub, rx := c.Peers[0], c.Peers[1]
	obs.watch(pub.Host.ID())
	gate.hold(pub.Host.ID())

	want := publishN(t, pub, "ch", 1)
	waitFor(t, "the publisher's height in a StateInfo at the receiver", func() bool { return obs.height() >= 1 })
	rounds := obs.digests()
	waitFor(t, "five more pull rounds", func() bool { return obs.digests() >= rounds+5 })
	if n := obs.accepted(node.ViaPull); n != 0 {
		t.Fatalf("the receiver pulled %d blocks while their push was on its way", n)
	}
	if gate.held() == 0 {
		t.Fatal("no push of the block was held back: the test did not set up the race")
	}

	gate.release()
	expectBlocks(t, "receiver", subs[rx.Index], want)
	if got := obs.accepted(node.ViaPush); got != 1 {
		t.Fatalf("the receiver accepted %d blocks by push, want 1 (and %d by pull)", got, obs.accepted(node.ViaPull))
	}
}

// pushGate holds back the push frames that carry a block from one peer
// until released, then hands them on in order.
type pushGate struct {
	mu       sync.Mutex
	from     peer.ID
	handle   func(peer.ID, *wire.Batch) bool
	frames   []*wire.Batch
	released bool
}

func (g *pushGate) wrap(hs node.Handlers) node.Handlers {
	next := hs.Push
	hs.Push = func(from peer.ID, b *wire.Batch) bool {
		g.mu.Lock()
		g.handle = next
		if from == g.from && !g.released && carriesBlock(b) {
			g.frames = append(g.frames, b)
			g.mu.Unlock()
			return true // held, to be handled later
		}
		g.mu.Unlock()
		return next(from, b)
	}
	return hs
}

func (g *pushGate) hold(from peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.from = from
}

func (g *pushGate) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.frames)
}

func (g *pushGate) release() {
	g.mu.Lock()
	frames, handle := g.frames, g.handle
	g.frames, g.released = nil, true
	g.mu.Unlock()
	for _, b := range frames {
		handle(g.from, b)
	}
}

func carriesBlock(b *wire.Batch) bool {
	for _, env := range b.GetEnvelopes() {
		var m wire.Message
		if proto.Unmarshal(env.GetPayload(), &m) == nil && m.GetBlock() != nil {
			return true
		}
	}
	return false
}

// pullObserver is the receiver's tracer and a wrap of its network: it
// counts the block digests it is answered, the blocks it accepts by path,
// and the highest ledger height a StateInfo of the watched peer told it.
type pullObserver struct {
	node.NopTracer
	mu     sync.Mutex
	peer   peer.ID
	via    map[node.Path]int
	top    uint64
	digest int
}

func (o *pullObserver) watch(p peer.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peer = p
}

func (o *pullObserver) BlockAccepted(_ node.Block, _ peer.ID, via node.Path) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.via == nil {
		o.via = map[node.Path]int{}
	}
	o.via[via]++
}

func (o *pullObserver) Received(_ peer.ID, env *wire.Envelope) {
	var m wire.Message
	if proto.Unmarshal(env.GetPayload(), &m) != nil || m.GetStateInfo() == nil {
		return
	}
	si := m.GetStateInfo()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.peer != "" && peer.ID(si.GetPeerId()) == o.peer {
		o.top = max(o.top, si.GetLedgerHeight())
	}
}

func (o *pullObserver) accepted(via node.Path) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.via[via]
}

func (o *pullObserver) height() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.top
}

func (o *pullObserver) digests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.digest
}

func (o *pullObserver) wrap(nw node.Network) node.Network { return digestCounter{nw, o} }

// digestCounter counts the block digests its network is answered.
type digestCounter struct {
	node.Network
	o *pullObserver
}

func (d digestCounter) Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	resp, err := d.Network.Pull(ctx, to, req)
	if err == nil && resp.GetDigest() != nil {
		d.o.mu.Lock()
		d.o.digest++
		d.o.mu.Unlock()
	}
	return resp, err
}
