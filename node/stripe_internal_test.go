package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// TestEarlyChunksBounded: a sender flooding chunks of blocks whose headers
// never come, tiny or full-sized, is held to earlyMaxPerSender, entries
// counted too; all senders together to earlyMaxBytes; and everything is
// dropped earlyTTL later, so what a flood can pin is bounded in bytes and
// time.
func TestEarlyChunksBounded(t *testing.T) {
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	n := &Node{chunked: newChunkState(), metrics: m, now: func() time.Time { return now }}
	held := func(from peer.ID, count, size int) int {
		k := 0
		for i := range count {
			ck := &wire.BlockChunk{Channel: "ch", Number: uint64(i), BlockHash: make([]byte, 32), Data: make([]byte, size)}
			if n.holdEarly(from, ck) {
				k++
			}
		}
		return k
	}
	// Tiny chunks: the per-entry overhead bounds their number.
	tiny := held("tiny", 1_000_000, 1)
	if max := earlyMaxPerSender / (1 + 32 + 2 + earlyOverhead); tiny > max || tiny < max/2 {
		t.Fatalf("held %d one-byte chunks from one sender, want about %d", tiny, max)
	}
	// Full-sized chunks from several senders: the total cap.
	for s := range 10 {
		held(peer.ID(fmt.Sprintf("big%d", s)), 1000, 32<<10)
	}
	e := &n.chunked.early
	if e.bytes > earlyMaxBytes {
		t.Fatalf("holding %d bytes of early chunks, over %d", e.bytes, earlyMaxBytes)
	}
	for p, b := range e.bySender {
		if b > earlyMaxPerSender {
			t.Fatalf("holding %d bytes from %s, over %d", b, p, earlyMaxPerSender)
		}
	}
	// earlyTTL later, nothing is held and the counts are back to zero.
	now = now.Add(earlyTTL + time.Millisecond)
	n.expireEarly()
	if len(e.byBlock) != 0 || e.bytes != 0 || len(e.bySender) != 0 {
		t.Fatalf("after the TTL: %d blocks, %d bytes, %d senders held", len(e.byBlock), e.bytes, len(e.bySender))
	}
	if !n.holdEarly("tiny", &wire.BlockChunk{Channel: "ch", Data: []byte{1}}) {
		t.Fatal("a sender whose chunks expired is still refused")
	}
}
