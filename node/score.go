package node

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/transport"
)

// Misbehaviour. What only a hostile or broken peer sends raises its score:
// a frame that does not decode or is over a count cap, a message whose
// signature or data hash does not verify, a block replayed (replay.go). An
// honest relay checks all of these before it forwards, so one such message
// is evidence against the peer that sent it. What an honest peer can send
// is never counted: a duplicate, a block for a channel this peer has not
// joined, one too far ahead, an alive about a peer not yet known, a
// certificate that expired on the way or that a differently configured view
// refuses, a stream that timed out or was reset (a slow or crashed peer), a
// push or pull stream before its hello completed (a dialler's writer may
// open one on a new connection before its own hello is answered; an
// outsider's connection that never completes one ends at the handshake
// timeout).
// The score halves every scoreHalfLife; past scoreThreshold the peer is
// disconnected and gated, for a back-off that doubles with each ejection
// (see strikeBackoff).

const (
	scoreThreshold = 100
	scoreHalfLife  = 30 * time.Second
	// maxScored bounds the peers with a score or strikes on record; a flood
	// of fresh peer IDs evicts the lowest score.
	maxScored = 1024
	// maxBackoff caps the back-off of a peer rejected again and again, and
	// is how long a peer's strikes are remembered after its last one.
	maxBackoff = 10 * time.Minute
)

// Penalties, by drop reason (see penalty) and transport error kind.
const (
	penaltyMessage   = 10 // a message that is malformed or fails its signature or hash
	penaltyFrame     = 10 // a frame that does not decode
	penaltyOverCount = 25 // a frame over a size or count cap: an attack, not a bug
)

// errMisbehaving is the rejection of a peer whose score crossed the
// threshold.
var errMisbehaving = errors.New("node: misbehaving peer")

// penalty is the weight, as evidence against the sender, of a message
// dropped for reason; zero for what an honest peer can send. Replays are
// blamed per frame instead (blameReplays), with a cap.
func penalty(reason string) float64 {
	switch reason {
	case reasonMalformed, reasonBadSignature, reasonDataHash,
		reasonBadCommitment, reasonChunkOutOfRange, reasonChunkLength, reasonChunkTampered:
		// A relay checks a header's commitment and each chunk before it
		// forwards them; a header over this peer's size limit
		// (reasonTooLarge) is not evidence.
		return penaltyMessage
	}
	return 0
}

// framePenalty is the weight of a transport stream error of kind.
func framePenalty(kind transport.ErrorKind) float64 {
	switch kind {
	case transport.ErrorMalformed:
		return penaltyFrame
	case transport.ErrorOversized, transport.ErrorTooManyItems:
		return penaltyOverCount
	}
	return 0
}

// strikeBackoff is how long a peer rejected for the strikes-th time in a
// row is kept out: base, doubled for each strike after the first, at most
// maxBackoff.
func strikeBackoff(base time.Duration, strikes int) time.Duration {
	d := base
	for i := 1; i < strikes && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// scoreBook holds each peer's misbehaviour score and rejection strikes. It
// is pure bookkeeping with the time passed in, and its lock is a leaf: it
// is safe to use from any goroutine, under any other lock.
type scoreBook struct {
	mu    sync.Mutex
	peers map[peer.ID]*peerScore
}

type peerScore struct {
	value   float64       // decayed to at
	at      time.Time     // when value was last decayed
	strikes int           // rejections in a row, forgotten maxBackoff after the last
	struck  time.Time     // the last rejection
	pushes  *recentPushes // the blocks it pushed lately (replay.go), nil until it pushes one
}

func newScoreBook() *scoreBook { return &scoreBook{peers: make(map[peer.ID]*peerScore)} }

// decay brings s's value to now.
func (s *peerScore) decay(now time.Time) {
	if dt := now.Sub(s.at); dt > 0 {
		s.value *= math.Exp2(-dt.Seconds() / scoreHalfLife.Seconds())
		s.at = now
	}
}

// idle reports whether s holds nothing worth remembering at now.
func (s *peerScore) idle(now time.Time) bool {
	s.decay(now)
	return s.value < 1 && (s.strikes == 0 || now.Sub(s.struck) > maxBackoff)
}

// entry returns p's record, creating it (and making room for it) if needed.
func (b *scoreBook) entry(p peer.ID, now time.Time) *peerScore {
	if s, ok := b.peers[p]; ok {
		return s
	}
	if len(b.peers) >= maxScored {
		var low peer.ID
		lowest := math.Inf(1)
		for q, s := range b.peers {
			if s.idle(now) {
				delete(b.peers, q)
				continue
			}
			if s.value < lowest {
				low, lowest = q, s.value
			}
		}
		if len(b.peers) >= maxScored {
			delete(b.peers, low)
		}
	}
	s := &peerScore{at: now}
	b.peers[p] = s
	return s
}

// add records evidence of weight w against p at now. It reports true when
// the score crosses scoreThreshold: the caller rejects p, and p's score
// starts again from zero.
func (b *scoreBook) add(p peer.ID, w float64, now time.Time) bool {
	if w <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.entry(p, now)
	s.decay(now)
	s.value += w
	if s.value < scoreThreshold {
		return false
	}
	s.value = 0
	return true
}

// strike records a rejection of p at now and returns how many in a row p
// has had, this one included.
func (b *scoreBook) strike(p peer.ID, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.entry(p, now)
	if s.strikes > 0 && now.Sub(s.struck) > maxBackoff {
		s.strikes = 0
	}
	s.strikes++
	s.struck = now
	return s.strikes
}

// score returns p's current score, for tests and logs.
func (b *scoreBook) score(p peer.ID, now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.peers[p]
	if !ok {
		return 0
	}
	s.decay(now)
	return s.value
}

// blame counts evidence of weight w against p; past the threshold, p is
// rejected (disconnected and gated) from a goroutine of its own, since
// blame runs on inbound paths, sometimes under a channel's lock.
func (n *Node) blame(p peer.ID, w float64, why string) {
	if p == n.self || !n.scores.add(p, w, n.now()) || n.closed.Load() {
		return
	}
	err := fmt.Errorf("%w: score over %d, last %s", errMisbehaving, scoreThreshold, why)
	// The transport waits for its handlers and tracers before Close goes
	// on to wg.Wait, and the node's own goroutines are in wg, so this Add
	// always precedes the Wait.
	n.wg.Go(func() { n.reject(p, err) })
}

// evidenceTracer turns the transport's frame errors into blame.
type evidenceTracer struct {
	transport.NopTracer
	n *Node
}

func (t evidenceTracer) StreamError(p peer.ID, _ protocol.ID, kind transport.ErrorKind, err error) {
	t.n.blame(p, framePenalty(kind), kind.String())
}
