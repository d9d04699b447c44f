package discovery

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// bootPeer is the redial state of one bootstrap peer.
type bootPeer struct {
	ai          peer.AddrInfo
	attempt     int       // retries since the last stable connection
	next        time.Time // earliest next dial; zero means now
	dialing     bool
	connectedAt time.Time // zero while not connected
}

type bootResult struct {
	p   peer.ID
	err error
}

// runBootstrap keeps the bootstrap peers connected: it dials each one that
// is not connected when its back-off allows, and is woken by connectedness
// events, dial results and its timer. It also drains sub, which it must: the
// event bus blocks on a full subscriber.
//
// It runs on the real clock (timers), not on WithClock's.
//
// A connection that lasted at least Backoff.Max resets the back-off; one
// that drops sooner does not, so a peer that accepts and then closes every
// connection is redialled less and less often.
func (d *Discovery) runBootstrap(ctx context.Context, sub event.Subscription) {
	defer d.wg.Done()
	peers := make(map[peer.ID]*bootPeer, len(d.bootstrap))
	for _, ai := range d.bootstrap {
		peers[ai.ID] = &bootPeer{ai: ai}
		d.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.PermanentAddrTTL)
	}
	results := make(chan bootResult, len(peers)) // one dial per peer at most: never blocks
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	for {
		now := time.Now()
		var wake time.Time
		for _, bp := range peers {
			if bp.dialing || d.h.Network().Connectedness(bp.ai.ID) == network.Connected {
				continue
			}
			if bp.next.After(now) {
				if wake.IsZero() || bp.next.Before(wake) {
					wake = bp.next
				}
				continue
			}
			bp.dialing = true
			d.tracer.CandidateFound(SourceBootstrap, bp.ai.ID)
			d.wg.Add(1)
			go func(ai peer.AddrInfo) {
				defer d.wg.Done()
				err := connect(ctx, d.h, ai, d.cfg.DialTimeout)
				d.tracer.Dialed(SourceBootstrap, ai.ID, err)
				results <- bootResult{p: ai.ID, err: err}
			}(bp.ai)
		}
		if !wake.IsZero() {
			timer.Reset(wake.Sub(now))
		} else {
			timer.Stop()
		}

		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case r := <-results:
			bp := peers[r.p]
			bp.dialing = false
			now := time.Now()
			if r.err != nil {
				bp.next = now.Add(d.backoff(bp.attempt))
				bp.attempt++
				if ctx.Err() == nil {
					d.log.Debug("bootstrap dial failed", "peer", r.p, "retry_in", bp.next.Sub(now), "err", r.err)
				}
			} else if bp.connectedAt.IsZero() {
				bp.connectedAt = now
			}
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			bp := peers[ev.Peer]
			if bp == nil {
				continue
			}
			now := time.Now()
			switch ev.Connectedness {
			case network.Connected:
				if bp.connectedAt.IsZero() {
					bp.connectedAt = now
				}
			case network.NotConnected:
				if !bp.connectedAt.IsZero() && now.Sub(bp.connectedAt) >= d.cfg.Backoff.Max {
					bp.attempt = 0
				}
				bp.connectedAt = time.Time{}
				bp.next = now.Add(d.backoff(bp.attempt))
				bp.attempt++
				d.log.Info("bootstrap peer disconnected", "peer", ev.Peer, "retry_in", bp.next.Sub(now))
			}
		}
	}
}
