package routing

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// rule is the routing rule a message falls under; the values follow the order in which the rules
// are listed in the package documentation.
type rule uint8

const (
	ruleDrop      rule = iota // unknown kind: not routed
	ruleBlock                 // rules 1 and 2: per-channel samples
	ruleStateInfo             // rule 3: per message
	ruleOrg                   // rule 4: one own-org sample for all of them
	ruleAlive                 // rule 5: per message
)

// classify picks the rule for m. Every block is routed by channel. Org-only StateInfo, and the
// alive messages of our org that are org-only or whose origin is not external, share the own-org
// sample. A foreign alive or StateInfo is always routed per message, even when org-only, because it
// must never reach a non-external peer, which the shared own-org sample does not respect.
func classify[P any](m *Message[P], v *View) rule {
	self := &v.Self
	switch m.Kind {
	case KindBlock:
		return ruleBlock
	case KindStateInfo:
		if !v.OrgInChannel(self.Org, m.Channel) {
			return ruleDrop // no one may learn it from us (MayLearnStateInfo)
		}
		if m.OrgOnly && m.OriginOrg == self.Org {
			return ruleOrg
		}
		return ruleStateInfo
	case KindAlive:
		if m.OriginOrg == self.Org && (m.OrgOnly || !m.OriginExternal) && !m.All {
			return ruleOrg
		}
		return ruleAlive
	default:
		return ruleDrop
	}
}

// Plan decides where each message of an emitter batch goes and returns one Send per receiving peer,
// ordered by peer ID, each with its messages in batch order. It returns nil when nothing is to be
// sent. The rules are listed in the package documentation. Messages of an unknown Kind are dropped.
//
// Plan is pure: it reads batch and v without modifying or retaining them. rng belongs to the
// caller and must not be nil: a *rand.Rand is not safe for concurrent use, and Plan uses it only
// during the call. With the same arguments and the same rng state Plan returns the same plan.
func Plan[P any](cfg Config, batch []Message[P], v View, rng *rand.Rand) []Send[P] {
	if len(batch) == 0 {
		return nil
	}
	p := newPlanner(cfg, batch, &v, rng)
	idx := make([]int32, 2*len(batch))
	blocks, org := idx[:0:len(batch)], idx[len(batch):len(batch)]
	for i := range batch {
		switch classify(&batch[i], &v) {
		case ruleBlock:
			blocks = append(blocks, int32(i))
		case ruleOrg:
			org = append(org, int32(i))
		}
	}
	p.blocks(blocks)
	p.each(ruleStateInfo, p.stateInfo)
	p.shared(cfg.PropagatePeerNum, p.ownOrg, org)
	p.each(ruleAlive, p.alive)
	return p.sends()
}

// planner is the scratch state of one Plan call.
type planner[P any] struct {
	cfg     Config
	batch   []Message[P]
	view    *View // the audience predicates are asked of it
	members []Member
	self    Member
	orgs    map[string][]string // the view's ChannelOrgs
	rng     *rand.Rand

	// every indexes all members. draw permutes it in place, which leaves its contents unchanged.
	every []int32

	pairs   []pair    // (receiver, message) assignments, merged into Sends at the end
	runs    []run     // scratch for sends: the pairs of each receiver
	picks   []int32   // scratch for one draw
	senders []peer.ID // scratch: the distinct senders of a shared group
}

// pair assigns a message (an index into the batch) to a member (an index into the view's members),
// packed as member<<32 | msg so that sorting pairs as integers orders them by member, then by
// message.
type pair uint64

func newPair(member, msg int32) pair { return pair(uint64(member)<<32 | uint64(uint32(msg))) }
func (a pair) member() int32         { return int32(a >> 32) }
func (a pair) msg() int32            { return int32(uint32(a)) }

// run is the range of sorted pairs that go to one member.
type run struct{ start, end int32 }

func newPlanner[P any](cfg Config, batch []Message[P], v *View, rng *rand.Rand) planner[P] {
	p := planner[P]{cfg: cfg, batch: batch, view: v, members: v.Members, self: v.Self, orgs: v.ChannelOrgs, rng: rng}
	// No pass over the members beyond numbering them: every check, even the org, is made by draw
	// on the candidates it visits, which for k of a few peers is far fewer than all of them.
	p.every = make([]int32, len(v.Members))
	for i := range p.every {
		p.every[i] = int32(i)
	}
	k := max(cfg.PropagatePeerNum, cfg.CrossOrgPeerNum, 0)
	p.pairs = make([]pair, 0, 2*len(batch)*k) // room for cross-org samples too
	p.runs = make([]run, 0, len(batch)*k)
	p.picks = make([]int32, 0, k)
	p.senders = make([]peer.ID, 0, len(batch))
	return p
}

