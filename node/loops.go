package node

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing"
)

// every runs f every d until ctx ends, and also whenever kick (which may be
// nil) delivers.
func every(ctx context.Context, d time.Duration, kick <-chan struct{}, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		f()
	}
}

// samplePeers returns up to k live members, drawn uniformly with loopRng,
// that keep admits and that are not suspected of serving forged blocks.
func (n *Node) samplePeers(k int, keep func(v *nodeView, m *routing.Member) bool) []peer.ID {
	v := n.view()
	var pool []peer.ID
	for i := range v.Members {
		if m := &v.Members[i]; keep(v, m) {
			pool = append(pool, m.ID)
		}
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	kept := pool[:0]
	for _, id := range pool {
		if until, ok := n.suspects[id]; ok {
			if now.Before(until) {
				continue
			}
			delete(n.suspects, id)
		}
		kept = append(kept, id)
	}
	sortIDs(kept) // the view's order is the map's; the RNG alone decides the sample
	n.loopRng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
	return kept[:min(k, len(kept))]
}

// eachChannelPeer runs f for each joined channel and each of up to
// PullPeerNum peers picked to ask about it: peers the audience lets serve the
// channel's blocks (routing.View.BlockPeer) if blocks is set, else any peer
// of a channel org this peer may talk to. The exchanges run concurrently, so
// one slow peer delays no other, and eachChannelPeer returns when all have
// ended.
func (n *Node) eachChannelPeer(ctx context.Context, blocks bool, f func(ctx context.Context, p peer.ID, ch string)) {
	var wg sync.WaitGroup
	for _, ch := range n.joined() {
		peers := n.samplePeers(n.cfg.PullPeerNum, func(v *nodeView, m *routing.Member) bool {
			if blocks {
				return v.BlockPeer(m, ch)
			}
			return v.OrgInChannel(m.Org, ch) && v.MayTalk(m)
		})
		for _, p := range peers {
			wg.Go(func() { f(ctx, p, ch) })
		}
	}
	wg.Wait()
}

// pullLoop runs block anti-entropy for every joined channel every
// PullInterval, and at once when kickPull says this peer is behind what it
// was told of (at most one extra round per round).
func (n *Node) pullLoop(ctx context.Context) {
	every(ctx, n.cfg.PullInterval, n.pullKick, func() {
		n.eachChannelPeer(ctx, true, n.pullFrom)
		if n.store != nil {
			n.retryDeliveries()
		}
	})
}

// kickPull asks the pull loop for a round now: an announcement named blocks
// beyond what the ledger buffers, so this peer is behind and push alone will
// not bring it back.
func (n *Node) kickPull() {
	select {
	case n.pullKick <- struct{}{}:
	default:
	}
}
