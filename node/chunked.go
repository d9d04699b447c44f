package node

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Chunked blocks (issue #15, package node/chunk). A block whose data is
// over Config.ChunkThreshold travels as a signed header, on every path a
// single-frame block takes (push, tree, pull, store), and its chunks follow
// as wire.BlockChunk in Batch.chunks, unsigned, each checked against the
// header on arrival:
//
//   - The header is verified like any block (signature, authority), with
//     the chunk commitment in place of the data hash, and held in the
//     ledger from then on, so a second copy is a duplicate and the tree
//     learns from it as usual. Its data is an Assembly, one buffer however
//     many peers send the chunks; the Assemblies under way are capped in
//     count and bytes (Config.MaxAssemblies, MaxAssemblyBytes).
//   - A chunk is taken only for a held header with its block hash; Add
//     verifies it, and a refusal counts against the sender. The block is
//     staged (persisted, delivered in order, once) when it completes.
//   - Forwarding: with stripes (stripe.go, the tree's default) the chunks
//     take paths of their own; without, every peer this one sent the
//     header to (tree payload, graft answer, Fabric push) becomes a target
//     of every chunk. Either way each chunk goes to its targets as soon as
//     it is held, straight to the transport (cut-through, no emitter
//     wait). A target whose send queue is full is retried shortly; one
//     that stays full is dropped and repairs by pull.
//   - Repair: a block that gets no chunk for Config.ChunkRepairAfter pulls
//     its Missing ranges from peers that hold the block (chunk.Assign over
//     the header's sender and peers whose height is past it), a bounded
//     request each; every round asks only for what is still missing.
//   - Compatibility: a peer announces that it takes chunked blocks in its
//     StateInfo (property "fabgossip.chunks"); headers and chunks go only
//     to peers that announced it, so a peer that predates chunks is never
//     sent a header it would blame as a data hash mismatch. Such a peer
//     misses chunked blocks; the push protocol ID stays 1.0.0, since
//     nothing it is sent changed.

// propChunks is the StateInfo property by which a peer announces that it
// assembles chunked blocks.
const propChunks = "fabgossip.chunks"

// Chunk frame and request bounds.
const (
	// chunkFrameBytes is the chunk data a push frame carries (at least one
	// chunk, so it is one 64 KiB chunk at the default size). A relay
	// decodes a frame only once all of it arrived, so this, and not the
	// chunk size alone, is what each hop adds to a large block's path: at
	// 1 MiB, 84 ms per hop at 100 Mbit/s against 5 ms at 64 KiB.
	chunkFrameBytes  = 32 << 10
	chunkPumpBytes   = 4 << 20         // chunk data per target per pump call, before others get a turn
	chunkTargetStuck = 2 * time.Second // a target whose queue stays full this long is dropped, to repair by pull
	chunkRetry       = 5 * time.Millisecond
	maxChunkResponse = 1024    // chunks per chunk response
	maxChunkBytes    = 3 << 20 // chunk data per chunk response
)

// Drop reasons of chunked blocks.
const (
	reasonTooLarge        = "too_large"       // a header over this peer's limits: not evidence
	reasonBadCommitment   = "bad_commitment"  // a signed header with a malformed commitment
	reasonAssembliesFull  = "assemblies_full" // over MaxAssemblies or MaxAssemblyBytes
	reasonUnknownBlock    = "unknown_block"   // a chunk without a held header: late or early, not evidence
	reasonChunkOutOfRange = "chunk_out_of_range"
	reasonChunkLength     = "chunk_length"
	reasonChunkTampered   = "chunk_tampered"
	reasonNoChunkSupport  = "no_chunk_support" // a peer that did not announce chunks
)

// chunkedBlock is the data of a chunked block this peer holds or is
// assembling. Its fields are guarded by the channel's lock; held chunks
// (Assembly.Chunk) may be read outside it.
type chunkedBlock struct {
	ch   string
	num  uint64
	hash []byte // BlockHash of the header: what its chunks name
	asm  *chunk.Assembly
	from peer.ID // the header's sender: a source for repair ("" if published here)
	// progress is when the last chunk was added (or the header accepted);
	// zero asks for repair at once.
	progress  time.Time
	repairing bool // a repair round is under way
	reserved  bool // counted in the node's assemblies
	targets   map[peer.ID]*chunkTarget
	org       string    // the publisher's org
	relays    []peer.ID // the stripe relays of the chunks that enter the org here (stripe.go), once one does
	fanout    []peer.ID // the org's other members, to relay stripes to (but the asker), once asked to
}

// chunkTarget is one peer the block's chunks go to.
type chunkTarget struct {
	kind  targetKind
	sent  []uint64  // bit i: chunk i handed to the transport for the peer, or not for it
	low   int       // every chunk below it is sent
	stuck time.Time // since when its queue refuses chunks; zero when it takes them
}

// targetKind says which of a block's chunks a target is sent.
type targetKind uint8

const (
	// targetAll is sent every chunk: a peer this one sent the header to,
	// in another org (or in any, without stripes).
	targetAll targetKind = iota
	// targetStripe is sent, with relay set, the chunks this peer, the
	// block's entry into its org, stripes to it (stripe.go).
	targetStripe
	// targetFanout is sent the chunks this peer was asked to relay over
	// its org.
	targetFanout
	// targetDoor is a door of another org, sent its share of the chunks of
	// a block published in this peer's org.
	targetDoor
)

// newTarget returns a target of kind for a block of count chunks: owed
// every chunk, or (want false) none until cleared.
func newTarget(kind targetKind, count int, want bool) *chunkTarget {
	t := &chunkTarget{kind: kind, sent: make([]uint64, (count+63)/64)}
	if !want {
		for i := range count {
			t.set(i)
		}
		t.low = count
	}
	return t
}

func newChunkedBlock(ch string, num uint64, hash []byte, asm *chunk.Assembly, from peer.ID) *chunkedBlock {
	return &chunkedBlock{ch: ch, num: num, hash: hash, asm: asm, from: from, targets: map[peer.ID]*chunkTarget{}}
}

// complete reports whether b has all its data: always for a single-frame
// block. The channel's lock is held.
func (b *block) complete() bool { return b.chunks == nil || b.chunks.asm.Complete() }

// size is the block's data size.
func (c *chunkedBlock) size() int { return c.asm.Commitment().DataSize() }

// data returns the data of a complete chunked block.
func (c *chunkedBlock) data() []byte {
	d, _ := c.asm.Data()
	return d
}

func (t *chunkTarget) has(i int) bool { return t.sent[i/64]&(1<<(i%64)) != 0 }
func (t *chunkTarget) set(i int)      { t.sent[i/64] |= 1 << (i % 64) }
func (t *chunkTarget) clear(i int) {
	t.sent[i/64] &^= 1 << (i % 64)
	t.low = min(t.low, i)
}

// chunkState is the node's part of chunked blocks that is not per channel:
// the assemblies under way and the targets waiting for a full queue.
type chunkState struct {
	mu      sync.Mutex
	count   int // assemblies under way
	bytes   int // their data sizes
	stalled map[*chunkedBlock]*channelState
	early   earlyChunks // chunks that overtook their headers (stripe.go)
	bell    chan struct{}
}

func newChunkState() *chunkState {
	return &chunkState{stalled: map[*chunkedBlock]*channelState{}, bell: make(chan struct{}, 1)}
}

// reserve counts an assembly of size bytes, if it fits the caps.
func (n *Node) reserveAssembly(size int) bool {
	s := n.chunked
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count >= n.cfg.MaxAssemblies || s.bytes+size > n.cfg.MaxAssemblyBytes {
		return false
	}
	s.count++
	s.bytes += size
	return true
}

// releaseLocked uncounts c's assembly once. The channel's lock is held.
func (n *Node) releaseLocked(c *chunkedBlock) {
	if c == nil || !c.reserved {
		return
	}
	c.reserved = false
	s := n.chunked
	s.mu.Lock()
	s.count--
	s.bytes -= c.size()
	s.mu.Unlock()
}

// Assemblies returns the number and data bytes of the chunked blocks this
// peer is assembling now.
func (n *Node) Assemblies() (count, bytes int) {
	s := n.chunked
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count, s.bytes
}

func (s *chunkState) ring() {
	select {
	case s.bell <- struct{}{}:
	default:
	}
}

// chunkCapableLocked reports whether p announced chunk support in its
// StateInfo for cs. cs.mu is held.
func (cs *channelState) chunkCapableLocked(p peer.ID) bool {
	si := cs.states[p]
	return si != nil && si.chunks
}

// chunkedHeld returns the chunked data of block num of ch if this peer
// holds it as a chunked block in memory, and whether to may be sent it.
func (n *Node) chunkedHeld(ch string, num uint64, to peer.ID) (c *chunkedBlock, capable bool) {
	cs := n.channel(ch)
	if cs == nil {
		return nil, false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	b := cs.ledger.blocks[num]
	if b == nil || b.chunks == nil {
		return nil, false
	}
	return b.chunks, cs.chunkCapableLocked(to)
}

// chunkCapable reports whether to announced chunk support for ch.
func (n *Node) chunkCapable(ch string, to peer.ID) bool {
	cs := n.channel(ch)
	if cs == nil {
		return false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.chunkCapableLocked(to)
}

// headerSent makes to a target of c's chunks, after the header went to it
// (again: a graft answer starts the chunks afresh), and sends it those held.
func (n *Node) headerSent(to peer.ID, c *chunkedBlock) {
	cs := n.channel(c.ch)
	if cs == nil {
		return
	}
	if n.striping() {
		return // the header's path carries no chunks: they come by the stripes
	}
	cs.mu.Lock()
	c.targets[to] = newTarget(targetAll, c.asm.Commitment().Count(), true)
	cs.mu.Unlock()
	n.pump(cs, c)
}

// stopChunks stops the chunks of tree id's blocks under way to peer p,
// which pruned its link to this one: it holds their headers from another
// parent, which streams it their chunks. Without this, on a new tree every
// redundant parent sent the whole first block before the prune took
// effect (the first 16 MiB block cost 2.1x its bytes). A chunk p still
// lacks is repaired by pull.
func (n *Node) stopChunks(p peer.ID, id tree.ID) {
	cs := n.channel(id.Channel)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, b := range cs.ledger.blocks {
		if b.chunks != nil && peer.ID(b.msg.GetPublisher()) == id.Root {
			if t := b.chunks.targets[p]; t != nil && t.kind == targetAll {
				delete(b.chunks.targets, p) // stripes are not tree links
			}
		}
	}
}

// chunkFrame is one push frame of chunks for one target.
type chunkFrame struct {
	to  peer.ID
	idx []int
	b   *wire.Batch
}

// pump hands every target the held chunks it was not sent, a bounded amount
// per call, straight to the transport. A target whose queue is full gets
// its chunks back as unsent and is retried by the chunk loop.
func (n *Node) pump(cs *channelState, c *chunkedBlock) {
	for {
		frames := n.chunkFrames(cs, c)
		if len(frames) == 0 {
			return
		}
		sent := make([]bool, len(frames))
		for k, f := range frames {
			sent[k] = n.push(f.to, f.b)
		}
		stalled, more := false, false
		now := n.now()
		cs.mu.Lock()
		for k, f := range frames {
			t := c.targets[f.to]
			switch {
			case t == nil:
			case sent[k]:
				t.stuck = time.Time{}
			default:
				for _, i := range f.idx {
					t.clear(i)
				}
				stalled = true
				if t.stuck.IsZero() {
					t.stuck = now
				} else if now.Sub(t.stuck) > chunkTargetStuck {
					delete(c.targets, f.to) // it repairs by pull
				}
			}
		}
		if !stalled {
			for _, t := range c.targets {
				more = more || unsentLocked(c, t)
			}
		}
		cs.mu.Unlock()
		if stalled {
			n.chunked.mu.Lock()
			n.chunked.stalled[c] = cs
			n.chunked.mu.Unlock()
			n.chunked.ring()
			return
		}
		if !more {
			return
		}
	}
}

// unsentLocked reports whether t lacks a chunk c holds. cs.mu is held.
func unsentLocked(c *chunkedBlock, t *chunkTarget) bool {
	for i := t.low; i < c.asm.Commitment().Count(); i++ {
		if c.asm.Have(i) && !t.has(i) {
			return true
		}
	}
	return false
}

// chunkFrames marks and returns, per target, the held chunks it was not
// sent yet, up to chunkPumpBytes each, in frames of up to chunkFrameBytes.
func (n *Node) chunkFrames(cs *channelState, c *chunkedBlock) []chunkFrame {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	count := c.asm.Commitment().Count()
	var out []chunkFrame
	for to, t := range c.targets {
		total := 0
		var f *chunkFrame
		allSent := true
		for i := t.low; i < count && total < chunkPumpBytes; i++ {
			if t.has(i) {
				if allSent {
					t.low = i + 1
				}
				continue
			}
			data, ok := c.asm.Chunk(i)
			if !ok {
				allSent = false
				continue
			}
			if f == nil || frameBytes(f.b)+len(data) > chunkFrameBytes {
				out = append(out, chunkFrame{to: to, b: &wire.Batch{}})
				f = &out[len(out)-1]
			}
			f.b.Chunks = append(f.b.Chunks, &wire.BlockChunk{Channel: c.ch, Number: c.num, BlockHash: c.hash, Index: uint32(i), Data: data, Relay: t.kind == targetStripe})
			f.idx = append(f.idx, i)
			t.set(i)
			if allSent {
				t.low = i + 1
			}
			total += len(data)
		}
		if c.asm.Complete() && t.low >= count {
			delete(c.targets, to) // everything went: nothing more to track
		}
	}
	return out
}

func frameBytes(b *wire.Batch) int {
	s := 0
	for _, c := range b.Chunks {
		s += len(c.Data)
	}
	return s
}

// pumpStalled retries the blocks whose targets had full queues.
func (n *Node) pumpStalled() bool {
	n.chunked.mu.Lock()
	todo := n.chunked.stalled
	n.chunked.stalled = map[*chunkedBlock]*channelState{}
	n.chunked.mu.Unlock()
	for c, cs := range todo {
		n.pump(cs, c)
	}
	return len(todo) > 0
}

// handleChunks applies the chunks of a push frame from from, then forwards
// what was added, per block.
func (n *Node) handleChunks(from peer.ID, chunks []*wire.BlockChunk) {
	n.countChunks(from, chunks)
	n.applyChunks(from, chunks, false)
}

// countChunks counts and traces chunks as received from from, once: not
// again when an early one is applied.
func (n *Node) countChunks(from peer.ID, chunks []*wire.BlockChunk) {
	for _, ck := range chunks {
		n.metrics.received.WithLabelValues("chunk").Inc()
		n.tracer.ChunkReceived(from, ck.GetChannel(), len(ck.GetData()))
	}
}

// applyChunks is handleChunks for pushed or (pulled) repaired chunks. Only
// pushed chunks count as progress: a block that repair is filling keeps
// repairing, round after round, until it is complete or a round brings
// nothing.
func (n *Node) applyChunks(from peer.ID, chunks []*wire.BlockChunk, pulled bool) (added int) {
	if len(chunks) == 0 {
		return
	}
	v := n.view()
	type touched struct {
		cs *channelState
		c  *chunkedBlock
	}
	var fwd []touched
	for _, ck := range chunks {
		cs := n.channel(ck.GetChannel())
		if cs == nil {
			n.drop("chunk", reasonNotInChannel, from)
			continue
		}
		if reason := senderReason(v, from, cs.name); reason != "" {
			n.drop("chunk", reason, from)
			continue
		}
		c, ok := n.addChunk(cs, v, from, ck, pulled)
		if !ok {
			continue
		}
		added++
		if len(fwd) == 0 || fwd[len(fwd)-1].c != c {
			fwd = append(fwd, touched{cs, c})
		}
	}
	for _, t := range fwd {
		n.pump(t.cs, t.c)
	}
	return added
}

// addChunk verifies and stores one chunk; it returns the block and whether
// the chunk was new, to forward. A completed block is staged.
func (n *Node) addChunk(cs *channelState, v *nodeView, from peer.ID, ck *wire.BlockChunk, pulled bool) (*chunkedBlock, bool) {
	cs.mu.Lock()
	b := cs.ledger.blocks[ck.GetNumber()]
	if !cs.activeLocked() || b == nil || b.chunks == nil || !bytes.Equal(b.chunks.hash, ck.GetBlockHash()) {
		// Held under cs.mu: a header accepted meanwhile takes it with the
		// rest (applyEarly runs after the header is in the ledger).
		held := !pulled && n.striping() && cs.activeLocked() && cs.ledger.check(ck.GetNumber()) == nil && n.holdEarly(from, ck)
		cs.mu.Unlock()
		if !held {
			n.drop("chunk", reasonUnknownBlock, from)
		}
		return nil, false
	}
	c := b.chunks
	res, err := c.asm.Add(int(ck.GetIndex()), ck.GetData())
	if (res == chunk.Added || res == chunk.Completed) && !pulled {
		n.forwardLocked(cs, v, c, from, int(ck.GetIndex()), ck.GetRelay())
	}
	var broken []*block
	if (res == chunk.Added || res == chunk.Completed) && !pulled {
		c.progress = n.now()
	}
	var done Block
	if res == chunk.Completed {
		n.releaseLocked(c)
		done = publicBlock(b) // whole now: its data no longer changes
		broken = n.stageReadyLocked(cs)
	}
	cs.mu.Unlock()
	if res == chunk.Completed {
		via := ViaPush
		if pulled {
			via = ViaPull
		}
		n.tracer.BlockCompleted(done, from, via)
	}
	for range broken {
		n.drop("block", reasonBrokenChain, from)
	}
	switch {
	case res == chunk.Duplicate:
		n.metrics.duplicates.WithLabelValues("chunk").Inc()
	case err != nil:
		n.drop("chunk", chunkReason(err), from)
	}
	return c, res == chunk.Added || res == chunk.Completed
}

// chunkReason names why Assembly.Add refused a chunk.
func chunkReason(err error) string {
	switch {
	case errors.Is(err, chunk.ErrOutOfRange):
		return reasonChunkOutOfRange
	case errors.Is(err, chunk.ErrLength):
		return reasonChunkLength
	}
	return reasonChunkTampered
}

// stageReadyLocked stages the held blocks that now continue the chain and
// returns those that broke it (discarded, their assemblies released).
// cs.mu is held.
func (n *Node) stageReadyLocked(cs *channelState) []*block {
	ready, broken := cs.ledger.ready()
	cs.stageLocked(ready)
	for _, b := range broken {
		n.releaseLocked(b.chunks)
	}
	return broken
}

// chunkLoop retries stalled targets every chunkRetry while there are any,
// and starts repair rounds for blocks whose chunks stopped coming.
func (n *Node) chunkLoop(ctx context.Context) {
	scan := max(n.cfg.ChunkRepairAfter/4, chunkRetry)
	t := time.NewTimer(scan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.chunked.bell:
		case <-t.C:
		}
		stalled := n.pumpStalled()
		n.expireEarly()
		n.repairChunks(ctx)
		t.Stop()
		select {
		case <-t.C:
		default:
		}
		if stalled {
			t.Reset(chunkRetry)
		} else {
			t.Reset(scan)
		}
	}
}
