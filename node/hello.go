package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// helloWorkers bounds how many handshakes (and the dials before them) run at
// once.
const helloWorkers = 4

// handshakeTimeout bounds one hello exchange, dial included.
const handshakeTimeout = 10 * time.Second

// errRefused is returned to a hello from a peer this peer may not talk to.
var errRefused = errors.New("node: hello refused")

// notifiee returns the notifiee that handles every new connection. It is
// built once so StopNotify can find it.
func (n *Node) notifiee() network.Notifiee {
	n.notifyOnce.Do(func() {
		n.notify = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { n.connected(c) }}
	})
	return n.notify
}

// connected starts the handshake of a new connection. The dialler speaks
// first: this peer sends its alive, which names its org, only on connections
// it dialled, or to a peer it has already verified. On a connection a
// stranger opened, it waits for the stranger's hello, which it verifies
// before answering; a stranger that has not completed one within
// handshakeTimeout is disconnected and gated.
func (n *Node) connected(c network.Conn) {
	p := c.RemotePeer()
	if n.rejectedRecently(p) {
		// Back within its back-off, past a host without a gater (or a
		// connection this peer's own request dialled): closed again.
		if !n.closed.Load() {
			n.wg.Go(func() { _ = n.host.Network().ClosePeer(p) })
		}
		return
	}
	if c.Stat().Direction != network.DirInbound || n.isKnown(p) {
		n.enqueueHello(p)
		return
	}
	n.watchStranger(p)
}

// maxPendingStrangers bounds the inbound connections from peers that have
// not completed a hello (each holds a connection and a timer): past it the
// one waiting longest is disconnected, without a strike, since a genuine
// peer finishes its hello within a round trip or two and the oldest is
// most likely a staller. libp2p's resource manager bounds the connections
// per source address before any of this (8 per IPv4 address, and a rate of
// new ones; loopback is exempt).
const maxPendingStrangers = 128

// maxRefusedBeforeHello bounds the push and pull streams a stranger may
// open before its hello completes: each is reset unread, but what it had
// in flight is still received and decrypted, so a stranger opening stream
// after stream costs this peer its bandwidth and CPU until the handshake
// timeout. Past the bound it is disconnected and gated as if its hello had
// timed out. A genuine dialler opens a few: its writer tries a push
// stream on a new connection, and reopens one after each reset with a
// back-off starting at 100 ms, which makes at most 8 in handshakeTimeout.
const maxRefusedBeforeHello = 16

// strangerWatch is the handshake timer of one stranger's connection.
type strangerWatch struct {
	since   time.Time
	stop    chan struct{} // closed when the stranger completes its hello or is evicted
	refused int           // push and pull streams reset before its hello; under pendingMu
}

// refusedStranger counts a push or pull stream of p refused by admission
// and, when p is a stranger past maxRefusedBeforeHello, rejects it.
func (n *Node) refusedStranger(p peer.ID) {
	n.pendingMu.Lock()
	w, ok := n.strangers[p]
	over := false
	if ok {
		w.refused++
		over = w.refused == maxRefusedBeforeHello+1
	}
	n.pendingMu.Unlock()
	if over && !n.closed.Load() {
		n.wg.Go(func() {
			n.reject(p, fmt.Errorf("%d push and pull streams before its hello", maxRefusedBeforeHello+1))
		})
	}
}

// watchStranger starts p's handshake timer: a stranger that has not
// completed a hello within handshakeTimeout is disconnected and gated.
func (n *Node) watchStranger(p peer.ID) {
	if n.closed.Load() {
		return
	}
	w := &strangerWatch{since: n.now(), stop: make(chan struct{})}
	var evicted peer.ID
	n.pendingMu.Lock()
	if _, ok := n.strangers[p]; ok {
		n.pendingMu.Unlock()
		return // a second connection of a stranger already timed
	}
	if len(n.strangers) >= maxPendingStrangers {
		for q, o := range n.strangers {
			if evicted == "" || o.since.Before(n.strangers[evicted].since) {
				evicted = q
			}
		}
		close(n.strangers[evicted].stop)
		delete(n.strangers, evicted)
	}
	n.strangers[p] = w
	n.pendingMu.Unlock()
	if evicted != "" {
		n.metrics.handshakes.WithLabelValues("evicted").Inc()
		n.log.Debug("too many pending handshakes: disconnecting the oldest", "remote", evicted.String())
		n.wg.Go(func() { _ = n.host.Network().ClosePeer(evicted) })
	}
	n.wg.Go(func() {
		t := time.NewTimer(handshakeTimeout)
		defer t.Stop()
		defer n.strangerDone(p, w)
		select {
		case <-n.ctx.Done():
		case <-w.stop:
		case <-t.C:
			if !n.isLive(p) && n.host.Network().Connectedness(p) == network.Connected {
				n.reject(p, errors.New("no hello within the handshake timeout"))
			}
		}
	})
}

