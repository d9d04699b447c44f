package tree

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ID names one tree: the blocks of Channel published by Root.
type ID struct {
	Channel string
	Root    peer.ID
}

// Machine holds every tree of every channel of one node. It is not safe for concurrent use: the
// node calls one method at a time and drains the outputs with [Machine.Ready].
type Machine struct {
	cfg      Config
	self     peer.ID
	rng      *rand.Rand
	channels map[string]*channel
	rtt      map[peer.ID]time.Duration
	// lags are the last lagSamples times a missing block took to arrive by itself, on a link and
	// from a peer not grafted for it (how far payloads trail the IHAVEs that announce them), in a
	// ring at lagNext; lag is their median.
	lags    [lagSamples]time.Duration
	lagNext int
	lag     time.Duration
	timers  timerHeap
	missing int // live missing entries over all trees: how many timers are not stale
	// beaconDue is when the next beacon goes, zero while no tree advanced since the last one.
	beaconDue time.Time
	clock     uint64 // LRU clock, advanced on every use of a tree
	out       Ready
	ihaveAt   map[Link]int // index into out.IHaves, so one Ready carries one Announce per link
	graftAt   map[Link]int // index into out.Grafts, likewise
}

// channel is one channel's candidate links and its trees. Every tree's links slice is aligned with
// links: index i of a tree is the relation to links[i].
type channel struct {
	name  string
	links []Candidate
	index map[peer.ID]int
	own   int // own-org links, the n of the initial rule
	trees map[peer.ID]*tree
}

// relation is one end's view of one link in one tree.
type relation struct {
	eager   bool
	grafted time.Time // last GRAFT sent or received on this link, zero if none
	full    time.Time // when the peer last told us it is full (PRUNE full), zero if never
	refused time.Time // when we last refused the peer's GRAFT as full, zero if never
}

type tree struct {
	id      ID
	ch      *channel
	rel     []relation
	missing map[uint64]*missing
	// grafted are blocks received in answer to a graft, recently, with when they went missing and
	// whom they were grafted from: the eager copy that arrives after the answer says how late
	// payloads are (observeLag). At most lagSamples of them.
	grafted []graftedBlock
	high    uint64 // highest number held: received, published or grafted to us
	// parent is the link the last fresh payload came by ("" at the root, or before any): the
	// eager link that is not a child.
	parent  peer.ID
	carried bool // a payload was seen; trees that never carried one are evicted first
	// beaconed is the number the last beacon announced, valid when beaconSent.
	beaconed   uint64
	beaconSent bool
	used       uint64
	dropped    bool
}

// graftedBlock is a block a graft answered.
type graftedBlock struct {
	num   uint64
	since time.Time
	by    []peer.ID // the announcers grafted
}

// missing is a block announced to us and not yet received.
type missing struct {
	num        uint64
	announcers []peer.ID // the first certain of them announced num; the rest hold later numbers
	certain    int
	tries      int
	deadline   time.Time
	since      time.Time // when it became missing
}

// New returns a machine for self with no links until [Machine.SetView]. rng draws the jitter of
// the missing-block timers; it is used only during calls and must not be nil.
func New(cfg Config, self peer.ID, rng *rand.Rand) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if self == "" {
		return nil, errors.New("tree: self must not be empty")
	}
	if rng == nil {
		return nil, errors.New("tree: rng must not be nil")
	}
	return &Machine{
		cfg:      cfg,
		self:     self,
		rng:      rng,
		channels: map[string]*channel{},
		rtt:      map[peer.ID]time.Duration{},
		ihaveAt:  map[Link]int{},
		graftAt:  map[Link]int{},
	}, nil
}

// SetView recomputes every channel's candidate links from v (see [Candidates]). Relations of links
// that remain are kept; new links get the initial rule; vanished links, channels self left, and
// the RTTs of peers no longer linked are forgotten. v.Self.ID must be the machine's self.
func (m *Machine) SetView(v routing.View) {
	next := make(map[string]*channel, len(v.ChannelOrgs))
	linked := map[peer.ID]bool{}
	for name := range v.ChannelOrgs {
		cands := Candidates(v, name, m.cfg.Doors)
		if len(cands) == 0 {
			continue
		}
		ch := &channel{name: name, links: cands, index: make(map[peer.ID]int, len(cands)), trees: map[peer.ID]*tree{}}
		for i, c := range cands {
			ch.index[c.ID] = i
			linked[c.ID] = true
			if !c.CrossOrg {
				ch.own++
			}
		}
		if old := m.channels[name]; old != nil {
			for root, t := range old.trees {
				rel := make([]relation, len(cands))
				for i, c := range cands {
					if j, ok := old.index[c.ID]; ok {
						rel[i] = t.rel[j]
					} else {
						rel[i] = relation{eager: m.initial(ch, t.id, c)}
					}
				}
				t.ch, t.rel = ch, rel
				ch.trees[root] = t
			}
		}
		next[name] = ch
	}
	for name, old := range m.channels {
		if next[name] == nil {
			for _, t := range old.trees {
				m.drop(t)
			}
		}
	}
	m.channels = next
	for p := range m.rtt {
		if !linked[p] {
			delete(m.rtt, p)
		}
	}
}

