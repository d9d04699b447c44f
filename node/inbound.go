package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/routing"
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
)

// handlePush is the transport's push handler: one decoded batch from one peer.
// It runs on that peer's reader goroutine, so a slow batch slows only it.
func (n *Node) handlePush(from peer.ID, b *wire.Batch) {
	if n.pushLoss != nil && n.pushLoss() {
		return
	}
	for _, env := range b.GetEnvelopes() {
		n.handleEnvelope(from, env, ViaPush)
	}
}

// handleEnvelope checks and applies one envelope: cheap dedup, signature,
// authority, store, deliver, forward, in that order.
//
// It returns false when the envelope failed an integrity check (undecodable,
// badly signed, forged authority, wrong data hash): evidence against the
// peer that served it, which pull uses to skip that peer for a while.
func (n *Node) handleEnvelope(from peer.ID, env *wire.Envelope, via Path) bool {
	n.tracer.Received(from, env)
	// A block is deduplicated on its channel and number, read without
	// decoding it: a copy this peer already holds (most pushed copies are)
	// or does not take is refused before its data, up to MaxBlockBytes, is
	// copied out of the frame.
	if ch, num, ok := peekBlock(env.GetPayload()); ok {
		if _, ok := n.admitBlock(from, ch, num); !ok {
			n.metrics.received.WithLabelValues("block").Inc()
			return true
		}
	}
	var m wire.Message
	if err := proto.Unmarshal(env.GetPayload(), &m); err != nil {
		n.drop("unknown", reasonMalformed, from)
		return false
	}
	switch c := m.Content.(type) {
	case *wire.Message_Block:
		n.metrics.received.WithLabelValues("block").Inc()
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

func (n *Node) drop(kind, reason string, from peer.ID) {
	n.metrics.dropped.WithLabelValues(kind, reason).Inc()
	n.tracer.Dropped(kind, reason, from)
}

// senderAllowed reports whether from may send this peer messages of channel
// ch (ch == "" for none): a live member of an org of the channel, and if of
// another org, both it and this peer are external.
func (n *Node) senderAllowedLocked(from peer.ID, ch string) (string, bool) {
	m := n.members.get(from)
	if m == nil || m.dead {
		return reasonUnknownSender, false
	}
	if ch != "" && !n.network().OrgInChannel(m.org, ch) {
		return reasonSenderNotMember, false
	}
	if !n.mayTalk(m.org, m.external) {
		return reasonForeign, false
	}
	return "", true
}

// admitBlock is the cheap step run before any signature check on block num
// of channel ch from from: the channel is joined here, the block is neither
// delivered, held nor too far ahead, and from may send it. A refusal is
// counted; otherwise it returns the channel's state.
func (n *Node) admitBlock(from peer.ID, ch string, num uint64) (*channelState, bool) {
	const kind = "block"
	n.mu.Lock()
	cs := n.channels[ch]
	if cs == nil || !cs.joined || cs.left {
		n.mu.Unlock()
		n.drop(kind, reasonNotInChannel, from)
		return nil, false
	}
	if err := cs.ledger.check(num); err != nil {
		n.mu.Unlock()
		if errors.Is(err, errDuplicate) {
			n.metrics.duplicates.WithLabelValues(kind).Inc()
		} else {
			n.drop(kind, reasonTooFarAhead, from)
		}
		return nil, false
	}
	if reason, ok := n.senderAllowedLocked(from, ch); !ok {
		n.mu.Unlock()
		n.drop(kind, reason, from)
		return nil, false
	}
	n.mu.Unlock()
	return cs, true
}

// peekBlock reads the channel and number of the block a Message payload
// carries, without decoding or copying the rest of it. It reports false
// unless the payload is exactly one block field whose channel (valid UTF-8)
// and number each appear at most once, as every encoder writes them, so that
// what it reads is what proto.Unmarshal would; anything else is left to the
// full decode.
func peekBlock(payload []byte) (ch string, num uint64, ok bool) {
	f, typ, n := protowire.ConsumeTag(payload)
	if n < 0 || f != 1 || typ != protowire.BytesType { // Message.block
		return "", 0, false
	}
	b, m := protowire.ConsumeBytes(payload[n:])
	if m < 0 || n+m != len(payload) {
		return "", 0, false
	}
	var seenCh, seenNum bool
	for len(b) > 0 {
		f, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, false
		}
		b = b[n:]
		switch {
		case f == 1 && typ == protowire.BytesType: // Block.channel
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || seenCh || !utf8.Valid(v) {
				return "", 0, false
			}
			ch, seenCh, b = string(v), true, b[m:]
		case f == 2 && typ == protowire.VarintType: // Block.number
			v, m := protowire.ConsumeVarint(b)
			if m < 0 || seenNum {
				return "", 0, false
			}
			num, seenNum, b = v, true, b[m:]
		case f == 1 || f == 2:
			return "", 0, false
		default:
			m := protowire.ConsumeFieldValue(f, typ, b)
			if m < 0 {
				return "", 0, false
			}
			b = b[m:]
		}
	}
	return ch, num, true
}

// handleBlock checks and applies a block. It returns false only for a block
// that failed an integrity check; duplicates and blocks this peer does not
// take (not its channel, too far ahead, an unknown sender) are not evidence
// of forgery.
func (n *Node) handleBlock(from peer.ID, env *wire.Envelope, msg *wire.Block, via Path) bool {
	const kind = "block"
	ch := msg.GetChannel()
	cs, ok := n.admitBlock(from, ch, msg.GetNumber())
	if !ok {
		return true
	}

	publisher, err := peer.IDFromBytes(msg.GetPublisher())
	if err != nil {
		n.drop(kind, reasonMalformed, from)
		return false
	}
	if !signedBy(env, publisher) {
		n.drop(kind, reasonBadSignature, from)
		return false
	}
	v, err := identity.VerifyCertificate(n.network(), msg.GetPublisherCertificate(), publisher, n.now())
	if err != nil {
		n.drop(kind, reasonBadCertificate, from)
		return false
	}
	if !n.network().MayPublish(v.Org, ch) {
		n.drop(kind, reasonMayNotPublish, from)
		return false
	}
	if dh := sha256.Sum256(msg.GetData()); !bytes.Equal(dh[:], msg.GetDataHash()) {
		n.drop(kind, reasonDataHash, from)
		return false
	}

	b := &block{env: env, msg: msg, hash: BlockHash(msg), size: envSize(env)}
	n.mu.Lock()
	if cs.left || cs.ledger.check(msg.GetNumber()) != nil { // raced with another copy
		n.mu.Unlock()
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return true
	}
	ready, broken := cs.ledger.add(b)
	n.metrics.blocksAccepted.WithLabelValues(via.String()).Inc()
	n.tracer.BlockAccepted(publicBlock(b), from, via)
	// A broken link shows up when the gap before it closes, perhaps long
	// after it arrived from someone else: counted, not held against from.
	for range broken {
		n.drop(kind, reasonBrokenChain, from)
	}
	_ = n.deliverLocked(cs, ready) // a store error is logged and counted; the blocks stay held
	n.mu.Unlock()

	n.emit(outMsg{
		Kind:      routing.KindBlock,
		Channel:   ch,
		Origin:    publisher,
		OriginOrg: v.Org,
		From:      from,
		// An external peer hands a block of its own org's publisher to the
		// channel's other orgs when it first accepts it.
		CrossOrg: n.external && v.Org == n.org,
		Payload:  env,
	}, "")
	return true
}

// handleStateInfo applies a StateInfo; forward says whether a fresh one is
// pushed on (pushed ones are; snapshot elements are not).
func (n *Node) handleStateInfo(from peer.ID, env *wire.Envelope, si *wire.StateInfo, forward bool) {
	const kind = "stateinfo"
	p, err := peer.IDFromBytes(si.GetPeerId())
	if err != nil {
		n.drop(kind, reasonMalformed, from)
		return
	}
	if p == n.self {
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	n.mu.Lock()
	var cs *channelState
	for name, c := range n.channels {
		if bytes.Equal(channelMAC(p, name), si.GetChannelMac()) {
			cs = c
			break
		}
	}
	if cs == nil {
		n.mu.Unlock()
		n.drop(kind, reasonNotInChannel, from)
		return
	}
	if old := cs.states[p]; old != nil && !newer(si.GetIncarnation(), si.GetSequence(), old.inc, old.seq) {
		n.mu.Unlock()
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	if reason, ok := n.senderAllowedLocked(from, ""); !ok {
		n.mu.Unlock()
		n.drop(kind, reason, from)
		return
	}
	subject := n.members.get(p)
	if subject == nil {
		n.mu.Unlock()
		n.drop(kind, reasonUnknownPeer, from)
		return
	}
	org, external := subject.org, subject.external
	n.mu.Unlock()
	if !n.network().OrgInChannel(org, cs.name) {
		n.drop(kind, reasonSenderNotMember, from)
		return
	}
	if !signedBy(env, p) {
		n.drop(kind, reasonBadSignature, from)
		return
	}
	n.mu.Lock()
	if old := cs.states[p]; old != nil && !newer(si.GetIncarnation(), si.GetSequence(), old.inc, old.seq) {
		n.mu.Unlock()
		return
	}
	wasEligible := cs.eligible(p)
	cs.states[p] = &stateInfo{height: si.GetLedgerHeight(), left: si.GetLeft(), inc: si.GetIncarnation(), seq: si.GetSequence(), env: env}
	if wasEligible != cs.eligible(p) {
		n.invalidateViewLocked()
	}
	n.mu.Unlock()
	if forward {
		n.emit(outMsg{
			Kind:           routing.KindStateInfo,
			Channel:        cs.name,
			Origin:         p,
			OriginOrg:      org,
			OriginExternal: external,
			From:           from,
			Payload:        env,
		}, stateInfoKey(p, cs.name))
	}
}

// verifyAlive checks an alive envelope fully: the certificate chains to an
// org of this network, is valid now and names the envelope's signer, and the
// signature (and the Secret's, if any) verifies. It returns the member it
// describes; the Secret is read only for a member of this peer's org.
func (n *Node) verifyAlive(env *wire.Envelope, a *wire.Alive, now time.Time) (*member, error) {
	body := new(wire.CertificateBody)
	if err := proto.Unmarshal(a.GetCertificate().GetBody(), body); err != nil {
		return nil, identity.ErrMalformedCert
	}
	p, err := peer.IDFromBytes(body.GetPeerId())
	if err != nil {
		return nil, identity.ErrMalformedCert
	}
	v, err := identity.VerifyCertificate(n.network(), a.GetCertificate(), p, now)
	if err != nil {
		return nil, err
	}
	pub, err := transport.PublicKey(p)
	if err != nil {
		return nil, err
	}
	if _, err := transport.Open(env, pub); err != nil {
		return nil, err
	}
	m := &member{
		id:       p,
		org:      v.Org,
		external: a.GetExternal(),
		inc:      a.GetIncarnation(),
		seq:      a.GetSequence(),
		notAfter: v.NotAfter,
		alive:    env,
	}
	for _, raw := range a.GetAddrs() {
		if addr, err := ma.NewMultiaddrBytes(raw); err == nil {
			m.addrs = append(m.addrs, addr)
		}
	}
	if v.Org != n.org {
		m.alive = transport.StripSecret(env)
	} else if env.GetSecret() != nil {
		s, err := transport.OpenSecret(env, pub)
		if err != nil {
			return nil, err
		}
		for _, raw := range s.GetInternalAddrs() {
			if addr, err := ma.NewMultiaddrBytes(raw); err == nil {
				m.internal = append(m.internal, addr)
			}
		}
	}
	return m, nil
}

// aliveSubject returns the peer an alive message describes, without verifying.
func aliveSubject(a *wire.Alive) (peer.ID, bool) {
	body := new(wire.CertificateBody)
	if err := proto.Unmarshal(a.GetCertificate().GetBody(), body); err != nil {
		return "", false
	}
	p, err := peer.IDFromBytes(body.GetPeerId())
	return p, err == nil
}

// handleAlive applies an alive message received from from (by push, or in a
// membership response when forward is false).
func (n *Node) handleAlive(from peer.ID, env *wire.Envelope, a *wire.Alive, forward bool) {
	const kind = "alive"
	p, ok := aliveSubject(a)
	if !ok {
		n.drop(kind, reasonMalformed, from)
		return
	}
	if p == n.self {
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	n.mu.Lock()
	stale := n.members.stale(p, a.GetIncarnation(), a.GetSequence()) &&
		!(env.GetSecret() != nil && n.members.lacksInternal(p, a.GetIncarnation(), a.GetSequence(), n.org))
	reason, senderOK := n.senderAllowedLocked(from, "")
	n.mu.Unlock()
	if stale {
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	if !senderOK && from != p { // a peer's own alive is how it becomes known
		n.drop(kind, reason, from)
		return
	}
	m, err := n.verifyAlive(env, a, n.now())
	if err != nil {
		n.drop(kind, reasonBadCertificate, from)
		return
	}
	n.acceptAlive(m, from, forward)
}

// acceptAlive records a verified alive if the disclosure rules let this peer
// know it, learns its addresses and forwards it.
func (n *Node) acceptAlive(m *member, from peer.ID, forward bool) bool {
	if !n.mayTalk(m.org, m.external) {
		// Peers that are not external are invisible to other orgs, and a
		// peer that is not external knows no foreign peer.
		n.drop("alive", reasonForeign, from)
		return false
	}
	n.mu.Lock()
	fresh, revived := n.members.apply(m, n.now())
	if fresh {
		n.invalidateViewLocked()
		if revived {
			n.log.Info("peer back", "remote", m.id.String())
		}
		n.updatePeerGaugeLocked()
	}
	completed := !fresh && n.members.completeInternal(m)
	n.mu.Unlock()
	if completed {
		// Not news, but now this peer can reach it.
		n.learnAddrs(m)
	}
	if !fresh {
		return false
	}
	// Every member this peer may talk to shares a channel with it: keep the
	// connection through connection-manager trims.
	n.host.ConnManager().Protect(m.id, protectTag)
	n.learnAddrs(m)
	if forward {
		n.emit(outMsg{
			Kind:           routing.KindAlive,
			Origin:         m.id,
			OriginOrg:      m.org,
			OriginExternal: m.external,
			From:           from,
			Payload:        m.alive,
		}, aliveKey(m.id))
	}
	return true
}

func aliveKey(p peer.ID) string { return "alive/" + string(p) }

func (n *Node) updatePeerGaugeLocked() {
	counts := map[string]int{}
	for _, org := range n.network().Orgs() {
		counts[org.Name] = 0
	}
	for _, m := range n.members.members {
		if !m.dead {
			counts[m.org]++
		}
	}
	for org, c := range counts {
		n.metrics.peers.WithLabelValues(org).Set(float64(c))
	}
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
