package node

import (
	"bytes"
	"context"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Chunk repair: pulling the missing chunks of a chunked block, by ranges,
// from peers that hold them, and serving such requests.

// repairChunks starts a repair round for every incomplete chunked block
// that got no chunk for ChunkRepairAfter and has no round under way.
func (n *Node) repairChunks(ctx context.Context) {
	now := n.now()
	for _, cs := range n.channelList() {
		var due []*chunkedBlock
		var missing [][]chunk.Range
		cs.mu.Lock()
		if cs.activeLocked() {
			for _, b := range cs.ledger.blocks {
				c := b.chunks
				if c == nil || c.repairing || c.asm.Complete() || now.Sub(c.progress) < n.cfg.ChunkRepairAfter {
					continue
				}
				c.repairing = true
				due = append(due, c)
				missing = append(missing, c.asm.Missing())
			}
		}
		cs.mu.Unlock()
		for i, c := range due {
			n.wg.Go(func() { n.repairBlock(ctx, cs, c, missing[i]) })
		}
	}
}

// repairBlock runs one repair round for c: the missing chunks spread over
// up to PullPeerNum sources (the header's sender first, then peers whose
// height says they delivered the block), each asked for a bounded request
// at once.
func (n *Node) repairBlock(ctx context.Context, cs *channelState, c *chunkedBlock, missing []chunk.Range) {
	var added atomic.Int64
	defer func() {
		cs.mu.Lock()
		c.repairing = false
		if added.Load() == 0 && !c.asm.Complete() {
			c.progress = n.now() // nothing came: wait a full interval before the next round
		}
		cs.mu.Unlock()
		if added.Load() > 0 {
			n.kickRepair() // the next round at once: resume where this one ended
		}
	}()
	n.metrics.pullRounds.Inc()
	peers := n.chunkSources(cs, c)
	if len(peers) == 0 {
		return
	}
	sources := make([]chunk.Source, len(peers)) // Have nil: asked whole, each serves what it holds
	perSource := max(1, maxChunkBytes/int(c.asm.Commitment().ChunkSize()))
	done := make(chan struct{}, len(peers))
	asks := chunk.Assign(missing, sources, min(perSource, maxChunkResponse))
	for _, a := range asks {
		p := peers[a.Source]
		go func() {
			defer func() { done <- struct{}{} }()
			added.Add(int64(n.pullChunks(ctx, p, c, a.Ranges)))
		}()
	}
	for range asks {
		<-done
	}
}

// chunkSources returns up to PullPeerNum peers to ask for c's chunks: its
// header's sender, then eligible peers that announced chunks and whose
// height is past the block, in random order.
func (n *Node) chunkSources(cs *channelState, c *chunkedBlock) []peer.ID {
	var out []peer.ID
	cs.mu.Lock()
	from := c.from
	if from != "" && cs.chunkCapableLocked(from) {
		out = append(out, from)
	}
	cs.mu.Unlock()
	more := n.samplePeers(n.cfg.PullPeerNum, func(v *nodeView, m *routing.Member) bool {
		if m.ID == from || !v.BlockPeer(m, cs.name) {
			return false
		}
		cs.mu.Lock()
		defer cs.mu.Unlock()
		si := cs.states[m.ID]
		return si != nil && si.chunks && si.height > c.num
	})
	out = append(out, more...)
	return out[:min(len(out), n.cfg.PullPeerNum)]
}

// pullChunks asks p for the chunks of c in rs and applies the answer as it
// would pushed chunks: verified, stored, forwarded. It returns how many
// were new.
func (n *Node) pullChunks(ctx context.Context, p peer.ID, c *chunkedBlock, rs []chunk.Range) int {
	req := &wire.ChunkRequest{Channel: c.ch, Number: c.num, BlockHash: c.hash}
	for _, r := range rs {
		req.Ranges = append(req.Ranges, &wire.ChunkRange{First: uint32(r.First), Last: uint32(r.Last)})
	}
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Chunks{Chunks: req}})
	if err != nil {
		return 0
	}
	chunks := resp.GetChunks().GetChunks()
	if len(chunks) > maxChunkResponse {
		chunks = chunks[:maxChunkResponse]
	}
	for _, ck := range chunks {
		// A chunk of another block in the answer is a protocol violation.
		if ck.GetChannel() != c.ch || ck.GetNumber() != c.num || !bytes.Equal(ck.GetBlockHash(), c.hash) {
			n.drop("chunk", reasonMalformed, p)
			return 0
		}
	}
	n.countChunks(p, chunks)
	return n.applyChunks(p, chunks, true)
}

