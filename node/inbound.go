package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Drop reasons, as counted in fabgossip_messages_dropped_total.
const (
	reasonMalformed       = "malformed"
	reasonUnknownSender   = "unknown_sender"
	reasonNotInChannel    = "not_in_channel"
	reasonTooFarAhead     = "too_far_ahead"
	reasonBadSignature    = "bad_signature"
	reasonBadCertificate  = "bad_certificate"
	reasonMayNotPublish   = "may_not_publish"
	reasonDataHash        = "data_hash_mismatch"
	reasonSenderNotMember = "sender_not_member"
	reasonForeign         = "foreign_not_allowed"
	reasonBrokenChain     = "broken_chain"
	reasonUnknownPeer     = "unknown_peer"
	reasonReplay          = "replay"
)

// handlePush is the transport's push handler: one decoded batch from one peer.
// It runs on that peer's reader goroutine, so a slow batch slows only it.
//
// It reports whether it kept any part of b: a frame of nothing but
// duplicates, blocks of channels this peer has not joined and undecodable
// messages is given back to the transport, which reads the next frame into
// the same memory. Tree control entries are copied out as they are read.
func (n *Node) handlePush(from peer.ID, b *wire.Batch) (kept bool) {
	var tally pushTally
	for _, env := range b.GetEnvelopes() {
		n.receive(from, env, ViaPush, &tally)
	}
	n.blameReplays(from, &tally)
	n.handleChunks(from, b.GetChunks()) // after the envelopes: a frame's headers come before its chunks
	n.handleControl(from, b.GetControl())
	return tally.kept
}

// handleEnvelope checks and applies one envelope: cheap dedup, signature,
// authority, store, deliver, forward, in that order.
//
// It returns false when the envelope failed an integrity check (undecodable,
// badly signed, forged authority, wrong data hash): evidence against the
// peer that served it, which pull uses to skip that peer for a while.
func (n *Node) handleEnvelope(from peer.ID, env *wire.Envelope, via Path) bool {
	return n.receive(from, env, via, nil)
}

// receive is handleEnvelope for an envelope of a push frame whose replays
// tally counts (nil for pull responses, which answer this peer's own
// requests).
func (n *Node) receive(from peer.ID, env *wire.Envelope, via Path, tally *pushTally) bool {
	n.tracer.Received(from, env)
	// A block is deduplicated on its channel and number, read without
	// decoding it: a copy this peer already holds (most pushed copies are)
	// or does not take is refused before anything else is done with it.
	// One this peer takes is decoded in place, its data aliasing the
	// envelope, so the block is held once.
	if ch, num, pub, ok := peekBlock(env.GetPayload()); ok {
		n.metrics.received.WithLabelValues("block").Inc()
		replay := tally != nil && n.scores.pushed(from, blockKey(ch, num), n.now())
		if _, dup, ok := n.admit(from, ch, num); !ok {
			if dup && replay {
				tally.replays++
				n.drop("block", reasonReplay, from)
			}
			if dup && via == ViaPush {
				n.duplicatePushed(from, ch, num, pub)
			}
			return true
		}
		tally.keep()
		if msg, ok := decodeBlock(env.GetPayload()); ok {
			return n.handleBlock(from, env, msg, via)
		}
	}
	if !chunkHashesWithinCap(env.GetPayload()) { // before proto.Unmarshal allocates each
		n.drop("block", reasonMalformed, from)
		return false
	}
	var m wire.Message
	if err := proto.Unmarshal(env.GetPayload(), &m); err != nil {
		n.drop("unknown", reasonMalformed, from)
		return false
	}
	tally.keep()
	switch c := m.Content.(type) {
	case *wire.Message_Block:
		return n.handleBlock(from, env, c.Block, via)
	case *wire.Message_StateInfo:
		n.metrics.received.WithLabelValues("stateinfo").Inc()
		n.handleStateInfo(from, env, c.StateInfo, via == ViaPush)
	case *wire.Message_Alive:
		n.metrics.received.WithLabelValues("alive").Inc()
		n.handleAlive(from, env, c.Alive, via == ViaPush)
	default:
		n.drop("unknown", reasonMalformed, from)
		return false
	}
	return true
}

// applyPulled handles the envelopes of a pull response from p, at most max
// of them, and reports false as soon as one fails an integrity check: a
// responder that serves forgeries is not read further. Every pull
// (membership, StateInfo, blocks) applies its response here.
func (n *Node) applyPulled(p peer.ID, envs []*wire.Envelope, max int) bool {
	if len(envs) > max {
		envs = envs[:max]
	}
	for _, env := range envs {
		if !n.handleEnvelope(p, env, ViaPull) {
			return false
		}
	}
	return true
}

// duplicatePushed tells the tree that from pushed a block this peer holds:
// the link it came on is redundant.
func (n *Node) duplicatePushed(from peer.ID, ch string, num uint64, publisher []byte) {
	if n.tree == nil {
		return
	}
	root, err := peer.IDFromBytes(publisher)
	if err != nil {
		return
	}
	n.step(func(m *tree.Machine, now time.Time) {
		m.Payload(from, tree.ID{Channel: ch, Root: root}, num, false, now)
	})
}

// drop counts a refused message and, when only a hostile or broken peer
// sends what it was refused for, blames from.
func (n *Node) drop(kind, reason string, from peer.ID) {
	n.metrics.dropped.WithLabelValues(kind, reason).Inc()
	n.tracer.Dropped(kind, reason, from)
	n.blame(from, penalty(reason), kind+" "+reason)
}

// signedBy reports whether env carries a valid signature by p's key, over
// its payload and, if it has one, its Secret. It does not decode the
// payload: the caller already has, and for a block that decode is a copy of
// its data.
func signedBy(env *wire.Envelope, p peer.ID) bool {
	pub, err := transport.PublicKey(p)
	return err == nil && transport.Verify(env, pub) == nil
}

// envSize is the encoded size of an envelope, its weight in the emitter's
// byte budget.
func envSize(env *wire.Envelope) int { return proto.Size(env) }
