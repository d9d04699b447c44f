package treesim

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/libp2p/go-libp2p/core/peer"
)

func (s *sim) at() time.Time { return s.epoch.Add(s.now) }

func (s *sim) handle(e event) {
	switch e.kind {
	case evPublish:
		s.publish(e.ch, e.num)
	case evDeliver:
		s.deliver(e)
	case evTick:
		n := s.nodes[e.node]
		if n.up && n.tickAt.Equal(s.epoch.Add(e.at)) {
			n.tickAt = time.Time{}
			n.m.Tick(s.at())
			s.drain(n)
		}
	case evFlush:
		s.flush(s.nodes[e.node])
	case evCrash:
		s.crash()
	case evView:
		if e.node >= 0 {
			if n := s.nodes[e.node]; n.up {
				return
			}
			s.view.Members[e.node].Alive = false
		} else {
			for i, c := range s.crashed {
				if c {
					s.view.Members[i].Alive = false
				}
			}
		}
		s.refreshViews(-1)
	case evDown:
		s.down()
	case evUp:
		n := s.nodes[e.node]
		n.up, n.upSince = true, s.now
		s.view.Members[n.idx].Alive = true
		s.start(n)
		s.refreshViews(n.idx)
	case evFlood:
		s.flood()
	case evSample:
		s.sample()
	}
}

// refreshViews hands the current view to every up node except skip.
func (s *sim) refreshViews(skip int) {
	for _, n := range s.nodes {
		if n.up && n.idx != skip {
			s.setView(n)
			s.drain(n)
		}
	}
}

func (s *sim) has(n *node, c int, num uint64) bool {
	return num < uint64(s.cfg.Blocks) && n.hops[c][num] >= 0
}

func (s *sim) publish(c int, num uint64) {
	n := s.nodes[s.pubs[c]]
	bs := &s.blocks[c][num]
	bs.published = s.now
	for _, x := range s.nodes {
		if x.up && x.channels[c] {
			bs.members++
		}
	}
	n.hops[c][num] = 0
	n.m.Publish(tree.ID{Channel: s.cfg.Channels[c].Name, Root: n.id}, num, s.at())
	s.drain(n)
}

func (s *sim) deliver(e event) {
	n := s.nodes[e.node]
	if !n.up {
		return
	}
	from := s.nodes[e.from].id
	f := e.f
	now := s.at()
	switch f.kind {
	case framePayload:
		c := s.chIdx[f.id.Channel]
		fresh := !s.has(n, c, f.num)
		if fresh {
			n.hops[c][f.num] = int16(min(f.hops, math.MaxInt16))
			if n.handed[c][f.num]++; n.handed[c][f.num] > 1 {
				s.res.DoubleDeliveries++
			}
			s.res.Deliveries++
			bs := &s.blocks[c][f.num]
			bs.deliveries++
			bs.lastAt = max(bs.lastAt, s.now)
			s.res.MaxDepth = max(s.res.MaxDepth, f.hops)
		} else {
			s.res.Duplicates++
		}
		n.m.Payload(from, f.id, f.num, fresh, now)
	case frameIHave:
		for _, a := range f.announce {
			c := s.chIdx[a.ID.Channel]
			// The node's decoder caps the numbers of an announcement; 4×MaxIHave leaves the
			// machine's own cut to be exercised.
			nums := a.Numbers[:min(len(a.Numbers), 4*s.cfg.Tree.MaxIHave)]
			lacking := make([]uint64, 0, len(nums))
			for _, x := range nums {
				if !s.has(n, c, x) {
					lacking = append(lacking, x)
				}
			}
			n.m.IHave(from, a.ID, lacking, now)
		}
	case frameGraft:
		n.m.Graft(from, f.id, f.nums, now)
	case framePrune:
		n.m.Prune(from, f.id, f.full, now)
	}
	s.drain(n)
}

