package transport

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// openInbound registers an inbound stream and applies the gates that come
// before anything is read: the admission function for push and pull,
// MaxInboundHellosPerPeer for hello. On false the stream has been reset
// and traced; otherwise the caller ends it with endInbound.
//
// Registering before asking the admission function means a stream cannot
// slip past both a refusal and the ResetInbound that follows it: either it
// was registered before ResetInbound ran, which resets it, or its
// admission check comes after the refusal.
func (t *Transport) openInbound(s network.Stream, from peer.ID, pid protocol.ID) bool {
	if pid == ProtocolHello {
		t.inMu.Lock()
		ok := t.hellos[from] < t.cfg.MaxInboundHellosPerPeer
		if ok {
			t.hellos[from]++
			t.trackLocked(s, from, pid)
		}
		t.inMu.Unlock()
		if !ok {
			_ = s.ResetWithError(network.StreamResourceLimitExceeded)
			t.trace.streamError(from, pid, ErrorHandler, errHelloBusy)
		}
		return ok
	}
	t.inMu.Lock()
	t.trackLocked(s, from, pid)
	t.inMu.Unlock()
	if t.admit == nil || t.admit(from, pid) {
		return true
	}
	t.untrack(s, from)
	_ = s.ResetWithError(network.StreamGated)
	t.trace.streamError(from, pid, ErrorUnadmitted, ErrUnadmitted)
	return false
}

func (t *Transport) trackLocked(s network.Stream, from peer.ID, pid protocol.ID) {
	set := t.inbound[from]
	if set == nil {
		set = make(map[network.Stream]protocol.ID)
		t.inbound[from] = set
	}
	set[s] = pid
}

// untrack unregisters s. It reports false when ResetInbound got there
// first, that is, when s was reset because its peer is no longer admitted.
func (t *Transport) untrack(s network.Stream, from peer.ID) bool {
	t.inMu.Lock()
	defer t.inMu.Unlock()
	set := t.inbound[from]
	pid, ok := set[s]
	if !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(t.inbound, from)
	}
	if pid == ProtocolHello {
		if t.hellos[from]--; t.hellos[from] <= 0 {
			delete(t.hellos, from)
		}
	}
	return true
}

// ResetInbound resets every inbound push and pull stream p has open, for a
// peer that is no longer admitted (see WithAdmission): nothing more is read
// from those streams, though a frame read before may still reach its
// handler, and new streams are checked at open. Hello streams are left
// alone. ResetInbound does not wait for handler calls in flight, and
// leaves p's outbound push stream to ClosePeer.
func (t *Transport) ResetInbound(p peer.ID) {
	var reset []network.Stream
	t.inMu.Lock()
	for s, pid := range t.inbound[p] {
		if pid != ProtocolHello {
			delete(t.inbound[p], s)
			reset = append(reset, s)
		}
	}
	if len(t.inbound[p]) == 0 {
		delete(t.inbound, p)
	}
	t.inMu.Unlock()
	for _, s := range reset {
		_ = s.ResetWithError(network.StreamGated)
	}
}
