package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Block is a delivered block of a channel.
type Block struct {
	Channel      string
	Number       uint64
	PreviousHash []byte
	DataHash     []byte
	Data         []byte
	Publisher    peer.ID
	// PublishedAt is when the publisher signed the block, by its clock.
	PublishedAt time.Time
	// Hash is BlockHash of the block: the next block's PreviousHash.
	Hash []byte
}

func publicBlock(b *block) Block {
	pub, _ := peer.IDFromBytes(b.msg.GetPublisher())
	return Block{
		Channel:      b.msg.GetChannel(),
		Number:       b.msg.GetNumber(),
		PreviousHash: b.msg.GetPreviousHash(),
		DataHash:     b.msg.GetDataHash(),
		Data:         b.msg.GetData(),
		Publisher:    pub,
		PublishedAt:  time.Unix(0, b.msg.GetPublishedAt()),
		Hash:         b.hash,
	}
}

// stateInfo is a verified StateInfo of one peer for one channel.
type stateInfo struct {
	height   uint64
	left     bool
	inc, seq uint64
	env      *wire.Envelope
}

// channelState is everything this peer holds about one channel its org is a
// member of, joined or not.
type channelState struct {
	name   string
	joined bool
	left   bool
	ledger *ledger
	states map[peer.ID]*stateInfo // verified StateInfo, self included once joined
	subs   []*Subscription

	// Own StateInfo publication: dirty when it changed since last published.
	dirty         bool
	lastPublished time.Time

	// publishMu keeps this peer's Publish calls on the channel in turn; it
	// is taken before n.mu, never while holding it.
	publishMu sync.Mutex
}

func newChannelState(name string, cfg Config) *channelState {
	return &channelState{
		name:   name,
		ledger: newLedger(cfg.MaxBlockCountToStore, 2*cfg.MaxBlockCountToStore),
		states: make(map[peer.ID]*stateInfo),
	}
}

// eligible reports whether p's latest StateInfo says it joined and did not
// leave. (Its org's membership of the channel is implied: StateInfo is only
// accepted from peers of member orgs.)
func (cs *channelState) eligible(p peer.ID) bool {
	si := cs.states[p]
	return si != nil && !si.left
}

func (cs *channelState) closeSubscriptions(err error) {
	for _, s := range cs.subs {
		s.fail(err)
	}
	cs.subs = nil
}

// deliverLocked persists blocks (the run the ledger said is ready), commits
// them to the ledger and hands them, in order, to every subscription. If the
// store refuses them nothing is delivered: they stay held and the next
// arrival retries, so the store never has a gap and subscribers never see
// a block the store lost.
func (n *Node) deliverLocked(cs *channelState, blocks []*block) error {
	if len(blocks) == 0 {
		return nil
	}
	if n.store != nil {
		batch := make([]store.Block, len(blocks))
		for i, b := range blocks {
			raw, err := proto.Marshal(b.env)
			if err != nil {
				return err
			}
			batch[i] = store.Block{Number: b.msg.GetNumber(), Hash: b.hash, Envelope: raw}
		}
		if err := n.store.AppendBatch(cs.name, batch); err != nil {
			n.metrics.storeErrors.Inc()
			n.log.Error("persisting blocks", "channel", cs.name, "block", blocks[0].msg.GetNumber(), "err", err)
			return err
		}
	}
	cs.ledger.commit(blocks)
	kept := cs.subs[:0]
	for _, s := range cs.subs {
		ok := true
		for _, b := range blocks {
			if !s.push(publicBlock(b)) {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, s)
		}
	}
	clear(cs.subs[len(kept):])
	cs.subs = kept
	now := n.now()
	for _, b := range blocks {
		n.metrics.blocksDelivered.Inc()
		if pub, _ := peer.IDFromBytes(b.msg.GetPublisher()); pub != n.self {
			n.metrics.deliveryLatency.Observe(max(0, now.Sub(time.Unix(0, b.msg.GetPublishedAt())).Seconds()))
		}
		n.tracer.BlockDelivered(publicBlock(b))
	}
	if cs.joined {
		cs.dirty = true // the ledger height moved: publish it
	}
	return nil
}

