package node

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// subscriptionBuffer is how many delivered blocks a subscription holds for a
// reader that has not caught up; past it the subscription ends with
// ErrSlowSubscriber rather than holding blocks without bound.
const subscriptionBuffer = 4096

// Subscribe delivers every block of channel ch delivered from now on, exactly
// once and in order, until the Subscription is closed, the channel is left or
// the node closes. The channel must be joined.
func (n *Node) Subscribe(ch string) (*Subscription, error) {
	cs, err := n.joinedChannel(ch)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// Checked again under the lock that Close and LeaveChannel take to end
	// subscriptions, so none is added after they ran.
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if !cs.activeLocked() {
		return nil, fmt.Errorf("%w: %q", ErrNotJoined, ch)
	}
	s := &Subscription{notify: make(chan struct{}, 1), limit: subscriptionBuffer}
	s.cancel = func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		cs.removeSubsLocked(s)
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
	cs, err := n.lookupChannel(ch)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	height := cs.ledger.height
	cs.mu.Unlock()
	if from >= height {
		return nil, nil
	}
	var out []Block
	for _, b := range n.fetch(cs, []*wire.Range{{First: from, Last: height - 1}}, limit, math.MaxInt, time.Time{}) {
		out = append(out, publicBlock(b))
	}
	return out, nil
}

// fetch returns the blocks named by rs, ascending, at most maxCount of them
// and, past the first, within maxBytes of envelopes: from the in-memory
// window and, for delivered blocks that fell out of it, from the store. The
// store is read without holding the channel's lock.
func (n *Node) fetch(cs *channelState, rs []*wire.Range, maxCount, maxBytes int, settled time.Time) []*block {
	cs.mu.Lock()
	slots := cs.ledger.slots(rs, maxCount*4, n.store != nil, settled)
	cs.mu.Unlock()
	var load func(uint64) *block
	if n.store != nil {
		// Through loadServed: a chunked block is read whole, so such reads
		// go one at a time per channel, the last one kept.
		load = func(num uint64) *block { return n.loadServed(cs, num) }
	}
	return take(slots, maxCount, maxBytes, load)
}

// loadBlock reads a delivered block back from the store, or nil.
func (n *Node) loadBlock(ch string, num uint64) *block {
	raw, err := n.store.Get(ch, num)
	if err != nil {
		return nil
	}
	return decodeStoredBlock(raw)
}

// decodeStoredBlock rebuilds a block from its stored envelope, or a chunked
// block from its stored header and data (storedChunked). The store
// checksums what it returns; this only parses, and checks a chunked
// block's data against its header.
func decodeStoredBlock(raw []byte) *block {
	if envRaw, data, ok := splitStoredChunked(raw); ok {
		return decodeStoredChunked(envRaw, data)
	}
	env := new(wire.Envelope)
	if proto.Unmarshal(raw, env) != nil {
		return nil
	}
	m, ok := decodeBlock(env.GetPayload())
	if !ok {
		var msg wire.Message
		if proto.Unmarshal(env.GetPayload(), &msg) != nil || msg.GetBlock() == nil {
			return nil
		}
		m = msg.GetBlock()
	}
	return &block{env: env, msg: m, hash: BlockHash(m), size: len(raw)}
}
