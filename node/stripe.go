package node

import (
	"bytes"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Stripes (issue #15). Along the tree, an inner peer sent every chunk of a
// block to each of its eager children, so under an egress limit it needed
// several copies' worth of line time, and a large block waited for the
// busiest peer on its path: the publisher, with a door to every other org,
// sent up to five copies. With stripes the header still travels along the
// tree, which keeps its shape, but the chunks take two other paths, chosen
// so that every peer sends about one copy:
//
//   - Inside an org, a chunk enters at one peer: the publisher, or the door
//     it crossed orgs by. That peer sends chunk i, marked relay, to one
//     member of the org, relay (i + number) mod count of the org's internal
//     members in the channel that take chunks (all of them if none is
//     internal), sorted. A relay forwards each chunk it was asked to relay,
//     as it arrives, to every other member of the org in the channel that
//     takes chunks, but the peer that asked.
//   - Between orgs, chunks follow a tree of orgs rooted at the publisher's
//     (tree.ChunkOrgs, fan-out chunkOrgFanout), not the header's path,
//     which leaves the publisher's org for every other org at once. Of the
//     doors between an org and each org it forwards to (tree.DoorPairs,
//     the pairs the tree links), chunk i goes by pair (i + number) mod
//     pairs, so that org gets each chunk once and the org's external peers
//     share the sending. The door on the far side stripes it over its org.
//   - A stripe may overtake the header it belongs to (the header goes by
//     the tree, the chunk by other hops), so a chunk that names a block
//     whose header is not held yet, within the ledger's window, is held for
//     earlyTTL, capped in bytes in all and per sender, and applied when the
//     header is accepted.
//
// A member a relay does not know of (views differ for a moment), or whose
// relay or door crashed, misses those chunks and pulls them, as any lost
// chunk (chunkpull.go). Stripes need the tree (Config.ChunkStripes; with
// Fabric's push every chunk follows the header). A relay flag from a peer
// of another org is ignored: that chunk is striped like any that enters
// the org.

// chunkOrgFanout is how many orgs each org forwards a large block's
// chunks to: each external peer of an org with two doors to each then
// sends about one copy.
const chunkOrgFanout = 2

// Early chunk bounds.
const (
	earlyTTL          = time.Second // an early chunk whose header does not come by then is dropped
	earlyMaxBytes     = 16 << 20    // early chunk data held in all
	earlyMaxPerSender = 4 << 20     // early chunk data held from one sender
	// earlyOverhead is what an early chunk is counted for besides its data
	// and hash: its entry, so that a flood of tiny chunks is bounded too.
	earlyOverhead = 128
)

// earlyChunk is a chunk that arrived before its block's header.
type earlyChunk struct {
	from peer.ID
	ck   *wire.BlockChunk
	at   time.Time
}

// earlyKey names the block an early chunk belongs to.
type earlyKey struct {
	ch  string
	num uint64
}

// earlyChunks holds the chunks that overtook their headers. Guarded by
// chunkState.mu.
type earlyChunks struct {
	byBlock  map[earlyKey][]earlyChunk
	bytes    int
	bySender map[peer.ID]int
	// order is the blocks in the order their first early chunk came, so
	// that expiry looks only at the oldest: an entry whose block was taken
	// (or taken and held again since) is skipped when it comes up.
	order []earlyAt
}

// earlyAt is when block key's first early chunk came.
type earlyAt struct {
	key earlyKey
	at  time.Time
}

// striping reports whether chunked blocks are striped over each org.
func (n *Node) striping() bool { return n.cfg.ChunkStripes && n.tree != nil }

// orgPeersLocked returns the other members of this peer's org that may be
// sent blocks of cs's channel and take chunks, sorted; with internal, only
// those that are not external, if there are any (an external peer keeps
// its line for the doors). cs.mu is held.
func (n *Node) orgPeersLocked(cs *channelState, v *nodeView, internal bool) []peer.ID {
	var all, inner []peer.ID
	for i := range v.Members {
		m := &v.Members[i]
		if m.Org == v.Self.Org && m.ID != v.Self.ID && v.BlockPeer(m, cs.name) && cs.chunkCapableLocked(m.ID) {
			all = append(all, m.ID)
			if !m.External {
				inner = append(inner, m.ID)
			}
		}
	}
	if internal && len(inner) > 0 {
		all = inner
	}
	slices.Sort(all)
	return all
}

// stripeLocked owes chunk i of c, which entered this peer's org here, to
// its stripe relay. cs.mu is held.
func (n *Node) stripeLocked(cs *channelState, v *nodeView, c *chunkedBlock, i int) {
	if c.relays == nil {
		c.relays = n.orgPeersLocked(cs, v, true)
	}
	if len(c.relays) == 0 {
		return
	}
	r := c.relays[(uint64(i)+c.num)%uint64(len(c.relays))]
	t := c.targets[r]
	if t == nil {
		t = newTarget(targetStripe, c.asm.Commitment().Count(), false)
		c.targets[r] = t
	}
	if t.kind == targetStripe {
		t.clear(i)
	}
}

// doorsLocked makes the doors this peer owns targets of c's chunks, if
// this peer is external: to each org its org forwards c's chunks to
// (tree.ChunkOrgs), of the doors between the two orgs (tree.DoorPairs),
// chunk i goes by pair (i + number) mod pairs, so that org gets each chunk
// once and this org's external peers share the sending. (Leaving the
// publisher's pairs to its org's other external peers, as it sends a copy
// into its org already, was tried: it helped a channel of two orgs and cost
// more in one of three, where the other external then sent two copies.)
// cs.mu is held.
func (n *Node) doorsLocked(cs *channelState, v *nodeView, c *chunkedBlock) {
	if !n.external || c.org == "" {
		return
	}
	count := c.asm.Commitment().Count()
	for _, org := range tree.ChunkOrgs(v.View, cs.name, c.org, n.org, chunkOrgFanout) {
		pairs := tree.DoorPairs(v.View, cs.name, n.org, org, n.cfg.Tree.Doors)
		for j, p := range pairs {
			if p[0] != n.self || !cs.chunkCapableLocked(p[1]) {
				continue
			}
			t := c.targets[p[1]]
			if t == nil {
				t = newTarget(targetDoor, count, false)
				c.targets[p[1]] = t
			}
			for i := range count {
				if (uint64(i)+c.num)%uint64(len(pairs)) == uint64(j) {
					t.clear(i)
				}
			}
		}
	}
}

// stripeNew sets up the stripes of a chunked block this peer published or
// accepted the header of: its doors, and, if it published the block, the
// stripe of every chunk over its org.
func (n *Node) stripeNew(cs *channelState, c *chunkedBlock, published bool) {
	if !n.striping() {
		return
	}
	v := n.view()
	cs.mu.Lock()
	n.doorsLocked(cs, v, c)
	if published {
		for i := range c.asm.Commitment().Count() {
			n.stripeLocked(cs, v, c, i)
		}
		n.metrics.stripes.Inc()
	}
	cs.mu.Unlock()
	n.pump(cs, c)
}

// relayLocked owes chunk i of c, which from asked this peer to relay, to
// every other member of the org. cs.mu is held.
func (n *Node) relayLocked(cs *channelState, v *nodeView, c *chunkedBlock, from peer.ID, i int) {
	if c.fanout == nil {
		c.fanout = n.orgPeersLocked(cs, v, false)
	}
	count := c.asm.Commitment().Count()
	for _, p := range c.fanout {
		if p == from {
			continue // it asked, and holds the chunk; another chunk's entry may not
		}
		t := c.targets[p]
		if t == nil {
			t = newTarget(targetFanout, count, false)
			c.targets[p] = t
		}
		if t.kind == targetFanout {
			t.clear(i)
		}
	}
}

// forwardLocked decides where chunk i of c, just added from from, goes
// besides the doors: a chunk from another org entered this peer's org here
// and is striped over it; one from this org marked relay is relayed to the
// rest of it. cs.mu is held.
func (n *Node) forwardLocked(cs *channelState, v *nodeView, c *chunkedBlock, from peer.ID, i int, relay bool) {
	if !n.striping() {
		return
	}
	m, ok := v.member(from)
	switch {
	case !ok:
	case m.Org != v.Self.Org:
		n.stripeLocked(cs, v, c, i)
	case relay:
		n.relayLocked(cs, v, c, from, i)
	}
}

// holdEarly keeps a chunk whose header is not held yet, within the caps.
// The channel's lock is held, so that the header cannot be accepted, and
// its early chunks taken, between the ledger's answer and this.
func (n *Node) holdEarly(from peer.ID, ck *wire.BlockChunk) bool {
	size := earlySize(ck)
	s := n.chunked
	now := n.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.early
	n.expireEarlyLocked(now)
	if e.bytes+size > earlyMaxBytes || e.bySender[from]+size > earlyMaxPerSender {
		return false
	}
	if e.byBlock == nil {
		e.byBlock, e.bySender = map[earlyKey][]earlyChunk{}, map[peer.ID]int{}
	}
	k := earlyKey{ck.GetChannel(), ck.GetNumber()}
	if len(e.byBlock[k]) == 0 {
		e.order = append(e.order, earlyAt{k, now})
	}
	// A copy: ck aliases its frame, whose memory the transport reuses once
	// the handler returns.
	ck = &wire.BlockChunk{Channel: ck.GetChannel(), Number: ck.GetNumber(), BlockHash: bytes.Clone(ck.GetBlockHash()),
		Index: ck.GetIndex(), Data: bytes.Clone(ck.GetData()), Relay: ck.GetRelay()}
	e.byBlock[k] = append(e.byBlock[k], earlyChunk{from: from, ck: ck, at: now})
	e.bytes += size
	e.bySender[from] += size
	n.metrics.earlyChunks.Inc()
	return true
}

// takeLocked removes and returns the early chunks of block k.
// chunkState.mu is held.
func (e *earlyChunks) takeLocked(k earlyKey) []earlyChunk {
	out := e.byBlock[k]
	delete(e.byBlock, k)
	for _, x := range out {
		e.forget(x)
	}
	return out
}

// earlySize is what an early chunk counts against the caps.
func earlySize(ck *wire.BlockChunk) int {
	return len(ck.GetData()) + len(ck.GetBlockHash()) + len(ck.GetChannel()) + earlyOverhead
}

func (e *earlyChunks) forget(x earlyChunk) {
	size := earlySize(x.ck)
	e.bytes -= size
	if e.bySender[x.from] -= size; e.bySender[x.from] <= 0 {
		delete(e.bySender, x.from)
	}
}

// expireEarlyLocked drops the early chunks held past earlyTTL.
// chunkState.mu is held.
func (n *Node) expireEarlyLocked(now time.Time) {
	e := &n.chunked.early
	for len(e.order) > 0 && now.Sub(e.order[0].at) > earlyTTL {
		o := e.order[0]
		e.order[0] = earlyAt{}
		e.order = e.order[1:]
		if xs := e.byBlock[o.key]; len(xs) > 0 && xs[0].at.Equal(o.at) {
			n.metrics.dropped.WithLabelValues("chunk", reasonUnknownBlock).Add(float64(len(e.takeLocked(o.key))))
		}
	}
	if len(e.order) == 0 {
		e.order = nil // let the backing array go
	}
}

// expireEarly drops the early chunks held past earlyTTL.
func (n *Node) expireEarly() {
	now := n.now()
	n.chunked.mu.Lock()
	n.expireEarlyLocked(now)
	n.chunked.mu.Unlock()
}

// applyEarly applies the chunks that arrived before block num of ch's
// header, now held with hash; those naming another header are dropped.
func (n *Node) applyEarly(ch string, num uint64, hash []byte) {
	n.chunked.mu.Lock()
	xs := n.chunked.early.takeLocked(earlyKey{ch, num})
	n.chunked.mu.Unlock()
	for len(xs) > 0 {
		from := xs[0].from
		var batch []*wire.BlockChunk
		rest := xs[:0]
		for _, x := range xs {
			switch {
			case x.from != from:
				rest = append(rest, x)
			case bytes.Equal(x.ck.GetBlockHash(), hash):
				batch = append(batch, x.ck)
			default:
				n.drop("chunk", reasonUnknownBlock, from)
			}
		}
		xs = rest
		n.applyChunks(from, batch, false)
	}
}