// JoinChannel joins channel ch: this peer starts publishing StateInfo for
// it, becomes eligible for its blocks and pulls what it misses.
func (n *Node) JoinChannel(ch string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	cs, err := n.channelLocked(ch)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	if cs.joined && !cs.left {
		n.mu.Unlock()
		return nil
	}
	if err := n.saveChannelStateLocked(ch, store.ChannelState{Joined: true}); err != nil {
		n.mu.Unlock()
		return err
	}
	cs.joined, cs.left = true, false
	msg, key := n.signStateInfoLocked(cs)
	n.invalidateViewLocked()
	n.mu.Unlock()
	n.emitIf(msg, key)
	return nil
}

// LeaveChannel leaves channel ch: this peer publishes a StateInfo with the
// left flag, stops pulling, and ends its subscriptions. Other peers stop
// sending it the channel's blocks as soon as they see the StateInfo.
func (n *Node) LeaveChannel(ch string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	cs, err := n.channelLocked(ch)
	if err != nil || !cs.joined || cs.left {
		n.mu.Unlock()
		if err == nil {
			err = ErrNotJoined
		}
		return err
	}
	if err := n.saveChannelStateLocked(ch, store.ChannelState{Joined: true, Left: true}); err != nil {
		n.mu.Unlock()
		return err
	}
	cs.left = true
	cs.closeSubscriptions(ErrNotJoined)
	msg, key := n.signStateInfoLocked(cs)
	n.invalidateViewLocked()
	n.mu.Unlock()
	n.emitIf(msg, key)
	return nil
}

func (n *Node) channelLocked(ch string) (*channelState, error) {
	if _, ok := n.network().Channel(ch); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownChannel, ch)
	}
	cs := n.channels[ch]
	if cs == nil {
		return nil, fmt.Errorf("%w: org %s, channel %q", ErrNotMember, n.org, ch)
	}
	return cs, nil
}

