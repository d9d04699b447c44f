package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/store"
)

// The persistence writer: one goroutine per channel that makes staged blocks
// durable and only then delivers them.
//
// A block that continues the chain is staged under the channel's lock (a
// slice append). The writer takes everything staged since its last round,
// persists it with one AppendBatch (one fsync for the whole group, however
// many blocks arrived while the previous fsync ran), and then, under the
// lock again, commits the blocks to the ledger. Subscribers, metrics and
// tracers are served after the lock is released. So no inbound message ever
// waits behind the disk, and the crash guarantee is unchanged: a block the
// application saw is durable, and a restarted peer resumes at the stored
// height with nothing lost and nothing delivered twice.
//
// If the store refuses a group, nothing of it is delivered: the ledger takes
// the staging back (the blocks stay held), the publisher waiting on one of
// them learns the error, and the next arrival or the pull loop stages them
// again.

// stageLocked hands run, the blocks the ledger says are ready, to the
// writer. cs.mu is held.
func (cs *channelState) stageLocked(run []*block) {
	if len(run) == 0 {
		return
	}
	cs.ledger.stage(run)
	cs.pending = append(cs.pending, run...)
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

// runWriter is the channel's writer goroutine. It stops when the node closes
// or the channel is dropped from the network config, after persisting and
// delivering what was staged.
func (n *Node) runWriter(cs *channelState) {
	for {
		select {
		case <-cs.wake:
			n.writeStaged(cs)
		case <-cs.quit:
			n.writeStaged(cs)
			return
		case <-n.ctx.Done():
			n.writeStaged(cs)
			return
		}
	}
}

// writeStaged persists and delivers one group of staged blocks.
func (n *Node) writeStaged(cs *channelState) {
	cs.mu.Lock()
	group := cs.pending
	cs.pending = nil
	cs.mu.Unlock()
	if len(group) == 0 {
		return
	}
	if err := n.persist(cs.name, group); err != nil {
		n.metrics.storeErrors.Inc()
		n.log.Error("persisting blocks", "channel", cs.name, "block", group[0].msg.GetNumber(), "err", err)
		cs.mu.Lock()
		cs.ledger.unstage()
		group = append(group, cs.pending...) // staged after the group: they follow it back
		cs.pending = nil
		cs.mu.Unlock()
		for _, b := range group {
			b.settle(err)
		}
		return
	}
	cs.mu.Lock()
	cs.ledger.commit(group)
	subs := append([]*Subscription(nil), cs.subs...)
	if cs.joined {
		cs.dirty = true // the ledger height moved: publish it
	}
	cs.mu.Unlock()

	n.deliver(cs, subs, group)
	for _, b := range group {
		b.settle(nil)
	}
}

// settle tells the publisher waiting on b, if any, how persisting it went.
// Only the first outcome is read: a block whose write failed may be staged
// and written again later, and that second outcome finds nobody waiting.
func (b *block) settle(err error) {
	if b.done == nil {
		return
	}
	select {
	case b.done <- err:
	default:
	}
}

// persist writes blocks to the store, if the node has one: one batch, one
// fsync.
func (n *Node) persist(ch string, blocks []*block) error {
	if n.store == nil {
		return nil
	}
	batch := make([]store.Block, len(blocks))
	for i, b := range blocks {
		raw, err := proto.Marshal(b.env)
		if err != nil {
			return err
		}
		if b.chunks != nil {
			raw = storedChunked(raw, b.chunks.data())
		}
		batch[i] = store.Block{Number: b.msg.GetNumber(), Hash: b.hash, Envelope: raw}
	}
	return n.store.AppendBatch(ch, batch)
}

// deliver hands committed blocks, in order, to the subscriptions that were
// open when they were committed, and records them. It runs on the writer
// goroutine without any lock; a subscription that falls too far behind ends
// and is removed.
func (n *Node) deliver(cs *channelState, subs []*Subscription, blocks []*block) {
	var slow []*Subscription
	for _, s := range subs {
		for _, b := range blocks {
			if !s.push(publicBlock(b)) {
				slow = append(slow, s)
				break
			}
		}
	}
	if len(slow) > 0 {
		cs.mu.Lock()
		cs.removeSubsLocked(slow...)
		cs.mu.Unlock()
	}
	now := n.now()
	for _, b := range blocks {
		n.metrics.blocksDelivered.Inc()
		if pub, _ := peer.IDFromBytes(b.msg.GetPublisher()); pub != n.self {
			n.metrics.deliveryLatency.Observe(max(0, now.Sub(time.Unix(0, b.msg.GetPublishedAt())).Seconds()))
		}
		n.tracer.BlockDelivered(publicBlock(b))
	}
}

// retryDeliveries stages again what is held and ready but was not stored
// because the store failed earlier.
func (n *Node) retryDeliveries() {
	for _, cs := range n.channelList() {
		cs.mu.Lock()
		run, _ := cs.ledger.ready()
		cs.stageLocked(run)
		cs.mu.Unlock()
	}
}