// serveChunks answers a chunk request with the held chunks it names, in
// ascending order, at most maxChunkResponse of them and maxChunkBytes of
// data: from the block being assembled or held, or from the store for a
// delivered block that left the window.
func (n *Node) serveChunks(from peer.ID, r *wire.ChunkRequest) (*wire.PullResponse, error) {
	cs, ok := n.pullChannel(from, r.GetChannel())
	if !ok {
		return nil, errPullDenied
	}
	cs.mu.Lock()
	b := cs.ledger.blocks[r.GetNumber()]
	inStore := b == nil && r.GetNumber() < cs.ledger.height && n.store != nil
	cs.mu.Unlock()
	if inStore {
		b = n.loadServed(cs, r.GetNumber())
	}
	if b == nil || b.chunks == nil || !bytes.Equal(b.chunks.hash, r.GetBlockHash()) {
		return &wire.PullResponse{Response: &wire.PullResponse_Chunks{Chunks: &wire.ChunkResponse{}}}, nil
	}
	c := b.chunks
	rs := make([]chunk.Range, 0, len(r.GetRanges()))
	for _, x := range r.GetRanges() {
		rs = append(rs, chunk.Range{First: int(x.GetFirst()), Last: int(x.GetLast())})
	}
	if chunk.CheckRanges(rs, c.asm.Commitment().Count(), maxPullRanges) != nil {
		n.drop("pull", reasonMalformed, from)
		return nil, errPullDenied
	}
	out := &wire.ChunkResponse{}
	total := 0
	cs.mu.Lock()
serve:
	for _, x := range rs {
		for i := x.First; i <= x.Last; i++ {
			data, ok := c.asm.Chunk(i)
			if !ok {
				continue
			}
			if len(out.Chunks) == maxChunkResponse || total+len(data) > maxChunkBytes && len(out.Chunks) > 0 {
				break serve
			}
			total += len(data)
			out.Chunks = append(out.Chunks, &wire.BlockChunk{Channel: c.ch, Number: c.num, BlockHash: c.hash, Index: uint32(i), Data: data})
		}
	}
	cs.mu.Unlock()
	return &wire.PullResponse{Response: &wire.PullResponse_Chunks{Chunks: out}}, nil
}

// loadServed reads a delivered block back from the store to serve it,
// keeping the last chunked one read for the requests that follow.
func (n *Node) loadServed(cs *channelState, num uint64) *block {
	cs.loadMu.Lock()
	defer cs.loadMu.Unlock()
	if b := cs.loaded; b != nil && b.msg.GetNumber() == num {
		return b
	}
	b := n.loadBlock(cs.name, num)
	if b != nil && b.chunks != nil {
		cs.loaded = b
	}
	return b
}

// maxPullRanges caps the ranges of a chunk request this peer serves (the
// transport's count cap bounds what it decodes).
const maxPullRanges = 1024

// kickRepair asks the chunk loop to look for blocks to repair now.
func (n *Node) kickRepair() { n.chunked.ring() }

// A chunked block is stored as one record: its header envelope (field 15)
// and its data (field 16). The field numbers are above any of Envelope's,
// which a marshalled Envelope starts with, so the two never parse as each
// other.
const (
	storedHeaderField = 15
	storedDataField   = 16
)

// storedChunked encodes a chunked block for the store.
func storedChunked(env, data []byte) []byte {
	out := make([]byte, 0, len(env)+len(data)+24)
	out = protowire.AppendTag(out, storedHeaderField, protowire.BytesType)
	out = protowire.AppendBytes(out, env)
	out = protowire.AppendTag(out, storedDataField, protowire.BytesType)
	return protowire.AppendBytes(out, data)
}

// splitStoredChunked decodes what storedChunked wrote.
func splitStoredChunked(raw []byte) (env, data []byte, ok bool) {
	f, typ, n := protowire.ConsumeTag(raw)
	if n < 0 || f != storedHeaderField || typ != protowire.BytesType {
		return nil, nil, false
	}
	env, m := protowire.ConsumeBytes(raw[n:])
	if m < 0 {
		return nil, nil, false
	}
	raw = raw[n+m:]
	f, typ, n = protowire.ConsumeTag(raw)
	if n < 0 || f != storedDataField || typ != protowire.BytesType {
		return nil, nil, false
	}
	data, m = protowire.ConsumeBytes(raw[n:])
	if m < 0 || n+m != len(raw) {
		return nil, nil, false
	}
	return env, data, true
}

// decodeStoredChunked rebuilds a complete chunked block read back from the
// store, its data checked against the header's commitment. Its size is the
// whole record's, header and data: what reading it cost, so a fetch that
// reads chunked blocks from the store stops after one.
func decodeStoredChunked(envRaw, data []byte) *block {
	env := new(wire.Envelope)
	if proto.Unmarshal(envRaw, env) != nil {
		return nil
	}
	m, ok := decodeBlock(env.GetPayload())
	if !ok {
		return nil
	}
	c, err := chunk.FromBlock(m, chunk.DefaultLimits())
	if err != nil {
		return nil
	}
	asm, err := chunk.Assembled(c, data)
	if err != nil {
		return nil
	}
	hash := BlockHash(m)
	return &block{env: env, msg: m, hash: hash, size: len(envRaw) + len(data), chunks: newChunkedBlock(m.GetChannel(), m.GetNumber(), hash, asm, "")}
}
