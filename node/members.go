package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Membership: alive heartbeats, the verified member table (membership.go),
// expiry and probing, and the membership exchange. Its state is guarded by
// the membership lock n.mu; who may learn of whom is routing's audience.

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
	v, err := n.certs.Verify(n.network(), a.GetCertificate(), p, now)
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

// errUnknownSubject refuses a slim heartbeat about a peer whose certificate
// (for that incarnation) this peer has not verified.
var errUnknownSubject = errors.New("node: heartbeat about a peer whose certificate is not known")

// verifyHeartbeat checks a slim heartbeat (no certificate) about p, received
// from from: p must be a member whose certificate this peer verified, of the
// same incarnation and reachability, the certificate still valid, and the
// signature must verify with p's key. It returns the member refreshed to the
// heartbeat's sequence; its addresses and full alive (what is served to
// others) stay the verified ones.
//
// With DirectAlive a heartbeat is never forwarded, so one that p sent itself
// is authenticated by the connection (libp2p's secure channel is keyed by
// p's identity) and its signature is not checked: that is most heartbeats,
// one per member per AliveTimeInterval, which were a third of a 200-peer
// network's signature checks while idle.
func (n *Node) verifyHeartbeat(from, p peer.ID, env *wire.Envelope, a *wire.Alive, now time.Time) (*member, error) {
	n.mu.Lock()
	known := n.members.get(p)
	n.mu.Unlock()
	if known == nil || known.inc != a.GetIncarnation() || known.external != a.GetExternal() {
		return nil, errUnknownSubject
	}
	if !now.Before(known.notAfter) {
		return nil, errUnknownSubject
	}
	if env.GetSecret() != nil || len(a.GetAddrs()) > 0 {
		return nil, errMalformedAlive
	}
	if from != p || !n.cfg.DirectAlive {
		pub, err := transport.PublicKey(p)
		if err != nil {
			return nil, err
		}
		if _, err := transport.Open(env, pub); err != nil {
			return nil, err
		}
	}
	m := *known // members in the table are never modified
	m.seq, m.dead = a.GetSequence(), false
	return &m, nil
}

// errMalformedAlive refuses an alive that is neither full (a certificate, no
// peer ID) nor slim (a peer ID, no certificate, addresses or Secret).
var errMalformedAlive = errors.New("node: malformed alive")

// aliveSubject returns the peer an alive message describes, without
// verifying: the certificate's peer of a full alive, the peer ID of a slim
// heartbeat.
func aliveSubject(a *wire.Alive) (peer.ID, bool) {
	if a.GetCertificate() == nil {
		p, err := peer.IDFromBytes(a.GetPeerId())
		return p, err == nil
	}
	if len(a.GetPeerId()) > 0 {
		return "", false
	}
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
	n.mu.Unlock()
	if stale {
		n.metrics.duplicates.WithLabelValues(kind).Inc()
		return
	}
	if from != p { // a peer's own alive is how it becomes known
		if reason := senderReason(n.view(), from, ""); reason != "" {
			n.drop(kind, reason, from)
			return
		}
	}
	if a.GetCertificate() == nil {
		m, err := n.verifyHeartbeat(from, p, env, a, n.now())
		switch {
		case errors.Is(err, errUnknownSubject):
			// Its certificate is news to this peer: the sender has it.
			n.drop(kind, reasonUnknownPeer, from)
			n.askMembership(from)
		case errors.Is(err, errMalformedAlive):
			n.drop(kind, reasonMalformed, from)
		case err != nil:
			n.drop(kind, reasonBadSignature, from)
		default:
			n.acceptHeartbeat(m, env, from, forward)
		}
		return
	}
	m, err := n.verifyAlive(env, a, n.now())
	if err != nil {
		n.drop(kind, reasonBadCertificate, from)
		return
	}
	n.acceptAlive(m, from, forward)
}

