package tree

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Ready is what the machine asks the node to do, accumulated since the last [Machine.Ready].
type Ready struct {
	// Payloads are sent at once, without the emitter's wait: they are the tree.
	Payloads []Send
	// IHaves go through the emitter, batched with other control traffic.
	IHaves []Announce
	// Grafts ask the addressee for the numbers' payloads and make the link eager on its side.
	Grafts []Request
	// Prunes make the link lazy on the addressee's side.
	Prunes []Link
	// NextTick is when [Machine.Tick] is next due, zero if no timer is pending.
	NextTick time.Time
}

// Send is one payload to send: block Number of tree ID, to To.
type Send struct {
	To     peer.ID
	ID     ID
	Number uint64
}

// Announce is one IHAVE: To may graft these numbers of tree ID.
type Announce struct {
	To      peer.ID
	ID      ID
	Numbers []uint64
}

// Request is one GRAFT: To is asked for these numbers of tree ID.
type Request struct {
	To      peer.ID
	ID      ID
	Numbers []uint64
}

// Link is one link of one tree, the addressee of a PRUNE.
type Link struct {
	To peer.ID
	ID ID
	// Full marks a PRUNE sent because the sender has as many children in the tree as
	// Config.MaxEager allows: the addressee grafts other announcers first (see [Machine.Prune]).
	Full bool
}

// Empty reports whether r asks for nothing (NextTick aside).
func (r Ready) Empty() bool {
	return len(r.Payloads) == 0 && len(r.IHaves) == 0 && len(r.Grafts) == 0 && len(r.Prunes) == 0
}

// split cuts announcements longer than MaxIHave into consecutive pieces.
func (m *Machine) split(as []Announce) []Announce {
	n := m.cfg.MaxIHave
	long := false
	for _, a := range as {
		if len(a.Numbers) > n {
			long = true
			break
		}
	}
	if !long {
		return as
	}
	var out []Announce
	for _, a := range as {
		for len(a.Numbers) > n {
			out = append(out, Announce{To: a.To, ID: a.ID, Numbers: a.Numbers[:n:n]})
			a.Numbers = a.Numbers[n:]
		}
		out = append(out, a)
	}
	return out
}

func toAnnounces(rs []Request) []Announce {
	if rs == nil {
		return nil
	}
	as := make([]Announce, len(rs))
	for i, r := range rs {
		as[i] = Announce(r)
	}
	return as
}

func toRequests(as []Announce) []Request {
	if as == nil {
		return nil
	}
	rs := make([]Request, len(as))
	for i, a := range as {
		rs[i] = Request(a)
	}
	return rs
}

// filter keeps the elements keep accepts, in place.
func filter[T any](xs []T, keep func(T) bool) []T {
	out := xs[:0]
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
