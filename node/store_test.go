package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// storedCluster starts a one-org cluster whose peers keep their blocks in a
// bbolt store each; a restarted peer reopens nothing: it gets the same store,
// as a restarted process would reopen its data directory.
func storedCluster(t *testing.T, peers int, seed uint64, extra func(p *testnet.Peer) []node.Option) *testnet.Cluster {
	t.Helper()
	return storedClusterConfig(t, peers, seed, nil, extra)
}

// storedClusterConfig is storedCluster with every peer's Config (nil: the
// default).
func storedClusterConfig(t *testing.T, peers int, seed uint64, cfg *node.Config, extra func(p *testnet.Peer) []node.Option) *testnet.Cluster {
	t.Helper()
	stores := map[int]store.Store{}
	c := startCluster(t, oneOrg(peers), testnet.Options{Seed: seed, Config: cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		s := stores[p.Index]
		if s == nil {
			b, err := store.Open(t.TempDir(), store.WithNoSync())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			stores[p.Index] = b
			s = b
		}
		opts := []node.Option{node.WithStore(s)}
		if extra != nil {
			opts = append(opts, extra(p)...)
		}
		return opts
	}})
	return c
}

// TestRestartCatchUp: a peer stopped while 500 blocks (five pull windows) are
// published restarts from its store, catches up from its peers' stores, and
// delivers every block exactly once, in order, across the restart.
func TestRestartCatchUp(t *testing.T) {
	c := storedCluster(t, 4, 30, nil)
	subs := joinAll(t, c, "ch")
	pub, gone := c.Peers[0], c.Peers[3]
	waitConverged(t, c, "ch")
	before := publishN(t, pub, "ch", 10)
	expectBlocks(t, "the peer before its stop", subs[gone.Index], before)

	if err := c.Stop(gone.Index); err != nil {
		t.Fatal(err)
	}
	var during []node.Block
	for i := range 500 {
		b, err := pub.Publish(context.Background(), "ch", fmt.Appendf(nil, "while away %d", i))
		if err != nil {
			t.Fatal(err)
		}
		during = append(during, b)
	}
	start := time.Now()
	if err := c.Restart(gone.Index, 1); err != nil {
		t.Fatal(err)
	}
	if h, _ := gone.Height("ch"); h != 10 {
		t.Fatalf("restarted at height %d, want the stored 10", h)
	}
	sub, err := gone.Subscribe("ch") // the channel was rejoined from the store
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	expectBlocks(t, "the restarted peer", sub, during)
	t.Logf("caught up 500 blocks in %v (%.0f blocks/s)", time.Since(start), 500/time.Since(start).Seconds())
	waitFor(t, "the peer's StateInfo to show its new height", func() bool {
		for _, q := range pub.ChannelPeers("ch") {
			if q.ID == gone.Host.ID() {
				return true
			}
		}
		return false
	})
}

// TestByzantineResponder: a peer that serves forged blocks during catch-up is
// detected and skipped; the catching-up peer still gets the right blocks.
// The honest peers answer fetches 200 ms late while the liar lies, so that
// the liar's answer is read first: a forged copy of a block already taken
// honestly is a duplicate, dropped before its signature is checked, and the
// liar would go unnoticed (it did, once in ten runs).
func TestByzantineResponder(t *testing.T) {
	tr := newRecorder()
	var lying atomic.Bool
	c := storedCluster(t, 4, 31, func(p *testnet.Peer) []node.Option {
		opts := []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
		if p.Index != 1 {
			opts = append(opts, node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
				pull := hs.Pull
				hs.Pull = func(ctx context.Context, from peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
					if req.GetFetch() != nil && lying.Load() {
						select {
						case <-time.After(200 * time.Millisecond):
						case <-ctx.Done():
							return nil, ctx.Err()
						}
					}
					return pull(ctx, from, req)
				}
				return hs
			}, nil))
		}
		if p.Index == 1 {
			opts = append(opts, node.WithFetchTamper(func(env *wire.Envelope) *wire.Envelope {
				if !lying.Load() {
					return env
				}
				forged := &wire.Envelope{Payload: env.GetPayload(), Signature: append([]byte(nil), env.GetSignature()...)}
				forged.Signature[0] ^= 0xff
				return forged
			}))
		}
		return opts
	})
	joinAll(t, c, "ch")
	pub, gone := c.Peers[0], c.Peers[3] // c.Peers[1] lies
	waitConverged(t, c, "ch")
	lying.Store(true)
	if err := c.Stop(gone.Index); err != nil {
		t.Fatal(err)
	}
	want := publishN(t, pub, "ch", 300)
	if err := c.Restart(gone.Index, 1); err != nil {
		t.Fatal(err)
	}
	sub, err := gone.Subscribe("ch")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	expectBlocks(t, "the restarted peer", sub, want)
	if n := tr.droppedCount("pull", "bad_responder"); n == 0 {
		t.Fatal("the byzantine responder was never detected")
	}
	if n := tr.droppedCount("block", "bad_signature"); n == 0 {
		t.Fatal("no forged block was refused: the liar was never asked")
	}
}

// TestPublisherRestart: a publisher that restarts continues its numbering
// from its store and links to its last block; no number is signed twice.
func TestPublisherRestart(t *testing.T) {
	c := storedCluster(t, 3, 32, nil)
	subs := joinAll(t, c, "ch")
	pub := c.Peers[0]
	waitConverged(t, c, "ch")
	first := publishN(t, pub, "ch", 5)
	if err := c.Stop(pub.Index); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(pub.Index, 1); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, c, "ch")
	second := publishN(t, pub, "ch", 5)
	if second[0].Number != 5 {
		t.Fatalf("after the restart the publisher numbered from %d, want 5", second[0].Number)
	}
	if string(second[0].PreviousHash) != string(first[4].Hash) {
		t.Fatal("the first block after the restart does not link to the last one before it")
	}
	for _, p := range c.Peers[1:] {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], append(first, second...))
	}
}
