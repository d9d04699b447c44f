package node

import (
	"hash/maphash"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Replays. An honest peer pushes a given block to a given peer once: the
// tree forwards a block when it first accepts it, and the emitter sends
// each batch once (a write that fails on a stream the remote end reset is
// retried once, the only honest exception). It pushes it again only when
// asked: this peer grafted it for that number, perhaps several times while
// the answer was slow. So a block pushed again by the same peer, unasked,
// is a replay, and a peer that keeps replaying (to make this peer decode
// and look up copies it holds, at the price of bytes alone) raises its
// score.
//
// Each peer that pushes blocks has a ring of the last replayMemory blocks
// it pushed or was asked for, as 64-bit hashes of (channel, number) with a
// per-process seed. An older replay goes unnoticed; it is a duplicate,
// refused by the ledger as cheaply as any other.

const (
	// replayMemory is how many recent blocks per peer are remembered.
	replayMemory = 256
	// penaltyReplay is the weight of one replayed block, and
	// maxReplayPenalty the most one frame can cost: a retried frame of an
	// honest peer costs at most that once, and a peer replaying in every
	// frame is ejected after scoreThreshold ÷ maxReplayPenalty frames.
	penaltyReplay    = 1
	maxReplayPenalty = 10
)

// recentPushes is one peer's ring.
type recentPushes struct {
	keys  [replayMemory]uint64
	asked [replayMemory]bool // this peer grafted the block from the peer
	next  int
	full  bool
}

func (r *recentPushes) find(key uint64) int {
	n := r.next
	if r.full {
		n = replayMemory
	}
	for i := range n {
		if r.keys[i] == key {
			return i
		}
	}
	return -1
}

func (r *recentPushes) add(key uint64, asked bool) {
	r.keys[r.next], r.asked[r.next] = key, asked
	r.next++
	if r.next == replayMemory {
		r.next, r.full = 0, true
	}
}

var replaySeed = maphash.MakeSeed()

// blockKey is the ring's key of block num of channel ch.
func blockKey(ch string, num uint64) uint64 {
	var h maphash.Hash
	h.SetSeed(replaySeed)
	h.WriteString(ch)
	var b [8]byte
	for i := range b {
		b[i] = byte(num >> (8 * i))
	}
	h.Write(b[:])
	return h.Sum64()
}

// pushed records that p pushed the block of key and reports whether p had
// pushed it before unasked: a replay.
func (b *scoreBook) pushed(p peer.ID, key uint64, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.recent(p, now)
	if i := r.find(key); i >= 0 {
		return !r.asked[i]
	}
	r.add(key, false)
	return false
}

// asked records that this peer grafted the blocks of keys from p: p's
// answers, however many, are not replays.
func (b *scoreBook) asked(p peer.ID, keys []uint64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.recent(p, now)
	for _, k := range keys {
		if i := r.find(k); i >= 0 {
			r.asked[i] = true
		} else {
			r.add(k, true)
		}
	}
}

// recent returns p's ring, allocating it on first use. b.mu is held.
func (b *scoreBook) recent(p peer.ID, now time.Time) *recentPushes {
	s := b.entry(p, now)
	if s.pushes == nil {
		s.pushes = new(recentPushes)
	}
	return s.pushes
}

// pushTally counts the replays of one push frame.
type pushTally struct {
	replays int
	kept    bool // some envelope went past the checks that drop without keeping
}

// keep records that the frame's memory is referenced after the handler
// returns (by a block held, a message stored or forwarded).
func (t *pushTally) keep() {
	if t != nil {
		t.kept = true
	}
}

// blameReplays charges from for the replays of one frame, at most
// maxReplayPenalty.
func (n *Node) blameReplays(from peer.ID, t *pushTally) {
	if t.replays == 0 {
		return
	}
	n.blame(from, min(float64(t.replays*penaltyReplay), maxReplayPenalty), "block replay")
}

// graftAsked records the numbers of a GRAFT sent to p for channel ch.
func (n *Node) graftAsked(p peer.ID, ch string, nums []uint64) {
	keys := make([]uint64, len(nums))
	for i, num := range nums {
		keys[i] = blockKey(ch, num)
	}
	n.scores.asked(p, keys, n.now())
}
