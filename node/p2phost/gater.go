package p2phost

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is a connection gater with an expiring, bounded block list of peer
// IDs. A blocked peer is refused when we dial it (InterceptPeerDial) and when
// it dials us, as soon as the security handshake has proven its peer ID
// (InterceptSecured). Everything else is allowed: admission is decided by the
// hello handshake, the gater only keeps out peers that failed it.
//
// Entries expire after their back-off; an expired entry is removed when it
// is next looked at. When MaxEntries peers are blocked, blocking one more
// drops the entry that would expire first, so a flood of fresh peer IDs
// cannot grow memory without bound.
//
// A Gater is safe for concurrent use.
type Gater struct {
	backoff    time.Duration
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	blocked map[peer.ID]blockEntry
}

type blockEntry struct {
	until  time.Time
	reason string
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

// NewGater returns a gater whose Block keeps a peer out for backoff and
// which holds at most maxEntries entries. now is the clock (nil means
// time.Now); tests inject one to expire entries without waiting.
// Non-positive backoff or maxEntries are replaced by DefaultConfig's values.
func NewGater(backoff time.Duration, maxEntries int, now func() time.Time) *Gater {
	def := DefaultConfig()
	if backoff <= 0 {
		backoff = def.GaterBackoff
	}
	if maxEntries <= 0 {
		maxEntries = def.GaterMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &Gater{
		backoff:    backoff,
		maxEntries: maxEntries,
		now:        now,
		blocked:    make(map[peer.ID]blockEntry),
	}
}

// Backoff is how long Block keeps a peer out.
func (g *Gater) Backoff() time.Duration { return g.backoff }

// Block keeps p out for the gater's back-off. reason is kept for BlockedFor
// (and logs); it is not sent anywhere. Blocking does not close existing
// connections: Host.BlockPeer does both.
func (g *Gater) Block(p peer.ID, reason string) {
	g.BlockFor(p, g.backoff, reason)
}

// BlockFor keeps p out for d. A peer that is already blocked for longer
// keeps its later expiry; the reason is replaced either way.
func (g *Gater) BlockFor(p peer.ID, d time.Duration, reason string) {
	now := g.now()
	until := now.Add(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.blocked[p]; ok {
		if e.until.After(until) {
			until = e.until
		}
		g.blocked[p] = blockEntry{until: until, reason: reason}
		return
	}
	if len(g.blocked) >= g.maxEntries {
		g.evictLocked(now)
	}
	g.blocked[p] = blockEntry{until: until, reason: reason}
}

// evictLocked makes room for one entry: it drops every expired entry and,
// if none had expired, the one that expires first. It is O(n), and runs
// only when the list is full.
func (g *Gater) evictLocked(now time.Time) {
	var (
		oldest      peer.ID
		oldestUntil time.Time
		found       bool
	)
	for p, e := range g.blocked {
		if !e.until.After(now) {
			delete(g.blocked, p)
			continue
		}
		if !found || e.until.Before(oldestUntil) {
			oldest, oldestUntil, found = p, e.until, true
		}
	}
	if len(g.blocked) >= g.maxEntries && found {
		delete(g.blocked, oldest)
	}
}

// Unblock lets p in again before its back-off ends.
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.blocked, p)
}

// Blocked reports whether p is currently kept out.
func (g *Gater) Blocked(p peer.ID) bool {
	_, _, ok := g.BlockedFor(p)
	return ok
}

// BlockedFor reports whether p is kept out, until when, and why.
func (g *Gater) BlockedFor(p peer.ID) (until time.Time, reason string, blocked bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.blocked[p]
	if !ok {
		return time.Time{}, "", false
	}
	if !e.until.After(now) {
		delete(g.blocked, p)
		return time.Time{}, "", false
	}
	return e.until, e.reason, true
}

// Len is the number of peers currently kept out.
func (g *Gater) Len() int {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, e := range g.blocked {
		if e.until.After(now) {
			n++
		}
	}
	return n
}

// InterceptPeerDial refuses to dial a blocked peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return !g.Blocked(p) }

// InterceptAddrDial allows every address: the peer was checked by
// InterceptPeerDial.
func (g *Gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept allows every inbound connection: the remote peer ID is not
// known before the security handshake.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a connection, in either direction, once the
// security handshake has proven that it is with a blocked peer.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.Blocked(p)
}

// InterceptUpgraded allows every connection that was secured.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