// acceptHeartbeat records a verified slim heartbeat and, with Fabric's
// forwarding, forwards it as it came.
func (n *Node) acceptHeartbeat(m *member, env *wire.Envelope, from peer.ID, forward bool) {
	n.mu.Lock()
	fresh, revived := n.members.apply(m, n.now())
	if fresh && revived {
		n.updatePeerGaugeLocked()
	}
	n.mu.Unlock()
	if !fresh {
		n.metrics.duplicates.WithLabelValues("alive").Inc()
		return
	}
	if revived {
		n.invalidateView()
		n.log.Info("peer back", "remote", m.id.String())
	}
	if forward {
		n.forwardAlive(m, env, from, false)
	}
}

// forwardAlive hands a new alive of m, received from from, to the emitter.
// With direct heartbeats (Config.DirectAlive) only news is forwarded, an
// alive that makes m known to this peer (a new member, incarnation or a
// member back from the dead): its subject sends each heartbeat itself to
// those it knows, but a peer it does not know yet learns of it only by
// gossip, once per peer that learns it.
func (n *Node) forwardAlive(m *member, env *wire.Envelope, from peer.ID, news bool) {
	if n.cfg.DirectAlive && !news {
		return
	}
	n.emit(outMsg{
		Kind:           routing.KindAlive,
		Origin:         m.id,
		OriginOrg:      m.org,
		OriginExternal: m.external,
		From:           from,
		Payload:        env,
	}, aliveKey(m.id))
}

// askMembership starts a membership exchange with p, at most one per
// AliveTimeInterval: p sent a heartbeat about a peer this peer does not know.
func (n *Node) askMembership(p peer.ID) {
	now := n.now()
	n.mu.Lock()
	ask := n.lastAsked.IsZero() || now.Sub(n.lastAsked) >= n.cfg.AliveTimeInterval
	if ask {
		n.lastAsked = now
	}
	n.mu.Unlock()
	if !ask || n.closed.Load() {
		return
	}
	n.wg.Go(func() { n.syncMembership(n.ctx, p) })
}

// mayKnow reports whether the audience lets this peer know m at all.
func (n *Node) mayKnow(m *member) bool {
	return n.view().MayKnow(&routing.Member{ID: m.id, Org: m.org, External: m.external, Alive: true})
}