// Publish sends block num of a tree rooted at self to every link: payload to the eager ones, IHAVE
// to the lazy ones. It is ignored for a tree rooted elsewhere.
func (m *Machine) Publish(id ID, num uint64, now time.Time) {
	if id.Root != m.self {
		return
	}
	t := m.tree(id, true)
	if t == nil {
		return
	}
	m.hold(t, num, now)
	m.forward(t, num, "", now)
}

// Payload handles a verified block that arrived from `from`, pushed or pulled; fresh reports
// whether the node's ledger lacked it. A fresh block is forwarded along the tree, and a fresh
// block pushed on a link held lazy makes it eager (the sender holds it eager, or it answers our
// GRAFT). A fresh block more than one above the tree's highest reveals a gap: the numbers between
// (at most MaxIHave of them, the highest) become missing with `from` as announcer, since a payload
// lost on an eager link is announced by nobody. Any payload from a link also adds its sender as an
// announcer of the missing numbers just below it. A duplicate prunes
// its link, unless the link was grafted within PruneGuard, the block is more than PruneWindow
// below the tree's highest, or the link is the last eager one. Pass an empty `from` for a block
// obtained by pull, so that it does not count as a push on a link.
func (m *Machine) Payload(from peer.ID, id ID, num uint64, fresh bool, now time.Time) {
	if from == m.self || id.Root == m.self {
		return
	}
	t := m.tree(id, true)
	if t == nil {
		return
	}
	old, carried := t.high, t.carried
	i, linked := t.ch.index[from]
	if linked {
		m.observeLag(t, num, from, fresh, now)
	}
	m.hold(t, num, now)
	if linked && len(t.missing) > 0 {
		for n := num - min(num, uint64(m.cfg.MaxIHave)); n < num; n++ {
			if _, ok := t.missing[n]; ok {
				m.want(t, n, from, false, now)
			}
		}
	}
	if fresh {
		if linked {
			t.rel[i].eager = true
			t.parent = from
			if carried && num > old+1 {
				t.high = old
				m.gap(t, num, from, now)
				t.high = num
				m.compactTimers()
			}
		}
		m.forward(t, num, from, now)
		return
	}
	if !linked {
		return
	}
	r := &t.rel[i]
	switch {
	case now.Sub(r.grafted) < m.cfg.PruneGuard && !r.grafted.IsZero():
		// The answer to our GRAFT, outrun by another copy: the link is eager as the graft meant.
		r.eager = true
	case old >= m.cfg.PruneWindow && num <= old-m.cfg.PruneWindow:
	case r.eager && t.eagerCount() == 1:
	default:
		// A duplicate on a lazy link also prunes: the sender holds the link eager.
		r.eager = false
		m.out.Prunes = append(m.out.Prunes, Link{To: from, ID: id})
	}
}

// IHave handles an announcement from `from` of nums, the numbers the node lacks (it filters with
// its ledger). Each missing number gets one entry and one timer; at most MaxIHave numbers are read.
// The numbers between the tree's highest and the highest announced are taken as missing too (see
// [Machine.Payload]).
func (m *Machine) IHave(from peer.ID, id ID, nums []uint64, now time.Time) {
	if id.Root == m.self {
		return
	}
	if !m.linkedIn(id.Channel, from) {
		return
	}
	t := m.tree(id, true)
	nums = nums[:min(len(nums), m.cfg.MaxIHave)]
	if i := t.ch.index[from]; from == id.Root && len(nums) > 0 && t.rel[i].eager {
		// The root announces to us a block we lack: it holds our link lazy (or the payload was
		// lost, and the root's next push makes the link eager again). The root receives no
		// pushes, so a PRUNE of its that was lost is repaired here or never.
		t.rel[i].eager = false
	}
	var top uint64
	for _, n := range nums {
		m.want(t, n, from, true, now)
		top = max(top, n)
	}
	if len(nums) > 0 {
		m.gap(t, top, from, now)
	}
	m.compactTimers()
}