// drain executes n's outputs as the node would: payloads it holds go at once, IHAVEs wait for
// the emitter, GRAFT and PRUNE go at once.
func (s *sim) drain(n *node) {
	for {
		r := n.m.Ready()
		s.scheduleTick(n, r.NextTick)
		if r.Empty() {
			return
		}
		for _, p := range r.Payloads {
			c := s.chIdx[p.ID.Channel]
			if !s.has(n, c, p.Number) {
				continue
			}
			if s.cfg.SendFail > 0 && s.rng.Float64() < s.cfg.SendFail {
				n.m.SendFailed(p.To, p.ID, p.Number, s.at())
				continue
			}
			s.blocks[c][p.Number].sends++
			if n.idx == s.pubs[c] && s.view.Members[s.byID[p.To]].Org == s.view.Members[n.idx].Org {
				s.blocks[c][p.Number].rootSends++
			}
			s.res.PayloadSends++
			s.send(n, p.To, &frame{kind: framePayload, id: p.ID, num: p.Number, hops: int(n.hops[c][p.Number]) + 1})
		}
		if len(r.IHaves) > 0 {
			n.pending = append(n.pending, r.IHaves...)
			s.scheduleFlush(n)
		}
		for _, g := range r.Grafts {
			c := s.chIdx[g.ID.Channel]
			for _, x := range g.Numbers {
				s.res.Grafts++
				if x < uint64(s.cfg.Blocks) {
					s.blocks[c][x].grafts++
				}
			}
			s.send(n, g.To, &frame{kind: frameGraft, id: g.ID, nums: g.Numbers})
		}
		for _, p := range r.Prunes {
			s.res.Prunes++
			s.send(n, p.To, &frame{kind: framePrune, id: p.ID, full: p.Full})
		}
	}
}

func (s *sim) scheduleTick(n *node, next time.Time) {
	if next.IsZero() || (!n.tickAt.IsZero() && !next.Before(n.tickAt)) {
		return
	}
	n.tickAt = next
	s.push(event{at: max(next.Sub(s.epoch), s.now), kind: evTick, node: n.idx})
}

func (s *sim) scheduleFlush(n *node) {
	if n.flushAt >= 0 {
		return
	}
	n.flushAt = (s.now/s.cfg.Flush + 1) * s.cfg.Flush
	s.push(event{at: n.flushAt, kind: evFlush, node: n.idx})
}

// flush sends n's pending IHAVEs as the emitter does: one frame per peer, one announcement per
// tree in it, at most MaxIHave numbers per announcement.
func (s *sim) flush(n *node) {
	n.flushAt = -1
	pending := n.pending
	n.pending = nil
	if !n.up || len(pending) == 0 {
		return
	}
	var order []peer.ID
	byPeer := map[peer.ID][]tree.Announce{}
	for _, a := range pending {
		as, seen := byPeer[a.To]
		if !seen {
			order = append(order, a.To)
		}
		merged := false
		for i := range as {
			if as[i].ID == a.ID {
				as[i].Numbers = append(as[i].Numbers, a.Numbers...)
				merged = true
				break
			}
		}
		if !merged {
			as = append(as, tree.Announce{To: a.To, ID: a.ID, Numbers: slices.Clone(a.Numbers)})
		}
		byPeer[a.To] = as
	}
	for _, to := range order {
		// The emitter plans against the view at flush time: a peer gone since the IHAVE was
		// queued gets nothing.
		if !n.cands[s.chIdx[byPeer[to][0].ID.Channel]][to] {
			continue
		}
		var out []tree.Announce
		for _, a := range byPeer[to] {
			for len(a.Numbers) > 0 {
				k := min(len(a.Numbers), s.cfg.Tree.MaxIHave)
				out = append(out, tree.Announce{To: to, ID: a.ID, Numbers: a.Numbers[:k:k]})
				s.res.IHaveNumbers += k
				a.Numbers = a.Numbers[k:]
			}
		}
		s.res.IHaveFrames++
		s.send(n, to, &frame{kind: frameIHave, announce: out})
	}
}

