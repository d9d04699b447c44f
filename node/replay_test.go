package node

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestReplayRing(t *testing.T) {
	b := newScoreBook()
	p, q := peer.ID("p"), peer.ID("q")
	now := time.Unix(1000, 0)
	k := blockKey("ch", 7)
	if b.pushed(p, k, now) {
		t.Fatal("a first push is a replay")
	}
	if b.pushed(q, k, now) {
		t.Fatal("the same block from another peer is a replay")
	}
	if blockKey("ch", 7) != k || blockKey("ch", 8) == k || blockKey("ch2", 7) == k {
		t.Fatal("blockKey does not tell (channel, number) apart")
	}
	for range 2 {
		if !b.pushed(p, k, now) {
			t.Fatal("the same block from the same peer, unasked, is not a replay")
		}
	}

	// Grafted, a block may come back from the grafted peer any number of
	// times (each graft round asks again), before or after its first copy.
	g := blockKey("ch", 9)
	b.asked(p, []uint64{g, k}, now)
	for range 5 {
		if b.pushed(p, g, now) || b.pushed(p, k, now) {
			t.Fatal("an answer to this peer's graft counted as a replay")
		}
	}

	// The ring forgets the oldest: a replay of a block replayMemory pushes
	// back goes unnoticed (it is an ordinary duplicate), a recent one not.
	for i := range replayMemory {
		b.pushed(p, blockKey("other", uint64(i)), now)
	}
	if b.pushed(p, k, now) {
		t.Fatal("a block pushed replayMemory blocks ago is remembered")
	}
	if !b.pushed(p, blockKey("other", replayMemory-1), now) {
		t.Fatal("the latest push is forgotten")
	}
	// Replays are blamed per frame (blameReplays), not per envelope too.
	if penalty(reasonReplay) != 0 {
		t.Fatal("drop blames a replay on top of blameReplays")
	}
}
