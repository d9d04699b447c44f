package node_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// chunkLog records the chunks every peer receives by push: who sent each
// chunk index to whom.
type chunkLog struct {
	mu   sync.Mutex
	got  map[peer.ID]map[uint32]int // receiver: chunk index: copies
	sent map[peer.ID]int            // sender: chunks
}

func newChunkLog() *chunkLog {
	return &chunkLog{got: map[peer.ID]map[uint32]int{}, sent: map[peer.ID]int{}}
}

// wrap records what the peer self receives; drop, if set, discards a chunk
// before the node sees it.
func (l *chunkLog) wrap(self peer.ID, drop func(*wire.BlockChunk) bool) node.Option {
	return node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
		push := hs.Push
		hs.Push = func(from peer.ID, b *wire.Batch) bool {
			if len(b.GetChunks()) == 0 {
				return push(from, b)
			}
			kept := &wire.Batch{Envelopes: b.Envelopes, Control: b.Control}
			l.mu.Lock()
			for _, ck := range b.GetChunks() {
				if drop != nil && drop(ck) {
					continue
				}
				if l.got[self] == nil {
					l.got[self] = map[uint32]int{}
				}
				l.got[self][ck.GetIndex()]++
				l.sent[from]++
				kept.Chunks = append(kept.Chunks, ck)
			}
			l.mu.Unlock()
			return push(from, kept)
		}
		return hs
	}, nil)
}

// threeOrgs is three orgs of five peers, two of them external, in one
// channel.
func threeOrgs() testnet.Topology {
	return testnet.Topology{
		Network: "test",
		Orgs: []testnet.OrgSpec{
			{Name: "A", Peers: 5, External: 2}, {Name: "B", Peers: 5, External: 2}, {Name: "C", Peers: 5, External: 2},
		},
		Channels: []identity.Channel{{Name: "ch", Orgs: []string{"A", "B", "C"}}},
	}
}

// TestStripesOneCopyPerPeer: a chunked block crosses three orgs by stripes.
// Every member gets every chunk by push exactly once (no repair, no
// duplicate: each org's two doors are entries for half the chunks each, and
// a relay sends neither back), and no peer sends more than two copies of
// the block: the publisher sends one into its org and half of one to each
// other org's door, the relays about one each, where along the tree an
// inner peer sent one per eager child and the publisher one per org.
func TestStripesOneCopyPerPeer(t *testing.T) {
	log := newChunkLog()
	c := startCluster(t, threeOrgs(), testnet.Options{Seed: 61, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{log.wrap(p.Host.ID(), nil)}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	const count = 16
	data := randomData(61, count*chunk.DefaultChunkSize)
	pub := c.Peers[0] // external, in org A
	if _, err := pub.Publish(context.Background(), "ch", data); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Members("ch") {
		if p == pub {
			continue
		}
		if got := nextBlock(t, p.Org, subs[p.Index]); !bytes.Equal(got.Data, data) {
			t.Fatalf("peer %d delivered other bytes", p.Index)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, p := range c.Members("ch") {
		if p == pub {
			if n := len(log.got[p.Host.ID()]); n != 0 {
				t.Errorf("the publisher was sent %d chunks of its own block", n)
			}
			continue
		}
		got := log.got[p.Host.ID()]
		for i := range uint32(count) {
			if got[i] != 1 {
				t.Errorf("peer %d (%s) got chunk %d %d times by push, want once", p.Index, p.Org, i, got[i])
			}
		}
	}
	for _, p := range c.Peers {
		if n := log.sent[p.Host.ID()]; n > 2*count {
			t.Errorf("peer %d (%s, external %v) sent %d chunks, want at most %d (two copies)", p.Index, p.Org, p.External, n, 2*count)
		}
	}
}

// TestStripeLostRelay: one peer loses every chunk pushed to it, those it
// was asked to relay to its org included, so stripes alone cannot complete
// its org. Every member still delivers the right bytes (the missing chunks
// come by repair); the test checks the loss happened, not which peer
// repaired what.
func TestStripeLostRelay(t *testing.T) {
	log := newChunkLog()
	c := startCluster(t, threeOrgs(), testnet.Options{Seed: 62, NodeOptions: func(p *testnet.Peer) []node.Option {
		var drop func(*wire.BlockChunk) bool
		if p.Index == 7 { // an internal peer of org B
			drop = func(*wire.BlockChunk) bool { return true }
		}
		return []node.Option{log.wrap(p.Host.ID(), drop)}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	data := randomData(62, 16*chunk.DefaultChunkSize)
	if _, err := c.Peers[2].Publish(context.Background(), "ch", data); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Members("ch") {
		if p.Index == 2 {
			continue
		}
		if got := nextBlock(t, p.Org, subs[p.Index]); !bytes.Equal(got.Data, data) {
			t.Fatalf("peer %d delivered other bytes", p.Index)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if n := len(log.got[c.Peers[7].Host.ID()]); n != 0 {
		t.Fatalf("the lossy peer kept %d chunks by push: the test dropped nothing", n)
	}
}

// TestEarlyChunksHeld: a peer whose headers are held back 300 ms gets a
// block's chunks before its header. It keeps them, applies them when the
// header comes and delivers the block without pulling a chunk (repair and
// pull are a minute away).
func TestEarlyChunksHeld(t *testing.T) {
	var wg sync.WaitGroup // the delayed pushes, waited for before the cluster closes
	var mu sync.Mutex
	pulled := 0
	cfg := node.LocalConfig()
	cfg.PullInterval = time.Minute
	cfg.ChunkRepairAfter = time.Minute
	c := startCluster(t, oneOrg(5), testnet.Options{Seed: 63, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		if p.Index != 4 {
			return nil
		}
		return []node.Option{node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
			push := hs.Push
			hs.Push = func(from peer.ID, b *wire.Batch) bool {
				if len(b.GetEnvelopes()) == 0 {
					return push(from, b)
				}
				wg.Add(1)
				time.AfterFunc(300*time.Millisecond, func() {
					defer wg.Done()
					push(from, b)
				})
				return true // the frame is kept, for the delayed push
			}
			return hs
		}, func(nw node.Network) node.Network {
			return &sendFilter{Network: nw, pull: func(req *wire.PullRequest) error {
				if len(req.GetChunks().GetRanges()) > 0 {
					mu.Lock()
					pulled++
					mu.Unlock()
				}
				return nil
			}}
		})}
	}})
	t.Cleanup(wg.Wait)
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	data := randomData(63, 8*chunk.DefaultChunkSize)
	if _, err := c.Peers[0].Publish(context.Background(), "ch", data); err != nil {
		t.Fatal(err)
	}
	if got := nextBlock(t, "the late peer", subs[4]); !bytes.Equal(got.Data, data) {
		t.Fatal("the late peer delivered other bytes")
	}
	mu.Lock()
	defer mu.Unlock()
	if pulled != 0 {
		t.Fatalf("the late peer pulled chunks %d times: its early chunks were not kept", pulled)
	}
}
