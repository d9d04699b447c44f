package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// StateInfo: each joined peer's signed statement about a channel (height,
// left flag), which makes it eligible for the channel's blocks. The channel
// appears only as a MAC, so a peer learns nothing of channels it is not in.

// channelMAC is how a StateInfo names its channel: SHA-256(peer ID || name).
func channelMAC(p peer.ID, ch string) []byte {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte(ch))
	return h.Sum(nil)
}

// channelByMAC returns the channel that mac names for peer p, or nil.
func (n *Node) channelByMAC(p peer.ID, mac []byte) *channelState {
	for _, cs := range n.channelList() {
		if bytes.Equal(channelMAC(p, cs.name), mac) {
			return cs
		}
	}
	return nil
}

func stateInfoKey(p peer.ID, ch string) string { return "si/" + string(p) + "/" + ch }

// signStateInfoLocked signs this peer's current StateInfo for cs, records it
// and returns it for the emitter (nil if signing failed, which is logged).
// cs.mu is held.
func (n *Node) signStateInfoLocked(cs *channelState) (*outMsg, string) {
	si := &wire.StateInfo{
		PeerId:       []byte(n.self),
		ChannelMac:   channelMAC(n.self, cs.name),
		LedgerHeight: cs.ledger.height,
		Left:         cs.left,
		Incarnation:  n.inc,
		Sequence:     n.seq.Add(1),
		// This peer assembles chunked blocks (chunked.go).
		Properties: []*wire.Property{{Key: propChunks, Value: []byte{1}}},
	}
	env, err := transport.Sign(n.signingKey(), &wire.Message{Content: &wire.Message_StateInfo{StateInfo: si}})
	if err != nil {
		n.log.Error("signing StateInfo", "channel", cs.name, "err", err)
		return nil, ""
	}
	cs.states[n.self] = &stateInfo{height: si.LedgerHeight, left: si.Left, inc: si.Incarnation, seq: si.Sequence, env: env, chunks: true}
	cs.dirty = false
	cs.lastPublished = n.now()
	return &outMsg{
		Kind:           routing.KindStateInfo,
		Channel:        cs.name,
		Origin:         n.self,
		OriginOrg:      n.org,
		OriginExternal: n.external,
		Payload:        env,
	}, stateInfoKey(n.self, cs.name)
}

func (n *Node) emitIf(m *outMsg, key string) {
	if m != nil {
		n.emit(*m, key)
	}
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
	cs := n.channelByMAC(p, si.GetChannelMac())
	if cs == nil {
		n.drop(kind, reasonNotInChannel, from)
		return
	}
	if !cs.newerStateInfo(p, si) {
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	v := n.view()
	sender, ok := v.member(from)
	if !ok || !v.MayTalk(sender) {
		n.drop(kind, senderReason(v, from, ""), from)
		return
	}
	subject, ok := v.member(p)
	if !ok {
		n.drop(kind, reasonUnknownPeer, from)
		return
	}
	if !v.OrgInChannel(subject.Org, cs.name) {
		n.drop(kind, reasonSenderNotMember, from)
		return
	}
	if !signedBy(env, p) {
		n.drop(kind, reasonBadSignature, from)
		return
	}
	cs.mu.Lock()
	if old := cs.states[p]; old != nil && !newer(si.GetIncarnation(), si.GetSequence(), old.inc, old.seq) {
		cs.mu.Unlock()
		return
	}
	wasEligible := cs.eligibleLocked(p)
	cs.states[p] = &stateInfo{height: si.GetLedgerHeight(), left: si.GetLeft(), inc: si.GetIncarnation(), seq: si.GetSequence(), env: env,
		chunks: announcesChunks(si)}
	changed := wasEligible != cs.eligibleLocked(p)
	cs.mu.Unlock()
	if changed {
		n.invalidateView()
	}
	if forward {
		n.emit(outMsg{
			Kind:           routing.KindStateInfo,
			Channel:        cs.name,
			Origin:         p,
			OriginOrg:      subject.Org,
			OriginExternal: subject.External,
			From:           from,
			Payload:        env,
		}, stateInfoKey(p, cs.name))
	}
}

// newerStateInfo reports whether si supersedes what cs holds of p: the cheap
// dedup run before any signature check.
func (cs *channelState) newerStateInfo(p peer.ID, si *wire.StateInfo) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.states[p]
	return old == nil || newer(si.GetIncarnation(), si.GetSequence(), old.inc, old.seq)
}