func (n *Node) joinedLocked() []string {
	var out []string
	for name, cs := range n.channels {
		if cs.joined && !cs.left {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// signStateInfoLocked signs this peer's current StateInfo for cs, records it
// and returns it for the emitter (nil if signing failed, which is logged).
func (n *Node) signStateInfoLocked(cs *channelState) (*outMsg, string) {
	n.seq++
	si := &wire.StateInfo{
		PeerId:       []byte(n.self),
		ChannelMac:   channelMAC(n.self, cs.name),
		LedgerHeight: cs.ledger.height,
		Left:         cs.left,
		Incarnation:  n.inc,
		Sequence:     n.seq,
	}
	env, err := transport.Sign(n.key, &wire.Message{Content: &wire.Message_StateInfo{StateInfo: si}})
	if err != nil {
		n.log.Error("signing StateInfo", "channel", cs.name, "err", err)
		return nil, ""
	}
	cs.states[n.self] = &stateInfo{height: si.LedgerHeight, left: si.Left, inc: si.Incarnation, seq: si.Sequence, env: env}
	cs.dirty = false
	cs.lastPublished = n.now()
	return &outMsg{
		Kind:           routing.KindStateInfo,
		Channel:        cs.name,
		Origin:         n.self,
		OriginOrg:      n.org,
		OriginExternal: n.external,
		Payload:        env,
	}, stateInfoKey(n.self, cs.name)
}

func stateInfoKey(p peer.ID, ch string) string { return "si/" + string(p) + "/" + ch }

func (n *Node) emitIf(m *outMsg, key string) {
	if m != nil {
		n.emit(*m, key)
	}
}

// Publish signs data as the next block of channel ch, delivers it locally and
// pushes it. Only a peer whose org may publish on ch can; a channel is meant
// to have one publishing peer at a time (the role Fabric's orderer plays):
// two peers publishing concurrently would both claim the same number.
// Concurrent calls on one peer take consecutive numbers.
func (n *Node) Publish(ctx context.Context, ch string, data []byte) (Block, error) {
	if err := ctx.Err(); err != nil {
		return Block{}, err
	}
	if len(data) > n.cfg.MaxBlockBytes {
		return Block{}, fmt.Errorf("%w: %d bytes, MaxBlockBytes %d", ErrBlockTooLarge, len(data), n.cfg.MaxBlockBytes)
	}
	n.mu.Lock()
	cs, err := n.publishableLocked(ch)
	n.mu.Unlock()
	if err != nil {
		return Block{}, err
	}
	// The block is hashed and signed outside n.mu, which every handler of
	// this peer takes: for a block of megabytes that is milliseconds of CPU.
	// publishMu keeps this peer's publications of ch in turn; the number and
	// previous hash read before signing are checked again when the block is
	// added, and a block of another publisher that took the number in
	// between means signing again.
	cs.publishMu.Lock()
	defer cs.publishMu.Unlock()
	dh := sha256.Sum256(data)
	for {
		n.mu.Lock()
		err := n.stillPublishableLocked(ch, cs)
		num, prev := cs.ledger.height, cs.ledger.lastHash
		n.mu.Unlock()
		if err != nil {
			return Block{}, err
		}
		msg := &wire.Block{
			Channel:              ch,
			Number:               num,
			PreviousHash:         prev,
			DataHash:             dh[:],
			Data:                 data,
			Publisher:            []byte(n.self),
			PublisherCertificate: n.cert,
			PublishedAt:          n.now().UnixNano(),
		}
		env, err := transport.Sign(n.key, &wire.Message{Content: &wire.Message_Block{Block: msg}})
		if err != nil {
			return Block{}, fmt.Errorf("node: signing block: %w", err)
		}
		b := &block{env: env, msg: msg, hash: BlockHash(msg), size: envSize(env)}

		n.mu.Lock()
		if err := n.stillPublishableLocked(ch, cs); err != nil {
			n.mu.Unlock()
			return Block{}, err
		}
		if cs.ledger.height != num {
			n.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return Block{}, err
			}
			continue
		}
		ready, _ := cs.ledger.add(b)
		// Persist before anything leaves this peer: a block that is not
		// durable here is never sent, so a restart cannot sign another block
		// with its number after the first went out.
		if err := n.deliverLocked(cs, ready); err != nil {
			delete(cs.ledger.blocks, msg.Number)
			n.mu.Unlock()
			return Block{}, fmt.Errorf("node: storing block %d of %q: %w", msg.Number, ch, err)
		}
		pb := publicBlock(b)
		n.tracer.BlockAccepted(pb, n.self, ViaPublish)
		n.mu.Unlock()
		n.emit(outMsg{
			Kind:           routing.KindBlock,
			Channel:        ch,
			Origin:         n.self,
			OriginOrg:      n.org,
			OriginExternal: n.external,
			CrossOrg:       n.external,
			Payload:        env,
		}, "")
		return pb, nil
	}
}

// publishableLocked returns the state of channel ch if this peer may publish
// on it now: open, joined and not left, and its org a publisher of ch.
func (n *Node) publishableLocked(ch string) (*channelState, error) {
	if n.closed {
		return nil, ErrClosed
	}
	cs, err := n.channelLocked(ch)
	if err != nil {
		return nil, err
	}
	if !cs.joined || cs.left {
		return nil, fmt.Errorf("%w: %q", ErrNotJoined, ch)
	}
	if !n.network().MayPublish(n.org, ch) {
		return nil, fmt.Errorf("%w: org %s, channel %q", ErrMayNotPublish, n.org, ch)
	}
	return cs, nil
}

// stillPublishableLocked is publishableLocked for a Publish under way on cs,
// which the channel may have lost to a network config update meanwhile.
func (n *Node) stillPublishableLocked(ch string, cs *channelState) error {
	got, err := n.publishableLocked(ch)
	if err == nil && got != cs {
		err = fmt.Errorf("%w: org %s, channel %q", ErrNotMember, n.org, ch)
	}
	return err
}

// Height returns the ledger height of channel ch: the next block number it
// expects to deliver.
func (n *Node) Height(ch string) (uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs, err := n.channelLocked(ch)
	if err != nil {
		return 0, err
	}
	return cs.ledger.height, nil
}

// subscriptionBuffer is how many delivered blocks a subscription holds for a
// reader that has not caught up; past it the subscription ends with
// ErrSlowSubscriber rather than holding blocks without bound.
const subscriptionBuffer = 4096

// Subscribe delivers every block of channel ch delivered from now on, exactly
// once and in order, until the Subscription is closed, the channel is left or
// the node closes. The channel must be joined.
func (n *Node) Subscribe(ch string) (*Subscription, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	cs, err := n.channelLocked(ch)
	if err != nil {
		return nil, err
	}
	if !cs.joined || cs.left {
		return nil, fmt.Errorf("%w: %q", ErrNotJoined, ch)
	}
	s := &Subscription{notify: make(chan struct{}, 1), limit: subscriptionBuffer}
	s.cancel = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if i := slices.Index(cs.subs, s); i >= 0 {
			cs.subs = slices.Delete(cs.subs, i, i+1)
		}
	}
	cs.subs = append(cs.subs, s)
	return s, nil
}

// Subscription is an ordered stream of a channel's delivered blocks.
type Subscription struct {
	mu     sync.Mutex
	queue  []Block
	err    error
	limit  int
	notify chan struct{}
	cancel func()
	once   sync.Once
}

// push queues b; it returns false, ending the subscription, when the reader
// is too far behind.
func (s *Subscription) push(b Block) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	if len(s.queue) >= s.limit {
		s.err = ErrSlowSubscriber
		s.queue = nil
		s.wake()
		return false
	}
	s.queue = append(s.queue, b)
	s.wake()
	return true
}