// ownOrg admits the members of our org.
func (p *planner[P]) ownOrg(m *Member) bool { return m.Org == p.self.Org }

// subject is the member a StateInfo or alive message is about, as the audience predicates see it.
func subject[P any](msg *Message[P]) Member {
	return Member{ID: msg.Origin, Org: msg.OriginOrg, External: msg.OriginExternal, Alive: true}
}

// blocks routes all blocks of the batch, one channel at a time in first-seen order (rules 1 and 2).
// It reorders group in place.
func (p *planner[P]) blocks(group []int32) {
	for len(group) > 0 {
		ch := p.batch[group[0]].Channel
		n := 0 // group[:n] collects this channel's blocks, the rest move behind them in order
		for i, b := range group {
			if p.batch[b].Channel == ch {
				copy(group[n+1:i+1], group[n:i])
				group[n] = b
				n++
			}
		}
		p.channelBlocks(ch, group[:n])
		group = group[n:]
	}
}

// channelBlocks routes the blocks of one channel: to one sample of our org's eligible peers, and,
// when we are external, those marked CrossOrg to one sample of the external eligible peers of each
// other org of the channel. It reorders group in place.
func (p *planner[P]) channelBlocks(ch string, group []int32) {
	orgs := p.orgs[ch]
	if slices.Contains(orgs, p.self.Org) {
		p.shared(p.cfg.PropagatePeerNum, func(m *Member) bool { return m.Org == p.self.Org && p.view.BlockPeer(m, ch) }, group)
	}
	if !p.self.External || p.cfg.CrossOrgPeerNum <= 0 {
		return
	}
	n := 0
	for _, b := range group {
		if m := &p.batch[b]; m.CrossOrg && !m.OrgOnly {
			group[n] = b
			n++
		}
	}
	if n == 0 {
		return
	}
	cross := group[:n]
	for i, org := range orgs {
		if org == p.self.Org || slices.Index(orgs, org) < i { // our own org, or listed twice
			continue
		}
		p.shared(p.cfg.CrossOrgPeerNum, func(m *Member) bool {
			return m.Org == org && p.view.BlockPeer(m, ch)
		}, cross)
	}
}

// stateInfo routes one StateInfo (rule 3): within our org, or, when its originator is external, to
// any peer of an org in the channel that we may talk to.
func (p *planner[P]) stateInfo(i int32) {
	msg := &p.batch[i]
	about := subject(msg)
	switch {
	case msg.OriginOrg != p.self.Org:
		// A foreign peer's StateInfo, relayed: like a foreign alive, only to
		// external peers (the only ones that know foreign peers) of our org or
		// of its origin's, never to a third org.
		p.one(i, func(m *Member) bool {
			return (m.Org == p.self.Org || !msg.OrgOnly) && p.view.MayLearnStateInfo(m, &about, msg.Channel)
		})
	default:
		p.one(i, func(m *Member) bool { return p.view.MayLearnStateInfo(m, &about, msg.Channel) })
	}
}

// alive routes one alive message that is not in the own-org sample (rule 5). An alive of our org
// may go to anyone; a foreign one only to external peers of our org or of its origin's org, never
// to a third org, and only to our org when it is org-only. An alive whose origin org is unknown
// goes nowhere.
func (p *planner[P]) alive(i int32) {
	msg := &p.batch[i]
	if msg.OriginOrg == "" {
		return
	}
	about := subject(msg)
	p.one(i, func(m *Member) bool {
		return (m.Org == p.self.Org || !msg.OrgOnly) && p.view.MayLearn(m, &about)
	})
}

// each calls route for every message of the batch that falls under r, in batch order.
func (p *planner[P]) each(r rule, route func(i int32)) {
	for i := range p.batch {
		if classify(&p.batch[i], p.view) == r {
			route(int32(i))
		}
	}
}

// one sends message i to its own sample of PropagatePeerNum peers that keep admits (all of them
// when the message says All), leaving out the peer it came from.
func (p *planner[P]) one(i int32, keep func(*Member) bool) {
	msg := &p.batch[i]
	k := p.cfg.PropagatePeerNum
	if msg.All && msg.Kind == KindAlive {
		k = len(p.members)
	}
	p.picks = draw(p.picks[:0], k, p.every, p.members, p.self.ID, func(m *Member) bool {
		return keep(m) && !msg.holder(m.ID)
	}, p.rng)
	p.assign(p.picks, i)
}

