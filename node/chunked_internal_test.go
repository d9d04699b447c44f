package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/chunk"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport/wire"
)

func blockPayload(t testing.TB, b *wire.Block) []byte {
	t.Helper()
	p, err := proto.Marshal(&wire.Message{Content: &wire.Message_Block{Block: b}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecodeChunkedHeader: the in-place decoder reads a chunked header's
// fields as proto.Unmarshal does, its hashes aliasing the payload.
func TestDecodeChunkedHeader(t *testing.T) {
	cm, err := chunk.Commit(bytes.Repeat([]byte("x"), 300<<10), chunk.DefaultChunkSize, chunk.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	h := &wire.Block{Channel: "ch", Number: 9, PreviousHash: []byte("prev"), Publisher: []byte("pub"), PublishedAt: 5}
	cm.Fill(h)
	payload := blockPayload(t, h)
	got, ok := decodeBlock(payload)
	if !ok {
		t.Fatal("a chunked header went to the generic path")
	}
	if !proto.Equal(got, h) {
		t.Fatalf("decoded %v, want %v", got, h)
	}
	if _, err := chunk.FromBlock(got, chunk.DefaultLimits()); err != nil {
		t.Fatalf("the decoded header does not verify: %v", err)
	}
}

// TestDecodeBlockCapsChunkHashes: a payload of empty chunk hash entries,
// malformed after them, is neither decoded whole nor handed to
// proto.Unmarshal: the decoder keeps MaxChunks+1 of them and the header
// fails its commitment.
func TestDecodeBlockCapsChunkHashes(t *testing.T) {
	body := protowire.AppendTag(nil, 1, protowire.BytesType)
	body = protowire.AppendString(body, "ch")
	for range 1 << 20 { // 2 MiB of empty hashes
		body = protowire.AppendTag(body, 11, protowire.BytesType)
		body = protowire.AppendBytes(body, nil)
	}
	body = protowire.AppendTag(body, 1, protowire.BytesType) // the channel again: not the shape encoders write
	body = protowire.AppendString(body, "again")
	payload := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), body)
	got, ok := decodeBlock(payload)
	if !ok {
		t.Fatal("the payload went to the generic path, which decodes every entry")
	}
	if n := len(got.GetChunkHashes()); n != chunk.DefaultMaxChunks+1 {
		t.Fatalf("kept %d chunk hashes, want %d", n, chunk.DefaultMaxChunks+1)
	}
	if _, err := chunk.FromBlock(got, chunk.DefaultLimits()); err == nil {
		t.Fatal("a header with capped hashes verified")
	}
	// The generic path, which a payload peekBlock declines takes, refuses
	// it before proto.Unmarshal.
	if chunkHashesWithinCap(payload) {
		t.Fatal("the payload passes the generic path's cap")
	}
	cm, err := chunk.Commit(make([]byte, 1<<20), chunk.DefaultChunkSize, chunk.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	h := &wire.Block{Channel: "ch"}
	cm.Fill(h)
	if !chunkHashesWithinCap(blockPayload(t, h)) {
		t.Fatal("a valid header fails the generic path's cap")
	}
}

// TestBlockHashSingleFrameUnchanged: a single-frame block hashes as it
// always did; a chunked header's hash also covers its sizes.
func TestBlockHashSingleFrameUnchanged(t *testing.T) {
	b := &wire.Block{Channel: "ch", Number: 3, PreviousHash: []byte("prev"), DataHash: []byte("dh")}
	h := sha256.New()
	for _, f := range [][]byte{[]byte("ch"), nil, []byte("prev"), []byte("dh")} {
		if f == nil {
			h.Write(binary.AppendUvarint(nil, 3))
			continue
		}
		h.Write(binary.AppendUvarint(nil, uint64(len(f))))
		h.Write(f)
	}
	if !bytes.Equal(BlockHash(b), h.Sum(nil)) {
		t.Fatal("the hash of a single-frame block changed")
	}
	c := proto.Clone(b).(*wire.Block)
	c.ChunkHashes, c.ChunkSize, c.DataSize = [][]byte{make([]byte, 32)}, 1<<16, 100
	d := proto.Clone(c).(*wire.Block)
	d.DataSize = 101
	if bytes.Equal(BlockHash(c), BlockHash(b)) || bytes.Equal(BlockHash(c), BlockHash(d)) {
		t.Fatal("a chunked header's hash does not cover its sizes")
	}
}

// TestLedgerStagesChunkedWhenComplete: a chunked block holds back delivery
// until its last chunk, is left out of digests meanwhile, and delivered
// chunked blocks beyond the window's byte cap leave memory, the newest
// kept.
func TestLedgerStagesChunkedWhenComplete(t *testing.T) {
	l := newLedger(100, 50)
	l.chunkedWindow = 1
	bs := chain("c", 3)
	data := bytes.Repeat([]byte("d"), 100<<10)
	cm, err := chunk.Commit(data, chunk.DefaultChunkSize, chunk.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		asm, _ := chunk.NewAssembly(cm)
		bs[i].chunks = newChunkedBlock("c", uint64(i), bs[i].hash, asm, "")
	}
	l.add(bs[0])
	if run, _ := l.ready(); len(run) != 0 {
		t.Fatal("an incomplete chunked block was staged")
	}
	if d := l.digest(time.Time{}); len(d) != 0 {
		t.Fatalf("an incomplete chunked block is in the digest: %v", d)
	}
	for i := range cm.Count() {
		if _, err := bs[0].chunks.asm.Add(i, cm.Chunk(data, i)); err != nil {
			t.Fatal(err)
		}
	}
	bs[1].chunks.asm, _ = chunk.Assembled(cm, data)
	l.add(bs[1])
	l.add(bs[2])
	run, _ := l.ready()
	if len(run) != 3 {
		t.Fatalf("staged %d blocks once the chunks were in, want 3", len(run))
	}
	l.stage(run)
	l.commit(run)
	if l.blocks[0] != nil || l.blocks[1] == nil || l.blocks[2] == nil {
		t.Fatal("the window keeps other chunked blocks than the newest, or dropped a single-frame one")
	}
}

// TestPruneStopsChunks: a PRUNE from p for a tree stops the chunk streams
// to p of that tree's blocks, and only those.
func TestPruneStopsChunks(t *testing.T) {
	const p, q, root, other = "p", "q", "root", "other"
	chunked := func(publisher string) *block {
		c := newChunkedBlock("ch", 0, nil, nil, "")
		c.targets[p], c.targets[q] = &chunkTarget{}, &chunkTarget{}
		return &block{msg: &wire.Block{Publisher: []byte(publisher)}, chunks: c}
	}
	cs := &channelState{name: "ch", ledger: newLedger(10, 20)}
	mine, theirs := chunked(root), chunked(other)
	cs.ledger.blocks[1], cs.ledger.blocks[2] = mine, theirs
	cs.ledger.blocks[3] = &block{msg: &wire.Block{Publisher: []byte(root)}} // single-frame
	n := &Node{}
	n.channels.Store(&map[string]*channelState{"ch": cs})
	n.stopChunks(p, tree.ID{Channel: "ch", Root: root})
	if _, ok := mine.chunks.targets[p]; ok {
		t.Error("the pruning peer still gets the chunks of the pruned tree's block")
	}
	if _, ok := mine.chunks.targets[q]; !ok {
		t.Error("another peer lost its chunks")
	}
	if _, ok := theirs.chunks.targets[p]; !ok {
		t.Error("the pruning peer lost the chunks of another tree's block")
	}
}

// TestChunkFramesCutThrough: a relay hands its targets chunk frames of at
// most chunkFrameBytes (one 32 KiB chunk at the default size, several
// smaller ones, and one larger chunk alone), every held chunk once per
// target, in index order, so a hop forwards a block chunk by chunk and not
// per 1 MiB.
func TestChunkFramesCutThrough(t *testing.T) {
	for _, tc := range []struct {
		chunkSize uint32
		perFrame  int
	}{{32 << 10, 1}, {64 << 10, 1}, {16 << 10, 2}} {
		data := bytes.Repeat([]byte{7}, 300<<10)
		com, err := chunk.Commit(data, tc.chunkSize, chunk.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		asm, err := chunk.NewAssembly(com)
		if err != nil {
			t.Fatal(err)
		}
		for i := range com.Count() {
			lo := i * int(tc.chunkSize)
			if _, err := asm.Add(i, data[lo:min(lo+int(tc.chunkSize), len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		c := newChunkedBlock("ch", 1, []byte("h"), asm, "")
		c.targets["p"] = &chunkTarget{sent: make([]uint64, (com.Count()+63)/64)}
		frames := (&Node{}).chunkFrames(&channelState{name: "ch"}, c)
		next := 0
		for _, f := range frames {
			if n := frameBytes(f.b); n > max(chunkFrameBytes, int(tc.chunkSize)) {
				t.Fatalf("chunk size %d: a frame carries %d bytes, over %d", tc.chunkSize, n, max(chunkFrameBytes, int(tc.chunkSize)))
			}
			if len(f.idx) > tc.perFrame {
				t.Fatalf("chunk size %d: a frame carries %d chunks, want at most %d", tc.chunkSize, len(f.idx), tc.perFrame)
			}
			for _, i := range f.idx {
				if i != next {
					t.Fatalf("chunk size %d: chunk %d sent where %d was due", tc.chunkSize, i, next)
				}
				next++
			}
		}
		if next != com.Count() {
			t.Fatalf("chunk size %d: %d of %d chunks sent", tc.chunkSize, next, com.Count())
		}
	}
}
