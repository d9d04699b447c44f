package node_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// dropTally counts one peer's drops by kind/reason.
type dropTally struct {
	node.NopTracer
	mu sync.Mutex
	n  map[string]int
}

func (d *dropTally) Dropped(kind, reason string, _ peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[kind+"/"+reason]++
}

func (d *dropTally) count(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[key]
}

// sendFilter wraps a Network so that filter may change or refuse each
// outgoing batch (nil: not sent), and pull may refuse requests.
type sendFilter struct {
	node.Network
	filter func(to peer.ID, b *wire.Batch) *wire.Batch
	pull   func(req *wire.PullRequest) error
}

func (f *sendFilter) Send(to peer.ID, b *wire.Batch) error {
	if f.filter != nil {
		if b = f.filter(to, b); b == nil {
			return nil
		}
	}
	return f.Network.Send(to, b)
}

func (f *sendFilter) Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	if f.pull != nil {
		if err := f.pull(req); err != nil {
			return nil, err
		}
	}
	return f.Network.Pull(ctx, to, req)
}

// TestChunkTamperCaughtAtFirstHop: the publisher pushes one peer a chunk
// with a flipped byte. That peer refuses it (chunk_tampered), raises the
// publisher's score, never stores or forwards it (no other peer sees a
// tampered chunk), and still delivers the right bytes, by repair; every
// peer delivers the block once. The victim takes pushed chunks from the
// publisher only, so no good copy can reach it first (a chunk held already
// is dropped as a duplicate, unhashed).
func TestChunkTamperCaughtAtFirstHop(t *testing.T) {
	tallies := map[int]*dropTally{}
	var victim, publisher atomic.Value // peer.ID
	var tampered atomic.Int32
	c := startCluster(t, oneOrg(5), testnet.Options{Seed: 42, NodeOptions: func(p *testnet.Peer) []node.Option {
		tallies[p.Index] = &dropTally{}
		opts := []node.Option{node.WithTracer(tallies[p.Index])}
		if p.Index == 2 {
			opts = append(opts, node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
				push := hs.Push
				hs.Push = func(from peer.ID, b *wire.Batch) bool {
					if pub, _ := publisher.Load().(peer.ID); from != pub && len(b.GetChunks()) > 0 {
						b = &wire.Batch{Envelopes: b.Envelopes, Control: b.Control}
					}
					return push(from, b)
				}
				return hs
			}, nil))
		}
		if p.Index == 0 {
			opts = append(opts, node.WithNetworkWrap(nil, func(nw node.Network) node.Network {
				return &sendFilter{Network: nw, filter: func(to peer.ID, b *wire.Batch) *wire.Batch {
					if v, _ := victim.Load().(peer.ID); to != v || len(b.GetChunks()) == 0 || !tampered.CompareAndSwap(0, 1) {
						return b
					}
					out := &wire.Batch{Envelopes: b.Envelopes, Control: b.Control}
					for i, ck := range b.GetChunks() {
						if i == 0 {
							bad := &wire.BlockChunk{Channel: ck.Channel, Number: ck.Number, BlockHash: ck.BlockHash, Index: ck.Index, Data: bytes.Clone(ck.Data)}
							bad.Data[len(bad.Data)/2] ^= 1
							ck = bad
						}
						out.Chunks = append(out.Chunks, ck)
					}
					return out
				}}
			}))
		}
		return opts
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	pub, v := c.Peers[0], c.Peers[2]
	victim.Store(v.Host.ID())
	publisher.Store(pub.Host.ID())

	data := randomData(7, 4<<20)
	want, err := pub.Publish(context.Background(), "ch", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Peers {
		who := fmt.Sprintf("peer %d", p.Index)
		got := nextBlock(t, who, subs[p.Index])
		if got.Number != want.Number || !bytes.Equal(got.Data, data) {
			t.Fatalf("%s delivered block %d of %d bytes, not the published one", who, got.Number, len(got.Data))
		}
		expectNothing(t, who, subs[p.Index])
	}
	if tampered.Load() != 1 {
		t.Fatal("no chunk was tampered with: the test did not test anything")
	}
	if n := tallies[v.Index].count("chunk/chunk_tampered"); n != 1 {
		t.Fatalf("the victim refused %d tampered chunks, want 1", n)
	}
	for i, d := range tallies {
		if i != v.Index && d.count("chunk/chunk_tampered") != 0 {
			t.Fatalf("peer %d saw a tampered chunk: the victim forwarded it", i)
		}
	}
	if s := v.Score(pub.Host.ID()); s <= 0 {
		t.Fatalf("the sender's score at the victim is %v, want it raised", s)
	}
}

// chunkedHeader signs a chunked header of data as block num of ch by p.
func chunkedHeader(t *testing.T, p *testnet.Peer, ch string, num uint64, prev []byte, data []byte) (*wire.Envelope, *wire.Block, chunk.Commitment) {
	t.Helper()
	cm, err := chunk.Commit(data, chunk.DefaultChunkSize, chunk.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	b := &wire.Block{Channel: ch, Number: num, PreviousHash: prev, Publisher: []byte(p.Host.ID()), PublisherCertificate: p.Cert}
	cm.Fill(b)
	env, err := transport.Sign(p.Key, &wire.Message{Content: &wire.Message_Block{Block: b}})
	if err != nil {
		t.Fatal(err)
	}
	return env, b, cm
}

// TestAssembliesBounded: a peer assembles at most MaxAssemblies chunked
// blocks, and at most MaxAssemblyBytes of them, at once; headers beyond are
// refused as assemblies_full without counting against their sender, and the
// count is released when a block completes.
func TestAssembliesBounded(t *testing.T) {
	cfg := node.LocalConfig()
	cfg.MaxAssemblies = 2
	cfg.MaxAssemblyBytes = 5 << 20
	tr := newRecorder()
	c := startCluster(t, oneOrg(3), testnet.Options{Seed: 43, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	pub, recv, sender := c.Peers[0], c.Peers[1], c.Peers[2]

	// Blocks 1, 2 and 3 arrive ahead of block 0, so none can complete.
	inject := func(num uint64, size int) {
		env, _, _ := chunkedHeader(t, pub, "ch", num, []byte("prev"), randomData(num, size))
		recv.InjectEnvelope(sender.Host.ID(), env)
	}
	inject(1, 2<<20)
	inject(2, 4<<20) // 6 MiB in all: over MaxAssemblyBytes
	if n, b := recv.Assemblies(); n != 1 || b != 2<<20 {
		t.Fatalf("assembling %d blocks of %d bytes, want 1 of %d", n, b, 2<<20)
	}
	inject(2, 2<<20)
	inject(3, 1<<20) // a third: over MaxAssemblies
	if n, b := recv.Assemblies(); n != 2 || b != 4<<20 {
		t.Fatalf("assembling %d blocks of %d bytes, want 2 of %d", n, b, 4<<20)
	}
	if got := tr.droppedCount("block", "assemblies_full"); got != 2 {
		t.Fatalf("refused %d headers as assemblies_full, want 2", got)
	}
	if s := recv.Score(sender.Host.ID()); s != 0 {
		t.Fatalf("the sender's score is %v: a full cap is not its fault", s)
	}

	// A header over the data size limit is refused, not blamed.
	cm, err := chunk.Commit(make([]byte, 1<<20), chunk.DefaultChunkSize, chunk.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	huge := &wire.Block{Channel: "ch", Number: 4, Publisher: []byte(pub.Host.ID()), PublisherCertificate: pub.Cert}
	cm.Fill(huge)
	huge.DataSize = chunk.DefaultMaxDataSize + 1
	env, err := transport.Sign(pub.Key, &wire.Message{Content: &wire.Message_Block{Block: huge}})
	if err != nil {
		t.Fatal(err)
	}
	recv.InjectEnvelope(sender.Host.ID(), env)
	if got := tr.droppedCount("block", "too_large"); got != 1 {
		t.Fatalf("refused %d headers as too_large, want 1", got)
	}
	if s := recv.Score(sender.Host.ID()); s != 0 {
		t.Fatalf("the sender's score is %v after a header over this peer's limit", s)
	}
	// A signed header whose commitment is wrong is the sender's fault.
	bad := &wire.Block{Channel: "ch", Number: 5, Publisher: []byte(pub.Host.ID()), PublisherCertificate: pub.Cert}
	cm.Fill(bad)
	bad.ChunkHashes = bad.ChunkHashes[1:]
	env, err = transport.Sign(pub.Key, &wire.Message{Content: &wire.Message_Block{Block: bad}})
	if err != nil {
		t.Fatal(err)
	}
	recv.InjectEnvelope(sender.Host.ID(), env)
	if got := tr.droppedCount("block", "bad_commitment"); got != 1 {
		t.Fatalf("refused %d headers as bad_commitment, want 1", got)
	}
	if s := recv.Score(sender.Host.ID()); s <= 0 {
		t.Fatal("a bad commitment did not count against its sender")
	}
}

// TestChunkRepairResumes: a peer that receives only the even chunks of a
// block by push pulls the odd ones from peers that hold them, asking for
// each chunk at most once (a round asks only for what is still missing),
// and delivers the block.
func TestChunkRepairResumes(t *testing.T) {
	var mu sync.Mutex
	asked := map[uint32]int{} // chunk index: times the lossy peer's repair asked for it
	// Without stripes, the peers it asks hold every chunk: with them, the
	// lossy peer may be the relay of chunks it drops, which every peer then
	// repairs (TestStripeLostRelay).
	cfg := node.LocalConfig()
	cfg.ChunkStripes = false
	c := startCluster(t, oneOrg(4), testnet.Options{Seed: 44, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		if p.Index != 3 {
			return nil
		}
		return []node.Option{node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
			push := hs.Push
			hs.Push = func(from peer.ID, b *wire.Batch) bool {
				if len(b.GetChunks()) > 0 {
					kept := &wire.Batch{Envelopes: b.Envelopes, Control: b.Control}
					for _, ck := range b.GetChunks() {
						if ck.GetIndex()%2 == 0 {
							kept.Chunks = append(kept.Chunks, ck)
						}
					}
					b = kept
				}
				return push(from, b)
			}
			return hs
		}, func(nw node.Network) node.Network {
			return &sendFilter{Network: nw, pull: func(req *wire.PullRequest) error {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range req.GetChunks().GetRanges() {
					for i := r.GetFirst(); i <= r.GetLast(); i++ {
						asked[i]++
					}
				}
				return nil
			}}
		})}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	const count = 49 // 24 odd
	data := randomData(9, (count-1)*chunk.DefaultChunkSize+100)
	want, err := c.Peers[0].Publish(context.Background(), "ch", data)
	if err != nil {
		t.Fatal(err)
	}
	got := nextBlock(t, "the lossy peer", subs[3])
	if got.Number != want.Number || !bytes.Equal(got.Data, data) {
		t.Fatal("the lossy peer delivered other bytes")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := uint32(1); i < count; i += 2 {
		if asked[i] != 1 {
			t.Fatalf("the repair asked for odd chunk %d %d times, want once", i, asked[i])
		}
	}
	for i, n := range asked {
		if n > 1 {
			t.Fatalf("the repair asked for chunk %d %d times", i, n)
		}
	}
}

// TestChunkedGraftSendsChunks: without stripes, a peer that loses every
// pushed copy of a chunked header grafts it from an announcer (a lazy link, which pushed it
// nothing of the block before), and the graft's answer brings every chunk
// after the header. The answering peer is the one that sends the header
// after the GRAFT: an announcer at its MaxEager cap refuses, and the peer
// grafts the next.
func TestChunkedGraftSendsChunks(t *testing.T) {
	var mu sync.Mutex
	var grafting bool                // the peer sent a GRAFT
	var graftee peer.ID              // who answered a GRAFT with the header (one at its cap refuses)
	fromGraftee := map[uint32]bool{} // chunks it then pushed
	grafted := func() (peer.ID, bool) {
		mu.Lock()
		defer mu.Unlock()
		return graftee, graftee != ""
	}
	cfg := node.LocalConfig()
	cfg.PullInterval = time.Minute // the header comes by graft, not by a pull that a slow run lets win
	cfg.ChunkStripes = false       // chunks follow the header (with stripes, they come by the org's stripes)
	c := startCluster(t, oneOrg(7), testnet.Options{Seed: 47, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		if p.Index != 6 {
			return nil
		}
		return []node.Option{node.WithNetworkWrap(func(hs node.Handlers) node.Handlers {
			push := hs.Push
			hs.Push = func(from peer.ID, b *wire.Batch) bool {
				g, ok := grafted()
				if !ok && len(b.GetEnvelopes()) > 0 {
					var kept []*wire.Envelope
					for _, env := range b.GetEnvelopes() {
						if _, num, isBlock := node.PeekBlock(env); isBlock && num == 0 {
							mu.Lock()
							if grafting && graftee == "" {
								graftee = from // the answer to a graft
							}
							answered := graftee == from
							mu.Unlock()
							if !answered {
								continue // the header, before this peer grafted it
							}
						}
						kept = append(kept, env)
					}
					b = &wire.Batch{Envelopes: kept, Control: b.Control, Chunks: b.Chunks}
					g, ok = grafted()
				}
				if ok && from == g {
					mu.Lock()
					for _, ck := range b.GetChunks() {
						fromGraftee[ck.GetIndex()] = true
					}
					mu.Unlock()
				}
				return push(from, b)
			}
			return hs
		}, func(nw node.Network) node.Network {
			return &sendFilter{Network: nw, filter: func(to peer.ID, b *wire.Batch) *wire.Batch {
				for _, ctl := range b.GetControl() {
					if len(ctl.GetGraft()) > 0 {
						mu.Lock()
						grafting = true
						mu.Unlock()
					}
				}
				return b
			}}
		})}
	}})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	const count = 32
	data := randomData(5, count*chunk.DefaultChunkSize)
	if _, err := c.Peers[0].Publish(context.Background(), "ch", data); err != nil {
		t.Fatal(err)
	}
	got := nextBlock(t, "the grafting peer", subs[6])
	if !bytes.Equal(got.Data, data) {
		t.Fatal("the grafting peer delivered other bytes")
	}
	if _, ok := grafted(); !ok {
		t.Fatal("the peer never grafted: the header reached it some other way")
	}
	waitFor(t, "every chunk from the grafted peer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fromGraftee) == count
	})
}
