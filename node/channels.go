package node

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Channels: what this peer holds about each channel its org is a member of.
// Each channel owns its state and its lock (cs.mu): the ledger, the verified
// StateInfo of its members, its subscriptions. Nothing under cs.mu does I/O
// or calls out: persistence is the writer's (writer.go), and subscribers are
// served after the lock is released. The membership lock (n.mu) may be held
// while taking cs.mu, never the other way round.

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
	// Chunked says the block travels as a signed header and chunks: its
	// Data is nil in BlockAccepted, whole from BlockCompleted on.
	Chunked bool
}

func publicBlock(b *block) Block {
	pub, _ := peer.IDFromBytes(b.msg.GetPublisher())
	data := b.msg.GetData()
	if b.chunks != nil {
		// nil until complete. Read without the channel's lock only for a
		// block no other goroutine can change: complete (delivered,
		// published) or not yet in the ledger.
		data = b.chunks.data()
	}
	return Block{
		Channel:      b.msg.GetChannel(),
		Number:       b.msg.GetNumber(),
		PreviousHash: b.msg.GetPreviousHash(),
		DataHash:     b.msg.GetDataHash(),
		Data:         data,
		Publisher:    pub,
		PublishedAt:  time.Unix(0, b.msg.GetPublishedAt()),
		Hash:         b.hash,
		Chunked:      b.chunks != nil,
	}
}

// stateInfo is a verified StateInfo of one peer for one channel.
type stateInfo struct {
	height   uint64
	left     bool
	inc, seq uint64
	env      *wire.Envelope
	chunks   bool // it announced that it assembles chunked blocks
}

// channelState is everything this peer holds about one channel its org is a
// member of, joined or not.
type channelState struct {
	name string

	mu      sync.Mutex // guards the fields below
	joined  bool
	left    bool
	ledger  *ledger
	states  map[peer.ID]*stateInfo // verified StateInfo, self included once joined
	subs    []*Subscription
	pending []*block // staged for the writer, in order
	// Own StateInfo publication: dirty when it changed since last published.
	dirty         bool
	lastPublished time.Time

	wake chan struct{} // tells the writer that blocks were staged
	quit chan struct{} // closed when the channel leaves the network config

	// loadMu serialises reading chunked blocks back from the store to
	// serve them, and guards loaded, the last one read: a peer pulling a
	// block's chunks asks many times, and each read is the whole block.
	loadMu sync.Mutex
	loaded *block

	// publishMu keeps this peer's Publish calls on the channel in turn, and
	// joinMu its joins and leaves (which write to the store); both are taken
	// before mu, never while holding it.
	publishMu sync.Mutex
	joinMu    sync.Mutex
}

func newChannelState(name string, cfg Config) *channelState {
	l := newLedger(cfg.MaxBlockCountToStore, 2*cfg.MaxBlockCountToStore)
	l.chunkedWindow = cfg.MaxChunkedWindowBytes
	return &channelState{
		name:   name,
		ledger: l,
		states: make(map[peer.ID]*stateInfo),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
	}
}

// eligibleLocked reports whether p's latest StateInfo says it joined and did
// not leave. (Its org's membership of the channel is implied: StateInfo is
// only accepted from peers of member orgs.)
func (cs *channelState) eligibleLocked(p peer.ID) bool {
	si := cs.states[p]
	return si != nil && !si.left
}

// activeLocked reports whether this peer takes part in the channel now.
func (cs *channelState) activeLocked() bool { return cs.joined && !cs.left }

func (cs *channelState) closeSubscriptionsLocked(err error) {
	for _, s := range cs.subs {
		s.fail(err)
	}
	cs.subs = nil
}

func (cs *channelState) removeSubsLocked(gone ...*Subscription) {
	cs.subs = slices.DeleteFunc(cs.subs, func(s *Subscription) bool { return slices.Contains(gone, s) })
}

// channel returns the state of channel ch, or nil if this peer's org is not a
// member of it.
func (n *Node) channel(ch string) *channelState { return (*n.channels.Load())[ch] }

// channelList returns every channel's state, ordered by name.
func (n *Node) channelList() []*channelState {
	m := *n.channels.Load()
	out := make([]*channelState, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

// lookupChannel returns the state of ch, or the error that names why there
// is none.
func (n *Node) lookupChannel(ch string) (*channelState, error) {
	if _, ok := n.network().Channel(ch); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownChannel, ch)
	}
	cs := n.channel(ch)
	if cs == nil {
		return nil, fmt.Errorf("%w: org %s, channel %q", ErrNotMember, n.org, ch)
	}
	return cs, nil
}

// joinedChannel returns the state of ch if the node is open and has joined
// ch and not left it.
func (n *Node) joinedChannel(ch string) (*channelState, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	cs, err := n.lookupChannel(ch)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	active := cs.activeLocked()
	cs.mu.Unlock()
	if !active {
		return nil, fmt.Errorf("%w: %q", ErrNotJoined, ch)
	}
	return cs, nil
}

// joined returns the channels this peer has joined and not left, by name.
func (n *Node) joined() []string {
	var out []string
	for _, cs := range n.channelList() {
		cs.mu.Lock()
		if cs.activeLocked() {
			out = append(out, cs.name)
		}
		cs.mu.Unlock()
	}
	return out
}

// JoinChannel joins channel ch: this peer starts publishing StateInfo for
// it, becomes eligible for its blocks and pulls what it misses.
func (n *Node) JoinChannel(ch string) error {
	return n.setJoined(ch, true)
}

// LeaveChannel leaves channel ch: this peer publishes a StateInfo with the
// left flag, stops pulling, and ends its subscriptions. Other peers stop
// sending it the channel's blocks as soon as they see the StateInfo.
func (n *Node) LeaveChannel(ch string) error {
	return n.setJoined(ch, false)
}

// setJoined records the join or leave durably, then applies it and
// announces it with a fresh StateInfo.
func (n *Node) setJoined(ch string, join bool) error {
	if n.closed.Load() {
		return ErrClosed
	}
	cs, err := n.lookupChannel(ch)
	if err != nil {
		return err
	}
	cs.joinMu.Lock()
	defer cs.joinMu.Unlock()
	cs.mu.Lock()
	active := cs.activeLocked()
	cs.mu.Unlock()
	switch {
	case join && active:
		return nil
	case !join && !active:
		return ErrNotJoined
	}
	if n.store != nil {
		if err := n.store.PutChannelState(ch, store.ChannelState{Joined: true, Left: !join}); err != nil {
			return fmt.Errorf("node: storing the state of channel %q: %w", ch, err)
		}
	}
	cs.mu.Lock()
	cs.joined, cs.left = true, !join
	if !join {
		cs.closeSubscriptionsLocked(ErrNotJoined)
	}
	msg, key := n.signStateInfoLocked(cs)
	cs.mu.Unlock()
	n.invalidateView()
	n.emitIf(msg, key)
	return nil
}

// Height returns the ledger height of channel ch: the next block number it
// expects to deliver.
func (n *Node) Height(ch string) (uint64, error) {
	cs, err := n.lookupChannel(ch)
	if err != nil {
		return 0, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.ledger.height, nil
}