// shared sends every message of group to one common sample of k peers that keep admits, and
// still never sends a message to one of its holders (the peer it came from, its origin).
//
// The common sample is drawn with every holder of the group set aside, so it is valid for all of
// the group's messages. Setting the holders aside can shrink the pool below k; then, and only then,
// each message is topped up from the holders other than its own, to exactly min(k, audience) peers.
// Messages with the same holders share their top-up. Senders are thereby chosen last, which costs
// nothing: a peer that sent us blocks of this channel already has some of them.
func (p *planner[P]) shared(k int, keep func(*Member) bool, group []int32) {
	if k <= 0 || len(group) == 0 {
		return
	}
	senders := p.senders[:0] // every holder (sender or origin) of a message of the group
	for _, i := range group {
		for _, h := range [2]peer.ID{p.batch[i].From, p.batch[i].Origin} {
			if h != "" && !slices.Contains(senders, h) {
				senders = append(senders, h)
			}
		}
	}
	p.senders = senders
	p.picks = draw(p.picks[:0], k, p.every, p.members, p.self.ID, func(m *Member) bool {
		return keep(m) && !slices.Contains(senders, m.ID)
	}, p.rng)
	for _, i := range group {
		p.assign(p.picks, i)
	}
	short := k - len(p.picks)
	if short == 0 || len(senders) == 0 {
		return
	}
	sameHolders := func(a, b int32) bool {
		return p.batch[a].From == p.batch[b].From && p.batch[a].Origin == p.batch[b].Origin
	}
	for gi, i := range group {
		if slices.ContainsFunc(group[:gi], func(j int32) bool { return sameHolders(i, j) }) {
			continue // messages with the same holders were topped up already
		}
		msg := &p.batch[i]
		p.picks = draw(p.picks[:0], short, p.every, p.members, p.self.ID, func(m *Member) bool {
			return keep(m) && !msg.holder(m.ID) && slices.Contains(senders, m.ID)
		}, p.rng)
		for _, j := range group[gi:] {
			if sameHolders(i, j) {
				p.assign(p.picks, j)
			}
		}
	}
}

func (p *planner[P]) assign(members []int32, msg int32) {
	for _, m := range members {
		p.pairs = append(p.pairs, newPair(m, msg))
	}
}

// sends merges the assignments into one Send per peer, ordered by peer ID, with messages in batch
// order and each message at most once per peer.
//
// Pairs are grouped by member index with integer compares; only the groups, one per receiver, are
// ordered by ID. A peer listed twice in the view (two indices, one ID) still gets a single Send.
func (p *planner[P]) sends() []Send[P] {
	if len(p.pairs) == 0 {
		return nil
	}
	slices.Sort(p.pairs)
	pairs := slices.Compact(p.pairs)

	runs := p.runs[:0] // runs[r] = pairs[start:end] of one member
	for start := 0; start < len(pairs); {
		end := start + 1
		for end < len(pairs) && pairs[end].member() == pairs[start].member() {
			end++
		}
		runs = append(runs, run{int32(start), int32(end)})
		start = end
	}
	id := func(r run) peer.ID { return p.members[pairs[r.start].member()].ID }
	slices.SortFunc(runs, func(a, b run) int { return strings.Compare(string(id(a)), string(id(b))) })

	sends := make([]Send[P], 0, len(runs))
	out := make([]Outbound[P], 0, len(pairs)) // one backing array, sliced per peer
	for i := 0; i < len(runs); {
		to := id(runs[i])
		msgs := pairs[runs[i].start:runs[i].end]
		j := i + 1
		if j < len(runs) && id(runs[j]) == to {
			// The view lists this peer more than once: merge its runs, in batch order, once each.
			msgs = slices.Clone(msgs)
			for ; j < len(runs) && id(runs[j]) == to; j++ {
				msgs = append(msgs, pairs[runs[j].start:runs[j].end]...)
			}
			slices.SortStableFunc(msgs, func(a, b pair) int { return cmp.Compare(a.msg(), b.msg()) })
			msgs = slices.CompactFunc(msgs, func(a, b pair) bool { return a.msg() == b.msg() })
		}
		start := len(out)
		for _, a := range msgs {
			msg := &p.batch[a.msg()]
			out = append(out, Outbound[P]{
				Payload:     msg.Payload,
				StripSecret: msg.Kind == KindAlive && p.members[a.member()].Org != msg.OriginOrg,
			})
		}
		sends = append(sends, Send[P]{To: to, Messages: out[start:len(out):len(out)]})
		i = j
	}
	return sends
}