func (s *Subscription) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.wake()
}

func (s *Subscription) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next returns the next block, waiting for it until ctx ends. After the
// subscription ends it returns the blocks still queued, then the reason.
func (s *Subscription) Next(ctx context.Context) (Block, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			b := s.queue[0]
			s.queue[0] = Block{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return b, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return Block{}, err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return Block{}, ctx.Err()
		}
	}
}

// Close ends the subscription; Next then returns ErrClosed.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.cancel()
		s.fail(ErrClosed)
	})
}

// Blocks returns up to limit delivered blocks of channel ch numbered from
// from on: from the store when the node has one (WithStore), else from the
// in-memory window of the last MaxBlockCountToStore delivered blocks.
func (n *Node) Blocks(ch string, from uint64, limit int) ([]Block, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs, err := n.channelLocked(ch)
	if err != nil {
		return nil, err
	}
	var out []Block
	for _, b := range n.fetchLocked(cs, []*wire.Range{{First: from, Last: math.MaxUint64}}, limit, math.MaxInt) {
		if b.msg.GetNumber() >= cs.ledger.height {
			break // held, not yet delivered
		}
		out = append(out, publicBlock(b))
	}
	return out, nil
}

// fetchLocked returns the blocks named by rs, ascending, bounded like
// ledger.get: from the in-memory window, and, for delivered blocks that fell
// out of it, from the store.
func (n *Node) fetchLocked(cs *channelState, rs []*wire.Range, maxCount, maxBytes int) []*block {
	var load func(uint64) *block
	if n.store != nil {
		load = func(num uint64) *block { return n.loadBlock(cs.name, num) }
	}
	return cs.ledger.get(rs, maxCount, maxBytes, load)
}

// loadBlock reads a delivered block back from the store, or nil.
func (n *Node) loadBlock(ch string, num uint64) *block {
	raw, err := n.store.Get(ch, num)
	if err != nil {
		return nil
	}
	return decodeStoredBlock(raw)
}

// decodeStoredBlock rebuilds a block from its stored envelope. The store
// checksums what it returns; this only parses.
func decodeStoredBlock(raw []byte) *block {
	env := new(wire.Envelope)
	if proto.Unmarshal(raw, env) != nil {
		return nil
	}
	var m wire.Message
	if proto.Unmarshal(env.GetPayload(), &m) != nil || m.GetBlock() == nil {
		return nil
	}
	return &block{env: env, msg: m.GetBlock(), hash: BlockHash(m.GetBlock()), size: len(raw)}
}

func (n *Node) saveChannelStateLocked(ch string, st store.ChannelState) error {
	if n.store == nil {
		return nil
	}
	if err := n.store.PutChannelState(ch, st); err != nil {
		return fmt.Errorf("node: storing the state of channel %q: %w", ch, err)
	}
	return nil
}