// Graft handles a GRAFT from `from` asking for nums: the link becomes eager on our side and one
// payload send per number (at most MaxIHave) is output; the node sends those it holds. A GRAFT from
// a peer that is not a candidate link is ignored. With Config.MaxEager own-org children already,
// an own-org GRAFT is refused: nothing is sent but a PRUNE marked full, and the grafter grafts its next
// announcer at once. A second GRAFT from the same peer within PruneGuard of a refusal is taken
// over the cap: the grafter found nobody else.
func (m *Machine) Graft(from peer.ID, id ID, nums []uint64, now time.Time) {
	i, linked := m.link(id.Channel, from)
	if !linked {
		return
	}
	t := m.tree(id, true)
	r := &t.rel[i]
	if !r.eager && from != id.Root && !t.ch.links[i].CrossOrg && m.cfg.MaxEager > 0 && len(t.children("")) >= m.cfg.MaxEager &&
		(r.refused.IsZero() || now.Sub(r.refused) >= m.cfg.PruneGuard) {
		r.refused = now
		m.out.Prunes = append(m.out.Prunes, Link{To: from, ID: id, Full: true})
		return
	}
	r.eager, r.grafted = true, now
	if from == id.Root {
		return
	}
	for _, n := range nums[:min(len(nums), m.cfg.MaxIHave)] {
		m.out.Payloads = append(m.out.Payloads, Send{To: from, ID: id, Number: n})
	}
}

// Prune handles a PRUNE from `from`: the link becomes lazy on our side. A PRUNE for a tree not
// yet known creates it, so that the initial rule does not undo the sender's decision. A PRUNE
// marked full (the sender has Config.MaxEager children, or refused our GRAFT) puts `from` behind
// the other announcers of this tree's missing blocks for a while, and a missing block grafted
// from it is grafted from its next announcer at once.
func (m *Machine) Prune(from peer.ID, id ID, full bool, now time.Time) {
	i, linked := m.link(id.Channel, from)
	if !linked {
		return
	}
	t := m.tree(id, true)
	t.rel[i].eager = false
	if !full {
		return
	}
	t.rel[i].full = now
	var refire []uint64
	for num, e := range t.missing {
		if e.tries > 0 && e.announcers[(e.tries-1)%len(e.announcers)] == from {
			refire = append(refire, num)
		}
	}
	slices.Sort(refire) // timers due at one instant fire in push order: keep it the map's no longer
	for _, num := range refire {
		e := t.missing[num]
		e.deadline = now
		m.timers.push(timer{at: now, t: t, e: e})
	}
}

// SendFailed handles a payload send to `to` that failed (its queue was full): the block is
// announced to `to` instead, which can graft it. The relation is unchanged: the demotion is for
// that block only, and never a silent loss.
func (m *Machine) SendFailed(to peer.ID, id ID, num uint64, now time.Time) {
	if m.linkedIn(id.Channel, to) {
		m.announce(to, id, num)
	}
}

// ObserveRTT records a round-trip sample of the link to p, smoothed as TCP does (7/8 old, 1/8
// new). Samples of peers that are not currently linked are ignored.
func (m *Machine) ObserveRTT(p peer.ID, rtt time.Duration) {
	if rtt <= 0 || !m.linked(p) {
		return
	}
	if old, ok := m.rtt[p]; ok {
		rtt = (7*old + rtt) / 8
	}
	m.rtt[p] = rtt
}

// Tick fires the timers due at now. A missing-block timer grafts the block's next announcer (the
// first on the first expiry) and waits RetryTimeout for the payload; after graftRounds passes over
// the announcers the entry is given up. The beacon announces each tree's highest number to every
// link, eager ones included.
func (m *Machine) Tick(now time.Time) {
	for len(m.timers) > 0 && !m.timers[0].at.After(now) {
		tm := m.timers.pop()
		if !tm.live() {
			continue
		}
		m.fire(tm.t, tm.e, now)
	}
	if !m.beaconDue.IsZero() && !m.beaconDue.After(now) {
		m.beaconDue = time.Time{}
		m.beacon()
	}
}

