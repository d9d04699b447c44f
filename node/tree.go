package node

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/batching"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// The dissemination tree's shell. routing/tree decides who gets what; this
// file feeds it the node's events and carries out what it asks: payloads go
// at once on the push stream of each eager link, IHAVEs and PRUNEs are
// batched by a control emitter and sent with the next flush, GRAFTs go at
// once. The machine's lock guards only the machine: nothing is sent, read
// from disk or traced under it.

// treeState is the node's dissemination tree.
type treeState struct {
	mu   sync.Mutex // guards m and view
	m    *tree.Machine
	view *nodeView // the view last given to the machine

	ctrl   *batching.Emitter[ctrlMsg] // IHAVE and PRUNE, batched
	nextAt atomic.Int64               // UnixNano of the machine's next timer, 0 if none; written under mu
	bell   chan struct{}              // rung when nextAt changed
}

// ctrlMsg is one control entry for one peer, on its way through the control
// emitter.
type ctrlMsg struct {
	to    peer.ID
	entry *wire.TreeControl
}

// newTree builds the tree shell; the node starts its tick loop with Start.
func (n *Node) newTree(cfg Config) (*treeState, error) {
	m, err := tree.New(cfg.Tree, n.self, newRand(n.seed, 3))
	if err != nil {
		return nil, err
	}
	t := &treeState{m: m, bell: make(chan struct{}, 1)}
	ecfg := batching.DefaultConfig()
	ecfg.BurstSize = 256
	ecfg.Latency = cfg.MaxPropagationBurstLatency
	t.ctrl, err = batching.New(ecfg, n.sendControl)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// step runs f on the machine with the current view and time, then carries
// out what it asked for.
func (n *Node) step(f func(m *tree.Machine, now time.Time)) {
	v := n.view()
	now := n.now()
	t := n.tree
	t.mu.Lock()
	if t.view != v {
		t.m.SetView(v.View)
		t.view = v
	}
	f(t.m, now)
	r := t.ready()
	t.mu.Unlock()
	n.execute(r)
}

// ready drains the machine's outputs and records when it next wants a tick
// (the earliest of all its timers). t.mu is held.
func (t *treeState) ready() tree.Ready {
	r := t.m.Ready()
	var at int64
	if !r.NextTick.IsZero() {
		at = r.NextTick.UnixNano()
	}
	if t.nextAt.Swap(at) != at {
		select {
		case t.bell <- struct{}{}:
		default:
		}
	}
	return r
}

// execute carries out one Ready: payloads at once, one frame per peer;
// grafts at once; IHAVEs and PRUNEs through the control emitter. A payload
// the transport refuses (a full queue) is reported back to the machine,
// which announces it instead: never a silent loss.
func (n *Node) execute(r tree.Ready) {
	for len(r.Payloads) > 0 || len(r.Grafts) > 0 || len(r.IHaves) > 0 || len(r.Prunes) > 0 {
		failed := n.sendPayloads(r.Payloads)
		for _, g := range r.Grafts {
			n.graftAsked(g.To, g.ID.Channel, g.Numbers)
			n.push(g.To, &wire.Batch{Control: []*wire.TreeControl{{Channel: g.ID.Channel, Root: []byte(g.ID.Root), Graft: g.Numbers}}})
			n.metrics.treeControl.WithLabelValues("graft").Inc()
		}
		for _, a := range r.IHaves {
			n.control(a.To, &wire.TreeControl{Channel: a.ID.Channel, Root: []byte(a.ID.Root), Ihave: a.Numbers}, "ihave")
		}
		for _, p := range r.Prunes {
			n.control(p.To, &wire.TreeControl{Channel: p.ID.Channel, Root: []byte(p.ID.Root), Prune: true, Full: p.Full}, "prune")
		}
		if len(failed) == 0 {
			return
		}
		now := n.now()
		n.tree.mu.Lock()
		for _, s := range failed {
			n.tree.m.SendFailed(s.To, s.ID, s.Number, now)
		}
		r = n.tree.ready()
		n.tree.mu.Unlock()
	}
}

// sendPayloads sends each peer its payloads in one frame and returns the
// sends that did not go.
func (n *Node) sendPayloads(sends []tree.Send) (failed []tree.Send) {
	slices.SortStableFunc(sends, func(a, b tree.Send) int {
		switch {
		case a.To < b.To:
			return -1
		case a.To > b.To:
			return 1
		}
		return 0
	})
	for len(sends) > 0 {
		k := 1
		for k < len(sends) && sends[k].To == sends[0].To {
			k++
		}
		group := sends[:k]
		sends = sends[k:]
		b := &wire.Batch{}
		var sent []tree.Send
		var headers []*chunkedBlock
		for _, s := range group {
			hb := n.heldBlock(s.ID.Channel, s.Number)
			if hb == nil {
				continue
			}
			if hb.chunks != nil {
				// A chunked block goes as its header, then its chunks,
				// and only to a peer that announced it takes them.
				if !n.chunkCapable(s.ID.Channel, s.To) {
					n.metrics.dropped.WithLabelValues("block", reasonNoChunkSupport).Inc()
					continue
				}
				headers = append(headers, hb.chunks)
			}
			b.Envelopes = append(b.Envelopes, hb.env)
			sent = append(sent, s)
		}
		if len(b.Envelopes) == 0 {
			continue
		}
		if !n.push(group[0].To, b) {
			failed = append(failed, sent...)
			continue
		}
		n.metrics.treePayloads.Add(float64(len(sent)))
		for _, c := range headers {
			n.headerSent(group[0].To, c)
		}
	}
	return failed
}

// heldBlock returns block num of ch if this peer holds it (in memory, or
// delivered and in the store).
func (n *Node) heldBlock(ch string, num uint64) *block {
	cs := n.channel(ch)
	if cs == nil {
		return nil
	}
	cs.mu.Lock()
	b := cs.ledger.blocks[num]
	inStore := b == nil && num < cs.ledger.height && n.store != nil
	cs.mu.Unlock()
	if inStore {
		b = n.loadServed(cs, num)
	}
	return b
}

// control queues one IHAVE or PRUNE for the next control flush.
func (n *Node) control(to peer.ID, e *wire.TreeControl, kind string) {
	n.metrics.treeControl.WithLabelValues(kind).Inc()
	err := n.tree.ctrl.Add(batching.Item[ctrlMsg]{Msg: ctrlMsg{to: to, entry: e}, Size: 16 + len(e.Channel) + len(e.Root) + 10*len(e.Ihave)})
	if errors.Is(err, batching.ErrFull) {
		n.metrics.dropped.WithLabelValues("control", "emitter_full").Inc()
	}
}

// sendControl is the control emitter's send function: one frame per peer,
// the entries of one tree merged.
func (n *Node) sendControl(batch []ctrlMsg) {
	byPeer := map[peer.ID][]*wire.TreeControl{}
	var order []peer.ID
	for _, c := range batch {
		es, ok := byPeer[c.to]
		if !ok {
			order = append(order, c.to)
		}
		merged := false
		for _, e := range es {
			if e.Channel == c.entry.Channel && string(e.Root) == string(c.entry.Root) && e.Prune == c.entry.Prune && e.Full == c.entry.Full &&
				len(e.Ihave)+len(c.entry.Ihave) <= n.cfg.Tree.MaxIHave {
				e.Ihave = append(e.Ihave, c.entry.Ihave...)
				merged = true
				break
			}
		}
		if !merged {
			es = append(es, c.entry)
		}
		byPeer[c.to] = es
	}
	for _, to := range order {
		for es := range slices.Chunk(byPeer[to], n.maxControl) {
			n.push(to, &wire.Batch{Control: es})
		}
	}
}

// handleControl applies the tree control entries of a push frame from
// from, each only if the audience lets from send this peer the channel's
// blocks. Announced numbers this peer already holds are dropped before the
// machine sees them; numbers beyond what the ledger buffers ask for pull.
func (n *Node) handleControl(from peer.ID, entries []*wire.TreeControl) {
	if n.tree == nil || len(entries) == 0 {
		return
	}
	v := n.view()
	type applied struct {
		id           tree.ID
		ihave, graft []uint64
		prune, full  bool
	}
	var todo []applied
	for _, e := range entries {
		root, err := peer.IDFromBytes(e.GetRoot())
		if err != nil {
			n.drop("control", reasonMalformed, from)
			continue
		}
		if reason := senderReason(v, from, e.GetChannel()); reason != "" {
			n.drop("control", reason, from)
			continue
		}
		cs := n.channel(e.GetChannel())
		if cs == nil {
			continue
		}
		a := applied{id: tree.ID{Channel: e.GetChannel(), Root: root}, graft: e.GetGraft(), prune: e.GetPrune(), full: e.GetFull()}
		if len(e.GetIhave()) > 0 {
			behind := false
			cs.mu.Lock()
			for _, num := range e.GetIhave() {
				switch err := cs.ledger.check(num); {
				case err == nil:
					a.ihave = append(a.ihave, num)
				case errors.Is(err, errTooFarAhead):
					behind = true
				}
			}
			cs.mu.Unlock()
			if behind {
				n.kickPull()
			}
		}
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		return
	}
	for _, a := range todo {
		if a.prune {
			n.stopChunks(from, a.id)
		}
	}
	n.step(func(m *tree.Machine, now time.Time) {
		for _, a := range todo {
			if len(a.ihave) > 0 {
				m.IHave(from, a.id, a.ihave, now)
			}
			if len(a.graft) > 0 {
				m.Graft(from, a.id, a.graft, now)
			}
			if a.prune {
				m.Prune(from, a.id, a.full, now)
			}
		}
	})
}

// treeLoop ticks the machine when its next timer is due, until done.
func (n *Node) treeLoop(done <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-n.tree.bell:
			if at := n.tree.nextAt.Load(); at != 0 {
				t.Reset(max(0, time.Unix(0, at).Sub(n.now())))
			}
		case <-t.C:
			n.step(func(m *tree.Machine, now time.Time) { m.Tick(now) })
		}
	}
}