// strangerDone ends p's handshake timer w (any, if w is nil): its hello is
// complete, or the timer fired.
func (n *Node) strangerDone(p peer.ID, w *strangerWatch) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	if cur, ok := n.strangers[p]; ok && (w == nil || cur == w) {
		if w == nil {
			close(cur.stop)
		}
		delete(n.strangers, p)
	}
}

// enqueueHello asks a worker to handshake with p (dialling first if needed).
// It never blocks: a peer already queued is not queued twice, and when the
// queue is full the handshake is left to the remote side or the next alive.
func (n *Node) enqueueHello(p peer.ID) {
	if p == n.self || n.rejectedRecently(p) {
		return
	}
	n.pendingMu.Lock()
	if n.pending[p] {
		n.pendingMu.Unlock()
		return
	}
	select {
	case n.helloQ <- p:
		n.pending[p] = true
	default:
	}
	n.pendingMu.Unlock()
}

func (n *Node) helloLoop(ctx context.Context) {
	done := make(chan struct{})
	for range helloWorkers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-n.helloQ:
					n.pendingMu.Lock()
					delete(n.pending, p)
					n.pendingMu.Unlock()
					n.handshake(ctx, p)
				}
			}
		}()
	}
	for range helloWorkers {
		<-done
	}
}

// handshake dials p if needed, exchanges hellos, and on success asks p for
// the members it may disclose.
func (n *Node) handshake(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if n.rejectedRecently(p) {
		return
	}
	if n.host.Network().Connectedness(p) != network.Connected {
		if err := n.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			n.log.Debug("dial failed", "remote", p.String(), "err", err)
			return
		}
	}
	own, err := n.helloEnvelope()
	if err != nil {
		return
	}
	start := time.Now()
	resp, err := n.tr.Hello(ctx, p, &wire.Hello{Alive: own})
	rtt := time.Since(start) // a round trip, with the stream's negotiation: an upper bound
	if err != nil {
		var unsupported multistream.ErrNotSupported[protocol.ID]
		if errors.As(err, &unsupported) {
			// Not a fabgossip peer (or not one any more): nothing to say to it.
			n.reject(p, fmt.Errorf("no hello protocol: %w", err))
			return
		}
		if errors.Is(err, context.DeadlineExceeded) && n.ctx.Err() == nil {
			// A hello that does not end in time ends the connection.
			n.reject(p, fmt.Errorf("hello not completed: %w", err))
			return
		}
		if ctx.Err() == nil {
			n.log.Debug("hello failed", "remote", p.String(), "err", err)
		}
		return
	}
	m, err := n.checkHello(p, resp)
	if err != nil {
		n.reject(p, err)
		return
	}
	if !n.acceptAlive(m, p, true) && !n.isLive(p) {
		return
	}
	n.metrics.handshakes.WithLabelValues("ok").Inc()
	n.strangerDone(p, nil)
	if n.tree != nil {
		n.tree.mu.Lock()
		n.tree.m.ObserveRTT(p, rtt)
		n.tree.mu.Unlock()
	}
	n.syncMembership(ctx, p)
	// Learn at once which channels the new peer joined (and its heights),
	// rather than at the next RequestStateInfoInterval: a restarted peer
	// becomes eligible, and starts pulling, within one round trip.
	for _, ch := range n.joined() {
		if n.network().OrgInChannel(m.org, ch) {
			n.requestStateInfoFrom(ctx, p, ch)
		}
	}
}

