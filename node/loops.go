package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// every runs f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// aliveLoop publishes this peer's heartbeat, exchanges membership with a few
// live peers (Fabric's discovery sync, which keeps the view alive even with
// push disabled; at the heartbeat's pace, not block pull's, since membership
// changes no faster), expires silent peers and probes dead ones.
func (n *Node) aliveLoop(ctx context.Context) {
	every(ctx, n.cfg.AliveTimeInterval, func() {
		n.emitAlive()
		n.mu.Lock()
		died := n.members.expire(n.now(), n.cfg.AliveExpirationTimeout)
		for _, p := range n.members.purge(n.now(), n.cfg.AliveExpirationTimeout) {
			for _, cs := range n.channels {
				delete(cs.states, p)
			}
		}
		var dead []peer.ID
		for id, m := range n.members.members {
			if m.dead {
				dead = append(dead, id)
			}
		}
		if len(died) > 0 {
			n.invalidateViewLocked()
			n.updatePeerGaugeLocked()
		}
		n.mu.Unlock()
		for _, p := range died {
			n.host.ConnManager().Unprotect(p, protectTag)
			n.log.Info("peer expired", "remote", p.String())
		}
		// Probe the dead: a handshake brings back one that restarted.
		for _, p := range dead {
			n.enqueueHello(p)
		}
		n.mu.Lock()
		peers := n.syncPeersLocked(n.cfg.PullPeerNum)
		n.mu.Unlock()
		syncCtx, cancel := context.WithTimeout(ctx, n.cfg.AliveTimeInterval)
		defer cancel()
		for _, p := range peers {
			n.syncMembership(syncCtx, p)
		}
	})
}

// emitAlive signs the next heartbeat and pushes it. A peer that is not
// external keeps its alive inside its org.
func (n *Node) emitAlive() {
	n.mu.Lock()
	env, err := n.signAliveLocked()
	n.mu.Unlock()
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
			n.requestStateInfo(ctx)
		}
	}
}

func (n *Node) publishDirtyStateInfo() {
	type pending struct {
		m   *outMsg
		key string
	}
	var out []pending
	n.mu.Lock()
	for _, cs := range n.channels {
		if cs.joined && !cs.left && cs.dirty {
			m, key := n.signStateInfoLocked(cs)
			out = append(out, pending{m, key})
		}
	}
	n.mu.Unlock()
	for _, p := range out {
		n.emitIf(p.m, p.key)
	}
}

// requestPeersLocked picks up to k live peers to ask about channel ch: peers
// of channel orgs this peer may talk to, and eligible ones if needEligible.
func (n *Node) requestPeersLocked(ch string, k int, needEligible bool) []peer.ID {
	cs := n.channels[ch]
	var pool []peer.ID
	for id, m := range n.members.members {
		if m.dead || !n.network().OrgInChannel(m.org, ch) {
			continue
		}
		if !n.mayTalk(m.org, m.external) {
			continue
		}
		if needEligible && !cs.eligible(id) {
			continue
		}
		if until, ok := n.suspects[id]; ok {
			if n.now().Before(until) {
				continue
			}
			delete(n.suspects, id)
		}
		pool = append(pool, id)
	}
	return n.sampleLocked(pool, k)
}

// sampleLocked returns up to k of pool, uniformly, drawn with loopRng.
func (n *Node) sampleLocked(pool []peer.ID, k int) []peer.ID {
	sortIDs(pool) // map order is random; the RNG alone decides the sample
	n.loopRng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	return pool[:min(k, len(pool))]
}

func (n *Node) requestStateInfo(ctx context.Context) {
	n.eachChannelPeer(ctx, false, n.requestStateInfoFrom)
}

// eachChannelPeer calls f, outside the lock, for each joined channel and
// each of up to PullPeerNum peers picked to ask about it (eligible ones only
// if eligible is set).
func (n *Node) eachChannelPeer(ctx context.Context, eligible bool, f func(ctx context.Context, p peer.ID, ch string)) {
	n.mu.Lock()
	chans := n.joinedLocked()
	plan := make([][]peer.ID, len(chans))
	for i, ch := range chans {
		plan[i] = n.requestPeersLocked(ch, n.cfg.PullPeerNum, eligible)
	}
	n.mu.Unlock()
	for i, ch := range chans {
		for _, p := range plan[i] {
			f(ctx, p, ch)
		}
	}
}

func (n *Node) requestStateInfoFrom(ctx context.Context, p peer.ID, ch string) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestStateInfoInterval)
	defer cancel()
	resp, err := n.tr.Pull(ctx, p, &wire.PullRequest{Request: &wire.PullRequest_StateInfo{
		StateInfo: &wire.StateInfoRequest{ChannelMac: channelMAC(n.self, ch)},
	}})
	if err != nil {
		return
	}
	elems := resp.GetStateInfo().GetElements()
	if len(elems) > maxStateInfoResponse {
		elems = elems[:maxStateInfoResponse]
	}
	for _, env := range elems {
		n.handleEnvelope(p, env, ViaPull)
	}
}

// pullLoop runs block anti-entropy for every joined channel every
// PullInterval.
func (n *Node) pullLoop(ctx context.Context) {
	every(ctx, n.cfg.PullInterval, func() {
		n.eachChannelPeer(ctx, true, n.pullFrom)
		if n.store != nil {
			n.retryDeliveries()
		}
	})
}

// syncPeersLocked picks up to k live members this peer may talk to.
func (n *Node) syncPeersLocked(k int) []peer.ID {
	var pool []peer.ID
	for id, m := range n.members.members {
		if !m.dead && n.mayTalk(m.org, m.external) {
			pool = append(pool, id)
		}
	}
	return n.sampleLocked(pool, k)
}