// acceptAlive records a verified alive if the audience lets this peer know
// it, learns its addresses and forwards it.
func (n *Node) acceptAlive(m *member, from peer.ID, forward bool) bool {
	if !n.mayKnow(m) {
		// Peers that are not external are invisible to other orgs, and a
		// peer that is not external knows no foreign peer.
		n.drop("alive", reasonForeign, from)
		return false
	}
	n.mu.Lock()
	old := n.members.get(m.id)
	news := old == nil || old.dead || old.inc != m.inc
	fresh, revived := n.members.apply(m, n.now())
	if fresh {
		n.updatePeerGaugeLocked()
	}
	completed := !fresh && n.members.completeInternal(m)
	n.mu.Unlock()
	if fresh {
		n.invalidateView()
		if revived {
			n.log.Info("peer back", "remote", m.id.String())
		}
	}
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
		n.forwardAlive(m, m.alive, from, news)
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

// aliveLoop publishes this peer's heartbeat, exchanges membership with a few
// live peers (Fabric's discovery sync, which keeps the view alive even with
// push disabled; at the heartbeat's pace, not block pull's, since membership
// changes no faster), expires silent peers and probes dead ones.
func (n *Node) aliveLoop(ctx context.Context) {
	every(ctx, n.cfg.AliveTimeInterval, nil, func() {
		n.emitAlive()
		now := n.now()
		n.mu.Lock()
		died := n.members.expire(now, n.cfg.AliveExpirationTimeout)
		gone := n.members.purge(now, n.cfg.AliveExpirationTimeout)
		var dead []peer.ID
		for id, m := range n.members.members {
			if m.dead {
				dead = append(dead, id)
			}
		}
		if len(died) > 0 {
			n.updatePeerGaugeLocked()
		}
		n.mu.Unlock()
		for _, cs := range n.channelList() {
			cs.mu.Lock()
			for _, p := range gone {
				delete(cs.states, p)
			}
			cs.mu.Unlock()
		}
		if len(died) > 0 {
			n.invalidateView()
		}
		for _, p := range died {
			n.host.ConnManager().Unprotect(p, protectTag)
			n.log.Info("peer expired", "remote", p.String())
		}
		// Probe the dead: a handshake brings back one that restarted.
		for _, p := range dead {
			n.enqueueHello(p)
		}
	})
}

// membershipSyncLoop exchanges membership with a few live peers every
// MembershipSyncInterval: the backstop under the exchanges a handshake or a
// heartbeat about an unknown peer start.
func (n *Node) membershipSyncLoop(ctx context.Context) {
	every(ctx, n.cfg.MembershipSyncInterval, nil, func() {
		syncCtx, cancel := context.WithTimeout(ctx, n.cfg.MembershipSyncInterval)
		defer cancel()
		for _, p := range n.samplePeers(n.cfg.PullPeerNum, func(v *nodeView, m *routing.Member) bool { return v.MayTalk(m) }) {
			n.syncMembership(syncCtx, p)
		}
	})
}

// emitAlive signs the next heartbeat and pushes it: full during
// PublishCertPeriod after start, slim after. A peer that is not external
// keeps its alive inside its org; with DirectAlive it goes to every member
// that may learn of this peer.
func (n *Node) emitAlive() {
	n.mu.Lock()
	full := n.now().Before(n.startedAt.Add(n.cfg.PublishCertPeriod))
	n.mu.Unlock()
	env, err := n.signAlive(full)
	if err != nil {
		return
	}
	n.emit(outMsg{
		Kind:           routing.KindAlive,
		Origin:         n.self,
		OriginOrg:      n.org,
		OriginExternal: n.external,
		OrgOnly:        !n.external,
		All:            n.cfg.DirectAlive,
		Payload:        env,
	}, aliveKey(n.self))
}

// signAlive signs a new alive (next sequence): a full one, kept as ownAlive,
// or a slim heartbeat. The host's addresses are read and the envelope signed
// without any lock.
func (n *Node) signAlive(full bool) (*wire.Envelope, error) {
	a := &wire.Alive{
		External:    n.external,
		Incarnation: n.inc,
		Sequence:    n.seq.Add(1),
	}
	var addrs []ma.Multiaddr
	if full {
		addrs = n.host.Addrs()
		a.Certificate = n.cert
		if n.external {
			for _, addr := range addrs {
				a.Addrs = append(a.Addrs, addr.Bytes())
			}
		}
	} else {
		a.PeerId = []byte(n.self)
	}
	key := n.signingKey()
	env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Alive{Alive: a}})
	if err != nil {
		n.log.Error("signing alive", "err", err)
		return nil, err
	}
	if full {
		secret := &wire.Secret{}
		for _, addr := range addrs {
			secret.InternalAddrs = append(secret.InternalAddrs, addr.Bytes())
		}
		if env.Secret, err = transport.SignSecret(key, secret); err != nil {
			return nil, err
		}
	}
	n.mu.Lock()
	n.lastBeat = max(n.lastBeat, a.Sequence)
	if full && n.ownAliveSeq < a.Sequence {
		n.ownAlive, n.ownAliveSeq = env, a.Sequence
	}
	n.mu.Unlock()
	return env, nil
}

// currentAlive returns this peer's full alive, signing a new one when a
// heartbeat went out since the last: what a hello or a membership response
// carries must be as new as what its receiver may have heard, or a peer
// thought dead would not come back by it.
func (n *Node) currentAlive() (*wire.Envelope, error) {
	n.mu.Lock()
	own, fresh := n.ownAlive, n.ownAliveSeq >= n.lastBeat
	n.mu.Unlock()
	if own != nil && fresh {
		return own, nil
	}
	return n.signAlive(true)
}

