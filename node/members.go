package node

import (
	"context"
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
	m, err := n.verifyAlive(env, a, n.now())
	if err != nil {
		n.drop(kind, reasonBadCertificate, from)
		return
	}
	n.acceptAlive(m, from, forward)
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
		syncCtx, cancel := context.WithTimeout(ctx, n.cfg.AliveTimeInterval)
		defer cancel()
		for _, p := range n.samplePeers(n.cfg.PullPeerNum, func(v *nodeView, m *routing.Member) bool { return v.MayTalk(m) }) {
			n.syncMembership(syncCtx, p)
		}
	})
}

// emitAlive signs the next heartbeat and pushes it. A peer that is not
// external keeps its alive inside its org.
func (n *Node) emitAlive() {
	env, err := n.signAlive()
	if err != nil {
		return
	}
	n.emit(outMsg{
		Kind:           routing.KindAlive,
		Origin:         n.self,
		OriginOrg:      n.org,
		OriginExternal: n.external,
		OrgOnly:        !n.external,
		Payload:        env,
	}, aliveKey(n.self))
}

// signAlive signs a new alive (next sequence) and keeps it as ownAlive. The
// host's addresses are read and the envelope signed without any lock.
func (n *Node) signAlive() (*wire.Envelope, error) {
	addrs := n.host.Addrs()
	a := &wire.Alive{
		Certificate: n.cert,
		External:    n.external,
		Incarnation: n.inc,
		Sequence:    n.seq.Add(1),
	}
	if n.external {
		for _, addr := range addrs {
			a.Addrs = append(a.Addrs, addr.Bytes())
		}
	}
	key := n.signingKey()
	env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Alive{Alive: a}})
	if err != nil {
		n.log.Error("signing alive", "err", err)
		return nil, err
	}
	secret := &wire.Secret{}
	for _, addr := range addrs {
		secret.InternalAddrs = append(secret.InternalAddrs, addr.Bytes())
	}
	if env.Secret, err = transport.SignSecret(key, secret); err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.ownAliveSeq < a.Sequence {
		n.ownAlive, n.ownAliveSeq = env, a.Sequence
	}
	n.mu.Unlock()
	return env, nil
}

// currentAlive returns this peer's latest alive, signing one if there is
// none yet.
func (n *Node) currentAlive() (*wire.Envelope, error) {
	n.mu.Lock()
	own := n.ownAlive
	n.mu.Unlock()
	if own != nil {
		return own, nil
	}
	return n.signAlive()
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
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_Membership{Membership: &wire.MembershipRequest{}}})
	if err != nil {
		return
	}
	n.applyPulled(p, resp.GetMembership().GetAlive(), maxMembershipResponse)
}

// serveMembership answers with the alive messages of the live members, this
// peer included, that the audience lets the requester learn of
// (routing.View.MayLearn); Secrets never leave this peer's org.
func (n *Node) serveMembership(from peer.ID) (*wire.PullResponse, error) {
	v := n.view()
	requester, ok := v.member(from)
	if !ok || !v.MayTalk(requester) {
		return nil, errPullDenied
	}
	same := requester.Org == n.org
	n.mu.Lock()
	var out []*wire.Envelope
	if n.ownAlive != nil && v.MayLearn(requester, &v.Self) {
		out = append(out, n.ownAlive)
	}
	for i := range v.Members {
		if len(out) >= maxMembershipResponse {
			break
		}
		subject := &v.Members[i]
		m := n.members.get(subject.ID)
		if m == nil || m.dead || subject.ID == from || !v.MayLearn(requester, subject) {
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