// send puts f on the link from n to `to`, after checking that `to` is in the audience of every
// channel f concerns (eligible; same org, or both external) and among n's current candidates.
func (s *sim) send(n *node, to peer.ID, f *frame) {
	j, known := s.byID[to]
	ok := known
	check := func(channel string) {
		c, listed := s.chIdx[channel]
		if !ok || !listed {
			ok = false
			return
		}
		m := s.view.Members[j]
		sameOrg := m.Org == s.view.Members[n.idx].Org
		ok = routing.Eligible(s.view, channel)(m) && (sameOrg || (n.external && m.External)) && n.cands[c][to]
	}
	if f.kind == frameIHave {
		for _, a := range f.announce {
			check(a.ID.Channel)
		}
	} else {
		check(f.id.Channel)
	}
	if !ok {
		s.res.Violations++
		return
	}
	s.frames++
	if s.cfg.FaultsUntil == 0 || s.now < s.cfg.FaultsUntil {
		p := s.cfg.Loss
		if f.kind == frameGraft || f.kind == framePrune {
			p = 1 - (1-p)*(1-s.cfg.ControlLoss)
		}
		if p > 0 && s.rng.Float64() < p {
			s.res.Lost++
			return
		}
	}
	at := s.now
	if tx := s.transfer(); f.kind == framePayload && tx > 0 {
		n.egressFree = max(n.egressFree, s.now) + tx
		at = n.egressFree
	}
	at += s.latency(n.idx, j)
	if f.kind == framePayload && s.cfg.PayloadDelay > 0 {
		at += time.Duration(s.rng.Int64N(int64(s.cfg.PayloadDelay)))
	}
	s.push(event{at: at, kind: evDeliver, node: j, from: n.idx, f: f})
}

func (s *sim) isPublisher(i int) bool { return slices.Contains(s.pubs, i) }

func (s *sim) crash() {
	var pool []int
	for i, n := range s.nodes {
		if n.up && !s.isPublisher(i) {
			pool = append(pool, i)
		}
	}
	s.rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	k := int(math.Round(s.cfg.CrashFraction * float64(len(pool))))
	for _, i := range pool[:min(k, len(pool))] {
		s.stop(s.nodes[i])
		s.crashed[i] = true
	}
	s.push(event{at: s.now + s.cfg.Detect, kind: evView, node: -1})
}

func (s *sim) stop(n *node) {
	n.up = false
	n.pending = nil
	n.tickAt = time.Time{}
}

func (s *sim) down() {
	var pool []int
	for i, n := range s.nodes {
		if n.up && !s.isPublisher(i) && !s.crashed[i] {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		return
	}
	n := s.nodes[pool[s.rng.IntN(len(pool))]]
	s.stop(n)
	s.push(event{at: s.now + s.cfg.Detect, kind: evView, node: n.idx})
	s.push(event{at: s.now + max(s.cfg.Downtime, s.cfg.Detect+time.Millisecond), kind: evUp, node: n.idx})
}

// flood makes org 0's peer 1 announce invented numbers on every tree it knows and on invented
// roots, to every link, as a misbehaving peer would. The number slices are shared by all frames.
func (s *sim) flood() {
	if len(s.nodes) < 2 || !s.nodes[1].up || s.isPublisher(1) {
		return
	}
	n := s.nodes[1]
	var chunks [][]uint64
	for lo := 0; lo < s.cfg.FloodNumbers; lo += s.cfg.FloodFrame {
		hi := min(lo+s.cfg.FloodFrame, s.cfg.FloodNumbers)
		chunk := make([]uint64, hi-lo)
		for i := range chunk {
			chunk[i] = 1<<40 + uint64(lo+i)
		}
		chunks = append(chunks, chunk)
	}
	for c, ch := range s.cfg.Channels {
		if !n.channels[c] {
			continue
		}
		roots := []peer.ID{s.nodes[s.pubs[c]].id}
		for r := range s.cfg.FloodRoots {
			roots = append(roots, peer.ID(fmt.Sprintf("invented-root-%d", r)))
		}
		for to := range n.cands[c] {
			for _, chunk := range chunks {
				var as []tree.Announce
				for _, root := range roots {
					as = append(as, tree.Announce{To: to, ID: tree.ID{Channel: ch.Name, Root: root}, Numbers: chunk})
				}
				s.res.IHaveFrames++
				s.send(n, to, &frame{kind: frameIHave, announce: as})
			}
		}
	}
}

func (s *sim) sample() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		st := n.m.Stats()
		ms := &s.res.MaxState
		ms.Channels = max(ms.Channels, st.Channels)
		ms.Links = max(ms.Links, st.Links)
		ms.Trees = max(ms.Trees, st.Trees)
		ms.Missing = max(ms.Missing, st.Missing)
		ms.Announcers = max(ms.Announcers, st.Announcers)
		ms.Timers = max(ms.Timers, st.Timers)
		ms.RTTs = max(ms.RTTs, st.RTTs)
	}
}

