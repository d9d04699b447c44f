package node_test

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// recorder is a node.Tracer shared by every peer of a cluster. Received does
// not say which peer received, so per-peer recorders are made with at().
type recorder struct {
	mu       sync.Mutex
	self     peer.ID
	parent   *recorder
	accepted map[peer.ID]map[string]int // blocks accepted from the network, by receiver and channel
	via      map[node.Path]int          // blocks accepted, by path
	chanRx   map[peer.ID]map[string]int // block envelopes received, by receiver and channel
	blocksRx map[peer.ID]int            // block envelopes received, by receiver
	dropped  map[string]int             // kind/reason
	envs     []received
}

type received struct {
	to, from peer.ID
	env      *wire.Envelope
}

func newRecorder() *recorder {
	return &recorder{
		accepted: map[peer.ID]map[string]int{}, via: map[node.Path]int{}, chanRx: map[peer.ID]map[string]int{},
		blocksRx: map[peer.ID]int{}, dropped: map[string]int{},
	}
}

// at returns a tracer for the peer self that records into r.
func (r *recorder) at(self peer.ID) node.Tracer { return &recorder{self: self, parent: r} }

func (r *recorder) root() *recorder {
	if r.parent != nil {
		return r.parent
	}
	return r
}

func (r *recorder) Received(from peer.ID, env *wire.Envelope) {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	env = proto.Clone(env).(*wire.Envelope) // valid only during the call: a given-back frame's memory is reused
	root.envs = append(root.envs, received{to: r.self, from: from, env: env})
	var m wire.Message
	if proto.Unmarshal(env.GetPayload(), &m) == nil && m.GetBlock() != nil {
		pub, _ := peer.IDFromBytes(m.GetBlock().GetPublisher())
		if pub == r.self {
			root.blocksRx[r.self]++
		}
		if root.chanRx[r.self] == nil {
			root.chanRx[r.self] = map[string]int{}
		}
		root.chanRx[r.self][m.GetBlock().GetChannel()]++
	}
}

func (r *recorder) BlockAccepted(b node.Block, from peer.ID, via node.Path) {
	if via == node.ViaPublish {
		return
	}
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	if root.accepted[r.self] == nil {
		root.accepted[r.self] = map[string]int{}
	}
	root.accepted[r.self][b.Channel]++
	root.via[via]++
}

func (r *recorder) BlockDelivered(node.Block) {}

func (r *recorder) Dropped(kind, reason string, _ peer.ID) {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.dropped[kind+"/"+reason]++
}

func (r *recorder) BatchSent(peer.ID, *wire.Batch) {}

// acceptedAt returns how many blocks p accepted from the network.
func (r *recorder) acceptedAt(p peer.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.accepted[p] {
		n += c
	}
	return n
}

func (r *recorder) receivedBlocksAt(p peer.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocksRx[p]
}

// acceptedVia returns how many blocks all peers accepted by path.
func (r *recorder) acceptedVia(p node.Path) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.via[p]
}

// blocksReceivedAt returns how many block envelopes of ch p received.
func (r *recorder) blocksReceivedAt(p peer.ID, ch string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.chanRx[p][ch]
}

// all returns every envelope received so far.
func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.envs...)
}

// droppedCount returns how many messages of kind were dropped for reason.
func (r *recorder) droppedCount(kind, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped[kind+"/"+reason]
}

// receivedCount returns how many envelopes all peers received.
func (r *recorder) receivedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.envs)
}
