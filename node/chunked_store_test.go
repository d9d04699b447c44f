package node_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestChunkedBlockRestart: with stores, a delivered chunked block survives
// a restart (read back whole from the store); a block
// whose chunks were cut off mid-way is lost with the process, never half
// delivered, and finished after the restart by pulling its header and
// chunks; a block published while the peer was away is caught up too. The
// pull window keeps no chunked block but the newest, so block 1 is served
// from the other peers' stores.
func TestChunkedBlockRestart(t *testing.T) {
	var cut atomic.Bool // the peer's chunks stop: it holds a header it cannot finish
	cfg := node.LocalConfig()
	cfg.MaxChunkedWindowBytes = 0
	c := storedClusterConfig(t, 4, 45, &cfg, func(p *testnet.Peer) []node.Option {
		if p.Index != 3 {
			return nil
		}
		return []node.Option{node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
			push := hs.Push
			hs.Push = func(from peer.ID, b *wire.Batch) bool {
				if cut.Load() && len(b.GetChunks()) > 0 {
					b = &wire.Batch{Envelopes: b.Envelopes, Control: b.Control}
				}
				return push(from, b)
			}
			return hs
		}, func(nw node.Network) node.Network {
			return &sendFilter{Network: nw, pull: func(req *wire.PullRequest) error {
				if cut.Load() && req.GetChunks() != nil {
					return errors.New("cut off")
				}
				return nil
			}}
		})}
	})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	pub, gone := c.Peers[0], c.Peers[3]

	first := randomData(11, 2<<20+7)
	b0, err := pub.Publish(context.Background(), "ch", first)
	if err != nil {
		t.Fatal(err)
	}
	if got := nextBlock(t, "the peer before its stop", subs[gone.Index]); !bytes.Equal(got.Data, first) {
		t.Fatal("block 0 delivered with other bytes")
	}
	cut.Store(true)
	second := randomData(12, 3<<20)
	if _, err := pub.Publish(context.Background(), "ch", second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer to hold block 1's header", func() bool { n, _ := gone.Assemblies(); return n == 1 })
	if err := c.Stop(gone.Index); err != nil {
		t.Fatal(err)
	}
	third := randomData(13, 5<<20)
	if _, err := pub.Publish(context.Background(), "ch", third); err != nil {
		t.Fatal(err)
	}
	cut.Store(false)
	if err := c.Restart(gone.Index, 1); err != nil {
		t.Fatal(err)
	}
	if h, _ := gone.Height("ch"); h != 1 {
		t.Fatalf("restarted at height %d, want the stored 1", h)
	}
	stored, err := gone.Blocks("ch", 0, 1)
	if err != nil || len(stored) != 1 || !bytes.Equal(stored[0].Data, first) || !bytes.Equal(stored[0].Hash, b0.Hash) {
		t.Fatalf("block 0 read back from the store: %d blocks, err %v, or other bytes", len(stored), err)
	}
	sub, err := gone.Subscribe("ch")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, want := range [][]byte{second, third} {
		got := nextBlock(t, "the restarted peer", sub)
		if got.Number != uint64(i+1) || !bytes.Equal(got.Data, want) {
			t.Fatalf("the restarted peer delivered block %d of %d bytes, want %d of %d", got.Number, len(got.Data), i+1, len(want))
		}
	}
	expectNothing(t, "the restarted peer", sub)
}