// stateInfoKnownKey is a StateInfo's entry in StateInfoRequest.known: the
// first 8 bytes of SHA-256(peer ID || incarnation || sequence).
func stateInfoKnownKey(p peer.ID, inc, seq uint64) uint64 {
	h := sha256.New()
	h.Write([]byte(p))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], inc)
	binary.BigEndian.PutUint64(b[8:], seq)
	h.Write(b[:])
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// maxStateInfoKnown caps StateInfoRequest.known, as maxMembershipKnown does
// MembershipRequest.known.
const maxStateInfoKnown = 4 * maxStateInfoResponse

// serveStateInfo answers with the StateInfo this peer holds for the channel
// the requester names by MAC and does not list as known, each element only
// if the audience lets the requester learn of its subject
// (routing.View.MayLearnStateInfo).
func (n *Node) serveStateInfo(from peer.ID, r *wire.StateInfoRequest) (*wire.PullResponse, error) {
	v := n.view()
	requester, ok := v.member(from)
	if !ok || !v.MayTalk(requester) || len(r.GetKnown()) > maxStateInfoKnown {
		return nil, errPullDenied
	}
	known := make(map[uint64]struct{}, len(r.GetKnown()))
	for _, k := range r.GetKnown() {
		known[k] = struct{}{}
	}
	cs := n.channelByMAC(from, r.GetChannelMac())
	if cs == nil || !v.OrgInChannel(requester.Org, cs.name) {
		n.drop("pull", reasonNotInChannel, from)
		return nil, errPullDenied
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []*wire.Envelope
	for id, si := range cs.states {
		if len(out) >= maxStateInfoResponse {
			break
		}
		if _, ok := known[stateInfoKnownKey(id, si.inc, si.seq)]; ok {
			continue
		}
		subject, ok := v.member(id)
		if !ok || !v.MayLearnStateInfo(requester, subject, cs.name) {
			continue
		}
		out = append(out, si.env)
	}
	return &wire.PullResponse{Response: &wire.PullResponse_StateInfo{StateInfo: &wire.StateInfoSnapshot{Elements: out}}}, nil
}

// stateInfoLoop publishes changed StateInfo (at most once per
// PublishStateInfoInterval per channel) and pulls StateInfo snapshots every
// RequestStateInfoInterval.
func (n *Node) stateInfoLoop(ctx context.Context) {
	publish := time.NewTicker(n.cfg.PublishStateInfoInterval)
	defer publish.Stop()
	request := time.NewTicker(n.cfg.RequestStateInfoInterval)
	defer request.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-publish.C:
			n.publishDirtyStateInfo()
		case <-request.C:
			n.eachChannelPeer(ctx, false, n.requestStateInfoFrom)
		}
	}
}

func (n *Node) publishDirtyStateInfo() {
	for _, cs := range n.channelList() {
		cs.mu.Lock()
		var m *outMsg
		var key string
		if cs.activeLocked() && cs.dirty {
			m, key = n.signStateInfoLocked(cs)
		}
		cs.mu.Unlock()
		n.emitIf(m, key)
	}
}

// requestStateInfoFrom asks p for the StateInfo of ch that this peer does
// not hold, and applies what comes back (without forwarding).
func (n *Node) requestStateInfoFrom(ctx context.Context, p peer.ID, ch string) {
	cs := n.channel(ch)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	known := make([]uint64, 0, len(cs.states))
	for id, si := range cs.states {
		if len(known) == maxStateInfoKnown {
			break // the responder sends the rest again
		}
		known = append(known, stateInfoKnownKey(id, si.inc, si.seq))
	}
	cs.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, min(n.cfg.RequestStateInfoInterval, handshakeTimeout))
	defer cancel()
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_StateInfo{
		StateInfo: &wire.StateInfoRequest{ChannelMac: channelMAC(n.self, ch), Known: known},
	}})
	if err != nil {
		return
	}
	n.applyPulled(p, resp.GetStateInfo().GetElements(), maxStateInfoResponse)
}

// announcesChunks reports whether si says its peer assembles chunked blocks.
func announcesChunks(si *wire.StateInfo) bool {
	for _, p := range si.GetProperties() {
		if p.GetKey() == propChunks {
			return true
		}
	}
	return false
}
