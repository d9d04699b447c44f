package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
)

// chunkTopo is two orgs of a channel "ch" (A publishes) and an org C that
// is not in it; "ch" has members in A and B only.
func chunkTopo(a, b int) testnet.Topology {
	return testnet.Topology{
		Network: "test",
		Orgs: []testnet.OrgSpec{
			{Name: "A", Peers: a, External: 2},
			{Name: "B", Peers: b, External: 2},
			{Name: "C", Peers: 1, External: 1},
		},
		Channels: []identity.Channel{
			{Name: "ch", Orgs: []string{"A", "B"}, Publishers: []string{"A"}},
			{Name: "side", Orgs: []string{"A", "C"}},
		},
	}
}

// randomData is size seeded random bytes.
func randomData(seed uint64, size int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, size)
	for i := 0; i < size; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// nextBlock reads one block from s within 30 s.
func nextBlock(t *testing.T, who string, s *node.Subscription) node.Block {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	return b
}

// expectNothing checks that s holds no further block now.
func expectNothing(t *testing.T, who string, s *node.Subscription) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, err := s.Next(ctx); err == nil {
		t.Fatalf("%s: delivered block %d more than once, or one it should not have", who, b.Number)
	}
}

// TestChunkedBlockCluster: a block of 16 MiB (chunked, 256 chunks), a small
// one (single-frame) and a chunked one whose last chunk is short reach every member of the channel
// in both orgs exactly once, in order, with identical bytes, and no peer
// outside the channel; the peers hold no assembly afterwards.
func TestChunkedBlockCluster(t *testing.T) {
	for _, mode := range []node.Dissemination{node.DisseminationTree, node.DisseminationFabric} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := node.LocalConfig()
			cfg.Dissemination = mode
			c := startCluster(t, chunkTopo(4, 3), testnet.Options{Seed: 41, Config: &cfg})
			subs := joinAll(t, c, "ch")
			joinAll(t, c, "side")
			waitConverged(t, c, "ch")
			pub := c.Peers[0]

			datas := [][]byte{randomData(1, 16<<20), []byte("small"), randomData(2, 3<<20+12345)}
			var want []node.Block
			for _, d := range datas {
				b, err := pub.Publish(context.Background(), "ch", d)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, b)
			}
			for _, p := range c.Members("ch") {
				who := fmt.Sprintf("peer %d (org %s)", p.Index, p.Org)
				for _, w := range want {
					got := nextBlock(t, who, subs[p.Index])
					if got.Number != w.Number || !bytes.Equal(got.Data, w.Data) || !bytes.Equal(got.Hash, w.Hash) {
						t.Fatalf("%s: block %d (%d bytes), want %d (%d bytes), or different bytes", who, got.Number, len(got.Data), w.Number, len(w.Data))
					}
				}
				expectNothing(t, who, subs[p.Index])
			}
			for _, p := range c.Peers {
				if h, err := p.Height("ch"); p.Org == "C" && (err == nil || h != 0) {
					t.Fatalf("peer %d of org C outside the channel has height %d (%v)", p.Index, h, err)
				}
				if n, b := p.Assemblies(); n != 0 || b != 0 {
					t.Fatalf("peer %d holds %d assemblies (%d bytes) after every block completed", p.Index, n, b)
				}
			}
		})
	}
}

// completionTally records, per block number, what one peer's tracer saw.
type completionTally struct {
	node.NopTracer
	mu        sync.Mutex
	accepted  map[uint64]node.Block
	completed map[uint64][]node.Block
}

func (c *completionTally) BlockAccepted(b node.Block, _ peer.ID, _ node.Path) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accepted[b.Number] = b
}

func (c *completionTally) BlockCompleted(b node.Block, _ peer.ID, via node.Path) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.accepted[b.Number]; !ok {
		b.Hash = nil // marks a completion before its header: the test fails on it
	}
	c.completed[b.Number] = append(c.completed[b.Number], b)
}

// TestBlockCompletedOnceWhenWhole: a chunked block's BlockAccepted sees its
// header (Chunked, no data); BlockCompleted follows once, after it, with the
// whole data. A single-frame block has no BlockCompleted. What the benchmark
// measures a chunked block's latency by.
func TestBlockCompletedOnceWhenWhole(t *testing.T) {
	tallies := map[int]*completionTally{}
	cfg := node.LocalConfig()
	c := startCluster(t, oneOrg(4), testnet.Options{Seed: 43, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		tallies[p.Index] = &completionTally{accepted: map[uint64]node.Block{}, completed: map[uint64][]node.Block{}}
		return []node.Option{node.WithTracer(tallies[p.Index])}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	big, small := randomData(3, 2<<20+777), []byte("small")
	for _, d := range [][]byte{big, small} {
		if _, err := c.Peers[0].Publish(context.Background(), "ch", d); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.Peers[1:] {
		who := fmt.Sprintf("peer %d", p.Index)
		nextBlock(t, who, subs[p.Index])
		nextBlock(t, who, subs[p.Index])
		tl := tallies[p.Index]
		// BlockCompleted is called once the block is whole, outside the
		// channel's lock, so it may follow the delivery by a moment.
		waitFor(t, who+"'s completion", func() bool {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			return len(tl.completed[0]) > 0
		})
		tl.mu.Lock()
		if h := tl.accepted[0]; !h.Chunked || h.Data != nil {
			t.Errorf("%s: chunked header accepted as Chunked=%v with %d bytes, want Chunked and no data", who, h.Chunked, len(h.Data))
		}
		if got := tl.completed[0]; len(got) != 1 || got[0].Hash == nil || !bytes.Equal(got[0].Data, big) {
			t.Errorf("%s: %d completions of the chunked block (want 1, after its header, with its data)", who, len(got))
		}
		if s := tl.accepted[1]; s.Chunked || !bytes.Equal(s.Data, small) || len(tl.completed[1]) != 0 {
			t.Errorf("%s: single-frame block accepted Chunked=%v, %d completions; want a plain block and none", who, s.Chunked, len(tl.completed[1]))
		}
		tl.mu.Unlock()
	}
}