// beacon announces the highest number of every tree that advanced since the last beacon to every
// link but the root. A payload lost on an eager link is announced by nobody, and gap detection
// needs a later block: the beacon covers the last block before a pause. Channels and roots go in
// order so that a run is reproducible.
func (m *Machine) beacon() {
	for _, name := range slices.Sorted(maps.Keys(m.channels)) {
		ch := m.channels[name]
		for _, root := range slices.Sorted(maps.Keys(ch.trees)) {
			t := ch.trees[root]
			if !t.carried || (t.beaconSent && t.beaconed >= t.high) {
				continue
			}
			t.beaconed, t.beaconSent = t.high, true
			for _, c := range ch.links {
				if c.ID != root {
					m.announce(c.ID, t.id, t.high)
				}
			}
		}
	}
}

// Ready returns the outputs accumulated since the last call and clears them. Outputs addressed to
// a peer that stopped being a candidate link in the meantime are left out; IHAVEs and GRAFTs are
// split to at most MaxIHave numbers each.
func (m *Machine) Ready() Ready {
	r := m.out
	m.out = Ready{}
	clear(m.ihaveAt)
	clear(m.graftAt)
	r.Payloads = filter(r.Payloads, func(s Send) bool { return m.linkedIn(s.ID.Channel, s.To) })
	r.Prunes = filter(r.Prunes, func(l Link) bool { return m.linkedIn(l.ID.Channel, l.To) })
	r.IHaves = m.split(filter(r.IHaves, func(a Announce) bool { return m.linkedIn(a.ID.Channel, a.To) }))
	grafts := m.split(filter(toAnnounces(r.Grafts), func(a Announce) bool { return m.linkedIn(a.ID.Channel, a.To) }))
	r.Grafts = toRequests(grafts)
	for len(m.timers) > 0 && !m.timers[0].live() {
		m.timers.pop()
	}
	if len(m.timers) > 0 {
		r.NextTick = m.timers[0].at
	}
	if !m.beaconDue.IsZero() && (r.NextTick.IsZero() || m.beaconDue.Before(r.NextTick)) {
		r.NextTick = m.beaconDue
	}
	return r
}

// Eager returns the peers whose link is eager on our side in tree id, in ID order.
func (m *Machine) Eager(id ID) []peer.ID {
	ch := m.channels[id.Channel]
	if ch == nil {
		return nil
	}
	t := ch.trees[id.Root]
	if t == nil {
		return nil
	}
	var out []peer.ID
	for i, r := range t.rel {
		if r.eager {
			out = append(out, ch.links[i].ID)
		}
	}
	return out
}

// Stats counts the state the machine holds, for bounds checks and metrics.
type Stats struct {
	Channels   int
	Links      int // candidate links over all channels
	Trees      int
	Missing    int // missing-block entries
	Announcers int // announcers over all missing entries
	Timers     int // pending timer entries, stale ones included
	RTTs       int
}

// Stats returns the current counts.
func (m *Machine) Stats() Stats {
	s := Stats{Channels: len(m.channels), Timers: len(m.timers), RTTs: len(m.rtt)}
	for _, ch := range m.channels {
		s.Links += len(ch.links)
		s.Trees += len(ch.trees)
		for _, t := range ch.trees {
			s.Missing += len(t.missing)
			for _, e := range t.missing {
				s.Announcers += len(e.announcers)
			}
		}
	}
	return s
}

// tree returns the tree id, creating it when create is set and its channel has links. Beyond
// MaxTrees the least recently used tree is dropped, preferring trees that never carried a payload.
func (m *Machine) tree(id ID, create bool) *tree {
	ch := m.channels[id.Channel]
	if ch == nil {
		return nil
	}
	m.clock++
	if t := ch.trees[id.Root]; t != nil {
		t.used = m.clock
		return t
	}
	if !create {
		return nil
	}
	if len(ch.trees) >= m.cfg.MaxTrees {
		var victim *tree
		for _, t := range ch.trees {
			if victim == nil || (!t.carried && victim.carried) || (t.carried == victim.carried && t.used < victim.used) {
				victim = t
			}
		}
		delete(ch.trees, victim.id.Root)
		m.drop(victim)
	}
	t := &tree{id: id, ch: ch, rel: make([]relation, len(ch.links)), missing: map[uint64]*missing{}, used: m.clock}
	for i, c := range ch.links {
		t.rel[i].eager = m.initial(ch, id, c)
	}
	ch.trees[id.Root] = t
	return t
}

func (m *Machine) initial(ch *channel, id ID, c Candidate) bool {
	return initiallyEager(id, m.self, c.ID, c.CrossOrg, m.cfg.InitialEager, ch.own)
}

// drop forgets a tree; its timers go stale.
func (m *Machine) drop(t *tree) {
	t.dropped = true
	m.missing -= len(t.missing)
	t.missing = nil
}