// learnAddrs puts a member's addresses in the peerstore (internal ones only
// for a member of this org) and dials it if not connected, so that the
// handshake is done before the first push.
func (n *Node) learnAddrs(m *member) {
	var addrs []ma.Multiaddr
	if m.org == n.org {
		addrs = append(addrs, m.internal...)
	}
	addrs = append(addrs, m.addrs...)
	if len(addrs) > 0 {
		n.host.Peerstore().AddAddrs(m.id, addrs, peerstore.RecentlyConnectedAddrTTL)
	}
	if n.host.Network().Connectedness(m.id) != network.Connected {
		n.enqueueHello(m.id)
	}
}

// isKnown reports whether p is in the member table, dead or alive: a peer
// whose certificate this peer has verified.
func (n *Node) isKnown(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members.get(p) != nil
}

func (n *Node) isLive(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members.live(p)
}

// syncMembership asks p for the members it may disclose to this peer and
// applies them (without forwarding: they are not news).
func (n *Node) syncMembership(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	n.mu.Lock()
	known := make([]uint64, 0, len(n.members.members))
	for id, m := range n.members.members {
		if len(known) == maxMembershipKnown {
			break // the responder sends the rest again
		}
		if !m.dead {
			known = append(known, knownKey(id, m.inc))
		}
	}
	n.mu.Unlock()
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Membership{Membership: &wire.MembershipRequest{Known: known}}})
	if err != nil {
		return
	}
	n.applyPulled(p, resp.GetMembership().GetAlive(), maxMembershipResponse)
}

// knownKey is a member's entry in MembershipRequest.known: the first 8 bytes
// of SHA-256(peer ID || incarnation).
func knownKey(p peer.ID, inc uint64) uint64 {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write(binary.BigEndian.AppendUint64(nil, inc))
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// maxMembershipKnown caps MembershipRequest.known: more than a response may
// carry, fewer than a hostile request could list.
const maxMembershipKnown = 4 * maxMembershipResponse

// serveMembership answers with the alive messages of the live members, this
// peer included, that the audience lets the requester learn of
// (routing.View.MayLearn) and that it does not list as known (same
// incarnation); Secrets never leave this peer's org.
func (n *Node) serveMembership(from peer.ID, req *wire.MembershipRequest) (*wire.PullResponse, error) {
	v := n.view()
	requester, ok := v.member(from)
	if !ok || !v.MayTalk(requester) || len(req.GetKnown()) > maxMembershipKnown {
		return nil, errPullDenied
	}
	known := make(map[uint64]struct{}, len(req.GetKnown()))
	for _, k := range req.GetKnown() {
		known[k] = struct{}{}
	}
	isKnown := func(p peer.ID, inc uint64) bool {
		_, ok := known[knownKey(p, inc)]
		return ok
	}
	same := requester.Org == n.org
	if _, err := n.currentAlive(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	var out []*wire.Envelope
	if n.ownAlive != nil && v.MayLearn(requester, &v.Self) && !isKnown(n.self, n.inc) {
		out = append(out, n.ownAlive)
	}
	for i := range v.Members {
		if len(out) >= maxMembershipResponse {
			break
		}
		subject := &v.Members[i]
		m := n.members.get(subject.ID)
		if m == nil || m.dead || subject.ID == from || !v.MayLearn(requester, subject) || isKnown(m.id, m.inc) {
			continue
		}
		out = append(out, m.alive)
	}
	n.mu.Unlock()
	if !same {
		for i, env := range out {
			out[i] = transport.StripSecret(env)
		}
	}
	return &wire.PullResponse{Response: &wire.PullResponse_Membership{Membership: &wire.MembershipResponse{Alive: out}}}, nil
}
