package tree

import (
	"cmp"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Forwarding and repair: holding a block, wanting a missing one, detecting
// gaps, grafting announcers in turn, and the timers that drive it.

// hold records that the node holds num: its missing entry and timer go.
func (m *Machine) hold(t *tree, num uint64, now time.Time) {
	if !t.carried || num > t.high {
		t.high = num
		if m.cfg.Beacon > 0 && m.beaconDue.IsZero() {
			m.beaconDue = now.Add(m.cfg.Beacon)
		}
	}
	t.carried = true
	if _, ok := t.missing[num]; ok {
		delete(t.missing, num)
		m.missing--
	}
}

// want records that from announced num (certain) or holds a later number (a guess): a new missing
// entry with its timer, or one more announcer. Certain announcers are grafted before guesses, and
// one replaces the last guess when the list is full.
func (m *Machine) want(t *tree, num uint64, from peer.ID, certain bool, now time.Time) {
	e := t.missing[num]
	if e == nil {
		if len(t.missing) >= m.cfg.MaxMissing {
			return
		}
		e = &missing{num: num, announcers: []peer.ID{from}, since: now, deadline: now.Add(m.jitter(m.firstWait(from)))}
		if certain {
			e.certain = 1
		}
		t.missing[num] = e
		m.missing++
		m.timers.push(timer{at: e.deadline, t: t, e: e})
		return
	}
	at := slices.Index(e.announcers, from)
	switch {
	case at >= 0 && (!certain || at < e.certain):
	case at >= 0:
		// A guess confirmed: move it to the end of the certain ones.
		e.announcers = slices.Insert(slices.Delete(e.announcers, at, at+1), e.certain, from)
		e.certain++
	case !certain && len(e.announcers) < m.cfg.MaxAnnouncers:
		e.announcers = append(e.announcers, from)
	case certain && len(e.announcers) < m.cfg.MaxAnnouncers:
		e.announcers = slices.Insert(e.announcers, e.certain, from)
		e.certain++
	case certain && e.certain < len(e.announcers):
		e.announcers = slices.Insert(e.announcers[:len(e.announcers)-1], e.certain, from)
		e.certain++
	}
}

// gap marks the numbers between the tree's highest and top as announced by from, which holds top
// and so most likely those below it. Only a tree that has carried a payload has a highest: a
// restarted node's ledger may hold what its new machine never saw.
func (m *Machine) gap(t *tree, top uint64, from peer.ID, now time.Time) {
	if !t.carried || top <= t.high+1 {
		return
	}
	lo := max(t.high+1, top-min(top, uint64(m.cfg.MaxIHave)))
	for n := lo; n < top; n++ {
		m.want(t, n, from, false, now)
	}
}

// forward sends num on every link of t except `from` and the root: payload on eager links, IHAVE
// on lazy ones. Children beyond Config.MaxEager are pruned first (see trim).
func (m *Machine) forward(t *tree, num uint64, from peer.ID, now time.Time) {
	m.trim(t, from, now)
	for i, c := range t.ch.links {
		if c.ID == from || c.ID == t.id.Root {
			continue
		}
		if t.rel[i].eager {
			m.out.Payloads = append(m.out.Payloads, Send{To: c.ID, ID: t.id, Number: num})
		} else {
			m.announce(c.ID, t.id, num)
		}
	}
}

func (m *Machine) announce(to peer.ID, id ID, num uint64) {
	l := Link{To: to, ID: id}
	if j, ok := m.ihaveAt[l]; ok {
		m.out.IHaves[j].Numbers = append(m.out.IHaves[j].Numbers, num)
		return
	}
	m.ihaveAt[l] = len(m.out.IHaves)
	m.out.IHaves = append(m.out.IHaves, Announce{To: to, ID: id, Numbers: []uint64{num}})
}

func (m *Machine) fire(t *tree, e *missing, now time.Time) {
	if e.tries == 0 {
		m.fullLast(t, e, now)
	}
	for e.tries < graftRounds*len(e.announcers) {
		p := e.announcers[e.tries%len(e.announcers)]
		e.tries++
		i, linked := t.ch.index[p]
		if !linked {
			continue
		}
		// The link becomes eager on our side when the answer arrives (a fresh payload on a lazy
		// link), not now: a lost GRAFT then leaves both ends lazy rather than us eager toward a
		// peer that never pushes, which nothing repairs when that peer is the root.
		t.rel[i].grafted = now
		l := Link{To: p, ID: t.id}
		if j, ok := m.graftAt[l]; ok {
			m.out.Grafts[j].Numbers = append(m.out.Grafts[j].Numbers, e.num)
		} else {
			m.graftAt[l] = len(m.out.Grafts)
			m.out.Grafts = append(m.out.Grafts, Request{To: p, ID: t.id, Numbers: []uint64{e.num}})
		}
		e.deadline = now.Add(m.wait(m.cfg.RetryTimeout, p))
		m.timers.push(timer{at: e.deadline, t: t, e: e})
		return
	}
	delete(t.missing, e.num)
	m.missing--
}

// fullLast moves the announcers of e that said they are full within fullHold behind the others,
// among the certain ones and among the guesses alike: a certain announcer still comes before a
// guess, since it holds the block, and a full peer takes a graft it refused within PruneGuard.
func (m *Machine) fullLast(t *tree, e *missing, now time.Time) {
	isFull := func(p peer.ID) bool {
		i, ok := t.ch.index[p]
		if !ok {
			return false
		}
		f := t.rel[i].full
		return !f.IsZero() && now.Sub(f) < fullHold
	}
	byFull := func(a, b peer.ID) int {
		fa, fb := isFull(a), isFull(b)
		switch {
		case fa == fb:
			return 0
		case fb:
			return -1
		}
		return 1
	}
	slices.SortStableFunc(e.announcers[:e.certain], byFull)
	slices.SortStableFunc(e.announcers[e.certain:], byFull)
}

// wait is max(floor, RTTFactor × the observed RTT of the link to p).
func (m *Machine) wait(floor time.Duration, p peer.ID) time.Duration {
	return max(floor, RTTFactor*m.rtt[p])
}

// firstWait is how long a block announced by p is awaited before p is grafted: wait with
// GraftTimeout, and at least LagFactor × the median lag of payloads behind their announcements,
// that part at most MaxLagWait. Once a graft is out, its answer is awaited by the link's RTT
// alone (RetryTimeout).
func (m *Machine) firstWait(p peer.ID) time.Duration {
	return max(m.wait(m.cfg.GraftTimeout, p), min(LagFactor*m.lag, MaxLagWait))
}

// lagSamples is how many lags the median is over: enough that the repairs of a lossy spell
// (blocks that came late from elsewhere, after grafts downstream) do not move it while most
// arrivals are on time.
const lagSamples = 16

// observeLag learns from num arriving from `from`, a link: if num was missing and `from` was not
// grafted for it, the payload came by itself, late, and how late says how long a graft should
// wait. So does a copy that comes after a graft's answer, from another peer: the graft was
// early. A graft answer says nothing about that, and a block that never comes by itself (lost)
// gives no sample, so the wait cannot feed on its own timeouts.
func (m *Machine) observeLag(t *tree, num uint64, from peer.ID, fresh bool, now time.Time) {
	var since time.Time
	if e, ok := t.missing[num]; ok && fresh {
		by := e.announcers[:min(e.tries, len(e.announcers))]
		if slices.Contains(by, from) {
			if len(t.grafted) == lagSamples {
				t.grafted = slices.Delete(t.grafted, 0, 1)
			}
			t.grafted = append(t.grafted, graftedBlock{num: num, since: e.since, by: slices.Clone(by)})
			return
		}
		since = e.since
	} else if !fresh {
		i := slices.IndexFunc(t.grafted, func(g graftedBlock) bool { return g.num == num })
		if i < 0 || slices.Contains(t.grafted[i].by, from) {
			return
		}
		since = t.grafted[i].since
		t.grafted = slices.Delete(t.grafted, i, i+1)
	} else {
		return
	}
	s := now.Sub(since)
	if s <= 0 {
		return
	}
	m.lags[m.lagNext%lagSamples] = s
	m.lagNext++
	n := min(m.lagNext, lagSamples)
	if n < lagSamples/4 {
		return // too few to say what is usual
	}
	sorted := m.lags
	slices.Sort(sorted[:n])
	m.lag = sorted[n*3/4]
}

// jitter adds up to an eighth of d.
func (m *Machine) jitter(d time.Duration) time.Duration {
	if d < 8 {
		return d
	}
	return d + time.Duration(m.rng.Int64N(int64(d/8)))
}

// compactTimers rebuilds the timer heap when stale entries (of blocks that arrived, trees that
// were dropped) outnumber live ones, so the heap stays proportional to the missing entries.
func (m *Machine) compactTimers() {
	if len(m.timers) <= 2*m.missing+64 {
		return
	}
	live := m.timers[:0]
	for _, tm := range m.timers {
		if tm.live() {
			live = append(live, tm)
		}
	}
	clear(m.timers[len(live):])
	m.timers = live
	m.timers.init()
}

func (m *Machine) linked(p peer.ID) bool {
	for _, ch := range m.channels {
		if _, ok := ch.index[p]; ok {
			return true
		}
	}
	return false
}

// linkedIn reports whether p is a candidate link of channel.
func (m *Machine) linkedIn(channel string, p peer.ID) bool {
	_, ok := m.link(channel, p)
	return ok
}

// link returns p's index among channel's candidate links, if it is one.
func (m *Machine) link(channel string, p peer.ID) (int, bool) {
	ch := m.channels[channel]
	if ch == nil {
		return 0, false
	}
	i, ok := ch.index[p]
	return i, ok
}

// children returns the indices of t's own-org eager links other than parent and the root: the
// links MaxEager caps. parent "" means t's own parent.
func (t *tree) children(parent peer.ID) []int {
	if parent == "" {
		parent = t.parent
	}
	var out []int
	for i, r := range t.rel {
		if l := t.ch.links[i]; r.eager && !l.CrossOrg && l.ID != parent && l.ID != t.id.Root {
			out = append(out, i)
		}
	}
	return out
}

// trim prunes, marked full, the own-org children of t beyond Config.MaxEager (doors are not
// counted: Config.Doors bounds them already, and a door refused costs its org a second
// cross-org hop). It keeps first the links grafted within PruneGuard (the grafter just chose
// us), then the others nearest first.
func (m *Machine) trim(t *tree, parent peer.ID, now time.Time) {
	if m.cfg.MaxEager == 0 || t.eagerCount() <= m.cfg.MaxEager {
		return // the common case, on every payload: no children to list
	}
	kids := t.children(parent)
	if len(kids) <= m.cfg.MaxEager {
		return
	}
	rtt := func(i int) time.Duration {
		if d, ok := m.rtt[t.ch.links[i].ID]; ok {
			return d
		}
		return time.Duration(1<<63 - 1)
	}
	recent := func(i int) bool {
		g := t.rel[i].grafted
		return !g.IsZero() && now.Sub(g) < m.cfg.PruneGuard
	}
	slices.SortStableFunc(kids, func(a, b int) int {
		if ra, rb := recent(a), recent(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(rtt(a), rtt(b))
	})
	for _, i := range kids[m.cfg.MaxEager:] {
		t.rel[i].eager = false
		m.out.Prunes = append(m.out.Prunes, Link{To: t.ch.links[i].ID, ID: t.id, Full: true})
	}
}

func (t *tree) eagerCount() int {
	n := 0
	for _, r := range t.rel {
		if r.eager {
			n++
		}
	}
	return n
}