func (s *sim) finish() {
	s.sample()
	r := &s.res
	r.Duration = s.now
	var tfull []time.Duration
	steadyUseful := 0
	var ratios []float64
	for c := range s.cfg.Channels {
		pub := s.pubs[c]
		reach := s.reachable(c)
		for i, n := range s.nodes {
			if n.up && n.channels[c] && !reach[i] {
				r.Unreachable++
			}
		}
		for b := range s.cfg.Blocks {
			bs := s.blocks[c][b]
			r.Blocks++
			missed := 0
			for _, n := range s.nodes {
				if n.idx != pub && reach[n.idx] && n.upSince <= bs.published && !s.has(n, c, uint64(b)) {
					missed++
				}
			}
			r.Misses += missed
			if missed == 0 && bs.deliveries > 0 {
				t := bs.lastAt - bs.published
				tfull = append(tfull, t)
				ratios = append(ratios, float64(t)/float64(s.floors[c]))
			}
			if b >= s.cfg.Warmup {
				r.SteadyBlocks++
				r.SteadyExcess += bs.sends - (bs.members - 1)
				r.SteadyGrafts += bs.grafts
				steadyUseful += bs.members - 1
				r.PublisherCopies += float64(bs.rootSends)
			}
		}
	}
	if r.Deliveries > 0 {
		r.RMR = float64(r.PayloadSends)/float64(r.Deliveries) - 1
	}
	if steadyUseful > 0 {
		r.SteadyRMR = float64(r.SteadyExcess) / float64(steadyUseful)
	}
	if r.SteadyBlocks > 0 {
		r.PublisherCopies /= float64(r.SteadyBlocks)
	}
	slices.Sort(tfull)
	slices.Sort(ratios)
	r.TFullP50, r.TFullP99 = pct(tfull, 0.5), pct(tfull, 0.99)
	r.RatioP50, r.RatioP99 = pct(ratios, 0.5), pct(ratios, 0.99)
	if s.now > 0 {
		r.MsgsPerPeerSec = float64(s.frames) / float64(len(s.nodes)) / s.now.Seconds()
	}
	r.Asymmetric = s.asymmetric()
}

// reachable marks the up peers that channel c's publisher reaches over the up peers' current
// candidate links. Crashes can cut an org off (all its external peers down): no protocol within
// the audience rules reaches it, so its peers count as unreachable, not as misses.
func (s *sim) reachable(c int) []bool {
	reach := make([]bool, len(s.nodes))
	pub := s.pubs[c]
	reach[pub] = true
	queue := []int{pub}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for p := range s.nodes[i].cands[c] {
			if j := s.byID[p]; s.nodes[j].up && !reach[j] {
				reach[j] = true
				queue = append(queue, j)
			}
		}
	}
	return reach
}

// asymmetric counts, over every channel's publisher tree, the eager relations that one up peer
// holds toward another up peer which does not hold it back.
func (s *sim) asymmetric() int {
	bad := 0
	for c, ch := range s.cfg.Channels {
		id := tree.ID{Channel: ch.Name, Root: s.nodes[s.pubs[c]].id}
		eager := make([][]peer.ID, len(s.nodes))
		for i, n := range s.nodes {
			if n.up {
				eager[i] = n.m.Eager(id)
			}
		}
		for i, n := range s.nodes {
			for _, p := range eager[i] {
				j := s.byID[p]
				if !s.nodes[j].up {
					continue
				}
				if _, found := slices.BinarySearch(eager[j], n.id); !found {
					bad++
				}
			}
		}
	}
	return bad
}

func pct[T time.Duration | float64](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}
