package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

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
