package node

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/transport"
)

func TestScoreCrossesThresholdOnceThenRestarts(t *testing.T) {
	b := newScoreBook()
	p := peer.ID("p")
	now := time.Unix(1000, 0)
	for i := range scoreThreshold/penaltyMessage - 1 {
		if b.add(p, penaltyMessage, now) {
			t.Fatalf("ejected after %d messages, below the threshold", i+1)
		}
	}
	if !b.add(p, penaltyMessage, now) {
		t.Fatalf("not ejected at score %v", b.score(p, now))
	}
	if got := b.score(p, now); got != 0 {
		t.Fatalf("score after ejection %v, want 0", got)
	}
	if b.add(p, 0, now) || b.add(p, -5, now) {
		t.Fatal("a zero or negative weight ejected")
	}
}

func TestScoreDecays(t *testing.T) {
	b := newScoreBook()
	p := peer.ID("p")
	now := time.Unix(1000, 0)
	b.add(p, 80, now)
	if got := b.score(p, now.Add(scoreHalfLife)); math.Abs(got-40) > 1e-9 {
		t.Fatalf("after one half-life %v, want 40", got)
	}
	// Evidence spread thinly enough never adds up: 80 per half-life tends
	// to 160 but 9 per half-life stays under 18.
	b2 := newScoreBook()
	for i := range 1000 {
		if b2.add(p, 9, now.Add(time.Duration(i)*scoreHalfLife)) {
			t.Fatalf("ejected at step %d by evidence that decays faster than it comes", i)
		}
	}
}

// TestScoreBookBounded: a flood of fresh peer IDs, each blamed once, holds
// at most maxScored records, and a peer with a high score outlives the
// flood.
func TestScoreBookBounded(t *testing.T) {
	b := newScoreBook()
	now := time.Unix(1000, 0)
	bad := peer.ID("bad")
	b.add(bad, 90, now)
	for i := range 20 * maxScored {
		b.add(peer.ID(fmt.Sprint("fresh", i)), 1, now)
		if len(b.peers) > maxScored {
			t.Fatalf("%d records after %d fresh peers, cap %d", len(b.peers), i+1, maxScored)
		}
	}
	if got := b.score(bad, now); got != 90 {
		t.Fatalf("the worst peer's score %v after the flood, want 90", got)
	}
}

func TestStrikesLengthenBackoff(t *testing.T) {
	b := newScoreBook()
	p := peer.ID("p")
	now := time.Unix(1000, 0)
	var got []time.Duration
	for i := range 8 {
		got = append(got, strikeBackoff(10*time.Second, b.strike(p, now.Add(time.Duration(i)*time.Second))))
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 320 * time.Second, maxBackoff, maxBackoff}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("back-offs %v, want %v", got, want)
		}
	}
	// Strikes are forgotten maxBackoff after the last one.
	if s := b.strike(p, now.Add(8*time.Second+maxBackoff+time.Second)); s != 1 {
		t.Fatalf("strikes after a quiet maxBackoff: %d, want 1", s)
	}
}

// TestHonestRefusalsCostNothing: what an honest peer can send (a stale or
// early block, a channel not joined, a certificate that expired on the way,
// a view configured differently) and what a slow or crashed one causes (a
// stream timeout or reset, a refused request) is never evidence.
func TestHonestRefusalsCostNothing(t *testing.T) {
	for _, r := range []string{reasonUnknownSender, reasonNotInChannel, reasonTooFarAhead, reasonBadCertificate,
		reasonMayNotPublish, reasonSenderNotMember, reasonForeign, reasonBrokenChain, reasonUnknownPeer, "bad_responder",
		reasonTooLarge, reasonAssembliesFull, reasonUnknownBlock, reasonNoChunkSupport} {
		if w := penalty(r); w != 0 {
			t.Errorf("penalty(%q) = %v, want 0", r, w)
		}
	}
	for _, k := range []transport.ErrorKind{transport.ErrorStream, transport.ErrorHandler, transport.ErrorUnadmitted} {
		if w := framePenalty(k); w != 0 {
			t.Errorf("framePenalty(%v) = %v, want 0", k, w)
		}
	}
	for _, r := range []string{reasonMalformed, reasonBadSignature, reasonDataHash,
		reasonBadCommitment, reasonChunkOutOfRange, reasonChunkLength, reasonChunkTampered} {
		if penalty(r) <= 0 {
			t.Errorf("penalty(%q) = 0: a forgery costs nothing", r)
		}
	}
	for _, k := range []transport.ErrorKind{transport.ErrorMalformed, transport.ErrorOversized, transport.ErrorTooManyItems} {
		if framePenalty(k) <= 0 {
			t.Errorf("framePenalty(%v) = 0", k)
		}
	}
}
