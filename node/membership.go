package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// member is what this peer knows of another: its verified identity and its
// latest alive message.
type member struct {
	id       peer.ID
	org      string
	external bool
	addrs    []ma.Multiaddr // advertised to every org (external peers only)
	internal []ma.Multiaddr // from the Secret: known only inside the member's org
	inc, seq uint64
	alive    *wire.Envelope // the latest alive, as it may be forwarded
	lastSeen time.Time      // when a newer alive was last accepted
	notAfter time.Time      // certificate expiry
	dead     bool
}

// newer reports whether the (incarnation, sequence) pair (inc, seq) supersedes
// (inc0, seq0): a new incarnation always wins, within one incarnation the
// higher sequence wins, and an equal pair is a replay.
func newer(inc, seq, inc0, seq0 uint64) bool {
	return inc > inc0 || inc == inc0 && seq > seq0
}

// membership is the table of verified members, keyed by peer ID. It is pure:
// the node serialises access, verifies before applying, and passes the time.
type membership struct {
	members map[peer.ID]*member
}

func newMembership() *membership {
	return &membership{members: make(map[peer.ID]*member)}
}

// stale reports whether an alive (inc, seq) about p is a replay or older than
// what the table holds: the cheap dedup run before any signature check.
func (t *membership) stale(p peer.ID, inc, seq uint64) bool {
	m := t.members[p]
	return m != nil && !newer(inc, seq, m.inc, m.seq)
}

// lacksInternal reports whether the alive (inc, seq) held for p, a member of
// org, came without internal addresses: its first copy reached this peer
// through another org, stripped of its Secret. The same alive carrying a
// Secret is then not a replay but the missing half (completeInternal).
func (t *membership) lacksInternal(p peer.ID, inc, seq uint64, org string) bool {
	m := t.members[p]
	return m != nil && m.org == org && m.inc == inc && m.seq == seq && len(m.internal) == 0
}

// completeInternal adds a's internal addresses, and its envelope with the
// Secret, to the member it repeats, if that member lacked them. It reports
// whether it did.
func (t *membership) completeInternal(a *member) bool {
	old := t.members[a.id]
	if old == nil || old.org != a.org || old.inc != a.inc || old.seq != a.seq || len(old.internal) > 0 || len(a.internal) == 0 {
		return false
	}
	// A copy: a member in the table is never modified, since callers read
	// the one they applied after releasing the lock.
	c := *old
	c.internal, c.alive = a.internal, a.alive
	t.members[a.id] = &c
	return true
}

// apply records a verified alive. It returns whether the alive was new (and
// should be forwarded) and whether the member came back from the dead.
func (t *membership) apply(a *member, now time.Time) (fresh, revived bool) {
	old := t.members[a.id]
	if old != nil && !newer(a.inc, a.seq, old.inc, old.seq) {
		return false, false
	}
	a.lastSeen = now
	if old != nil && len(a.internal) == 0 && a.org == old.org {
		a.internal = old.internal // an alive stripped of its Secret keeps what we knew
	}
	t.members[a.id] = a
	return true, old != nil && old.dead
}

// expire marks dead every live member not heard from within timeout, or whose
// certificate has expired, and returns them.
func (t *membership) expire(now time.Time, timeout time.Duration) []peer.ID {
	var died []peer.ID
	for id, m := range t.members {
		if m.dead {
			continue
		}
		if now.Sub(m.lastSeen) >= timeout || !now.Before(m.notAfter) {
			m.dead = true
			died = append(died, id)
		}
	}
	return died
}

// purgeFactor is how many expiration timeouts a dead member stays known (and
// probed) before it is forgotten, as Fabric's msgExpirationFactor.
const purgeFactor = 20

// purge forgets members dead and silent for purgeFactor × timeout, so the
// table does not grow with every peer that ever came and went.
func (t *membership) purge(now time.Time, timeout time.Duration) []peer.ID {
	var gone []peer.ID
	for id, m := range t.members {
		if m.dead && now.Sub(m.lastSeen) >= purgeFactor*timeout {
			delete(t.members, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// get returns the member p, dead or alive, or nil.
func (t *membership) get(p peer.ID) *member { return t.members[p] }

// live reports whether p is a known, live member.
func (t *membership) live(p peer.ID) bool {
	m := t.members[p]
	return m != nil && !m.dead
}