// checkHello verifies a hello from p: an alive whose certificate names p.
func (n *Node) checkHello(p peer.ID, h *wire.Hello) (*member, error) {
	env := h.GetAlive()
	var msg wire.Message
	if err := proto.Unmarshal(env.GetPayload(), &msg); err != nil || msg.GetAlive() == nil {
		return nil, errors.New("hello carries no alive message")
	}
	if msg.GetAlive().GetCertificate() == nil {
		return nil, errors.New("hello alive carries no certificate")
	}
	subject, ok := aliveSubject(msg.GetAlive())
	if !ok {
		return nil, errors.New("hello alive has a malformed certificate")
	}
	if subject != p {
		return nil, errors.New("hello alive is about " + subject.String() + ", not the connected peer")
	}
	m, err := n.verifyAlive(env, msg.GetAlive(), n.now())
	if err != nil {
		return nil, err
	}
	if !n.mayKnow(m) {
		return nil, errRefused
	}
	return m, nil
}

// reject disconnects p, keeps it out for a back-off that doubles with each
// rejection in a row (strikeBackoff), counts it and logs the reason once per
// rejection. It handles a failed or unfinished hello and a peer ejected for
// misbehaviour alike.
func (n *Node) reject(p peer.ID, err error) {
	n.markRejected(p, err)
	_ = n.host.Network().ClosePeer(p)
}

// markRejected is reject without the disconnection: p is struck, gated and
// kept out from now on.
func (n *Node) markRejected(p peer.ID, err error) {
	result := "rejected"
	switch {
	case errors.Is(err, errRefused):
		result = "refused"
	case errors.Is(err, errMisbehaving):
		result = "ejected"
	}
	now := n.now()
	strikes := n.scores.strike(p, now)
	backoff := strikeBackoff(rejectBackoff, strikes)
	n.metrics.handshakes.WithLabelValues(result).Inc()
	n.log.Info("handshake failed", "remote", p.String(), "result", result, "err", err, "strikes", strikes, "for", backoff)
	if bg, ok := n.gater.(backoffGater); ok && strikes > 1 {
		bg.BlockFor(p, strikeBackoff(bg.Backoff(), strikes), err.Error())
	} else if n.gater != nil {
		n.gater.Block(p, err.Error())
	}
	n.pendingMu.Lock()
	n.rejected[p] = now.Add(backoff)
	n.pendingMu.Unlock()
}

// backoffGater is a Gater that can keep a peer out for a given time
// (p2phost.Gater can): a peer rejected again and again is kept out longer
// each time, up to maxBackoff.
type backoffGater interface {
	Gater
	BlockFor(p peer.ID, d time.Duration, reason string)
	Backoff() time.Duration
}

// rejectBackoff is how long this peer neither dials nor greets a peer it
// rejected, whatever the gater does (a host without a gater, or one whose
// back-off is shorter, must not redial a peer it has just thrown out).
const rejectBackoff = 10 * time.Second

// rejectedRecently reports whether p was rejected within rejectBackoff.
func (n *Node) rejectedRecently(p peer.ID) bool {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	until, ok := n.rejected[p]
	if !ok {
		return false
	}
	if n.now().Before(until) {
		return true
	}
	delete(n.rejected, p)
	return false
}

// handleHello answers a hello: verify the requester, then answer with this
// peer's alive.
func (n *Node) handleHello(_ context.Context, from peer.ID, req *wire.Hello) (*wire.Hello, error) {
	n.tracer.Received(from, req.GetAlive())
	if n.rejectedRecently(from) {
		// Still within its back-off (a host without a gater lets it
		// reconnect): refused unread, with no new strike, and disconnected.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			_ = n.host.Network().ClosePeer(from)
		}()
		return nil, errRefused
	}
	m, err := n.checkHello(from, req)
	if err != nil {
		// Kept out at once, so a hello on the heels of this one is refused
		// too; disconnected after the handler returns, so the stream ends
		// first. The transport waits for handlers before Close goes on to
		// wg.Wait, so this Add always precedes the Wait.
		n.markRejected(from, err)
		n.wg.Go(func() { _ = n.host.Network().ClosePeer(from) })
		return nil, err
	}
	n.acceptAlive(m, from, true)
	n.strangerDone(from, nil)
	own, err := n.helloEnvelope()
	if err != nil {
		return nil, err
	}
	n.metrics.handshakes.WithLabelValues("ok").Inc()
	return &wire.Hello{Alive: own}, nil
}

// helloEnvelope is this peer's latest alive without its Secret: neither side
// of a hello knows the other's org yet.
func (n *Node) helloEnvelope() (*wire.Envelope, error) {
	own, err := n.currentAlive()
	if err != nil {
		return nil, err
	}
	return transport.StripSecret(own), nil
}
