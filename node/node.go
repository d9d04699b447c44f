package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fabgossip/fabgossip/batching"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// Errors callers test for.
var (
	// ErrClosed is returned by calls on a Node after Close.
	ErrClosed = errors.New("node: closed")
	// ErrNotStarted is returned by calls that need the network before Start.
	ErrNotStarted = errors.New("node: not started")
	// ErrUnknownChannel names a channel the network config does not have.
	ErrUnknownChannel = errors.New("node: unknown channel")
	// ErrNotMember is returned when this peer's org is not a member of the
	// channel.
	ErrNotMember = errors.New("node: org is not a member of the channel")
	// ErrNotJoined is returned for a channel this peer has not joined.
	ErrNotJoined = errors.New("node: channel not joined")
	// ErrMayNotPublish is returned by Publish when this peer's org may not
	// publish on the channel.
	ErrMayNotPublish = errors.New("node: org may not publish on the channel")
	// ErrBlockTooLarge is returned by Publish for data above MaxBlockBytes.
	ErrBlockTooLarge = errors.New("node: block data too large")
	// ErrSlowSubscriber ends a Subscription whose reader fell more than its
	// buffer behind: the node does not hold blocks without bound for it.
	ErrSlowSubscriber = errors.New("node: subscriber too slow")
)

// Identity is who this peer is: the network it belongs to, its key, its
// org's membership certificate for it, and whether other orgs may reach it.
type Identity struct {
	Network     *identity.Network
	Key         crypto.PrivKey
	Certificate *wire.Certificate
	// External makes this peer reachable by other orgs (Fabric's external
	// endpoint). A peer that is not external is invisible outside its org.
	External bool
}

// Node is a fabgossip peer: membership, channels, push and pull over a
// libp2p host. Its methods are safe for concurrent use.
//
// It composes parts cut by concern, each owning its state and its lock:
// membership (members.go, hello.go; the membership lock mu), channels
// (channels.go, stateinfo.go, the ledger and its persistence writer; one
// lock per channel), dissemination (dissemination.go; the emitter's
// goroutine) and anti-entropy (antientropy.go). Who may learn what is asked
// of routing's audience predicates, through the view (view.go). Lock order:
// mu before a channel's lock, never the reverse; no disk, network or
// callback runs under either.
type Node struct {
	cfg      Config
	net      atomic.Pointer[identity.Network] // swapped by UpdateNetwork
	key      atomic.Pointer[crypto.PrivKey]   // swapped only by tests
	self     peer.ID
	org      string
	external bool
	cert     *wire.Certificate
	certs    *identity.CertCache // CA signatures already checked
	host     host.Host
	tr       Network
	emitter  *batching.Emitter[outMsg]
	log      *slog.Logger
	tracer   tracerDispatch
	now      func() time.Time
	metrics  *metrics
	planCfg  routing.Config
	seed     uint64
	store    store.Store // nil: the in-memory window only
	gater    Gater

	// channels holds a state for every channel of the network config whose
	// orgs include ours; replaced whole (under mu) by UpdateNetwork.
	channels  atomic.Pointer[map[string]*channelState]
	viewVer   atomic.Uint64 // bumped on every change that affects routing
	viewCache atomic.Pointer[cachedView]
	inc       uint64        // this peer's incarnation
	seq       atomic.Uint64 // the sequence of its alive and StateInfo messages
	closed    atomic.Bool

	mu          sync.Mutex // the membership lock: guards the fields below
	members     *membership
	ownAlive    *wire.Envelope // this peer's latest full alive, Secret included
	ownAliveSeq uint64
	lastBeat    uint64                // the sequence of this peer's latest heartbeat, full or slim
	startedAt   time.Time             // when Start ran: heartbeats carry the certificate for PublishCertPeriod after
	lastAsked   time.Time             // when a heartbeat about an unknown peer last started a membership exchange
	suspects    map[peer.ID]time.Time // peers that served forged blocks, left out of pull until then
	started     bool
	loopRng     *rand.Rand

	planRng      *rand.Rand // owned by the emitter's flush goroutine
	maxEnvelopes int        // per push frame: the transport's MaxBatchEnvelopes
	maxControl   int        // per push frame: the transport's MaxBatchControl
	tree         *treeState // nil with DisseminationFabric
	pullKick     chan struct{}
	chunked      *chunkState // chunked blocks' assemblies and stalled sends (chunked.go)

	restored map[string]*channelState // channel states read from the store, until New installs them

	notifyOnce sync.Once
	notify     *network.NotifyBundle
	pendingMu  sync.Mutex
	pending    map[peer.ID]bool           // peers queued for a handshake
	rejected   map[peer.ID]time.Time      // peers rejected, not greeted again until then
	strangers  map[peer.ID]*strangerWatch // inbound connections awaiting their hello
	scores     *scoreBook                 // misbehaviour scores and rejection strikes
	helloQ     chan peer.ID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Network is how a node reaches its peers: the transport New builds on the
// host, or a test's wrapper around it (loss, tampering, partitions are
// injected there, never by hooks in the node).
type Network interface {
	Send(to peer.ID, b *wire.Batch) error
	Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error)
	Hello(ctx context.Context, to peer.ID, req *wire.Hello) (*wire.Hello, error)
	Close() error
}

// Handlers are the node's side of its Network: what it does with inbound
// push batches, pull requests and hellos.
type Handlers struct {
	// Push may give a batch back (see transport.LendingPushHandler): a
	// Network that reuses the memory of batches the node does not keep
	// saves an allocation per frame of duplicates or refused blocks.
	Push  transport.LendingPushHandler
	Pull  transport.PullHandler
	Hello transport.HelloHandler
}

// Gater keeps a peer out for a while; *p2phost.Gater is one.
type Gater interface {
	Block(p peer.ID, reason string)
}

// protectTag is the connection-manager tag protecting connections to peers
// that share a channel with this one.
const protectTag = "fabgossip-channel"

// New builds a Node on host h, which must use id.Key as its identity (use
// NewHost to build one from a p2phost.Config). The node owns nothing of h:
// Close leaves the host running.
func New(id Identity, h host.Host, cfg Config, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if id.Network == nil || id.Key == nil || id.Certificate == nil {
		return nil, errors.New("node: Identity needs a Network, a Key and a Certificate")
	}
	self, err := peer.IDFromPrivateKey(id.Key)
	if err != nil {
		return nil, fmt.Errorf("node: peer ID of key: %w", err)
	}
	if h.ID() != self {
		return nil, fmt.Errorf("node: host identity %s is not the key's peer ID %s", h.ID(), self)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	verified, err := identity.VerifyCertificate(id.Network, id.Certificate, self, o.now())
	if err != nil {
		return nil, fmt.Errorf("node: own certificate: %w", err)
	}
	n := &Node{
		cfg:       cfg,
		self:      self,
		org:       verified.Org,
		external:  id.External,
		cert:      id.Certificate,
		certs:     identity.NewCertCache(0),
		host:      h,
		log:       o.logger.With("peer", self.String(), "org", verified.Org),
		tracer:    tracerDispatch(o.tracers),
		now:       o.now,
		planCfg:   routing.Config{PropagatePeerNum: cfg.PropagatePeerNum, CrossOrgPeerNum: cfg.CrossOrgPeerNum},
		seed:      o.seed,
		members:   newMembership(),
		planRng:   rand.New(rand.NewPCG(o.seed, 1)),
		loopRng:   rand.New(rand.NewPCG(o.seed, 2)),
		helloQ:    make(chan peer.ID, 1024),
		pending:   make(map[peer.ID]bool),
		rejected:  make(map[peer.ID]time.Time),
		strangers: make(map[peer.ID]*strangerWatch),
		scores:    newScoreBook(),
		suspects:  make(map[peer.ID]time.Time),
		gater:     o.gater,
		store:     o.store,
		inc:       uint64(o.now().UnixNano()),
	}
	n.key.Store(&id.Key)
	n.metrics, err = newMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	n.net.Store(id.Network)
	n.channels.Store(&map[string]*channelState{})
	if err := n.restore(id.Network); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.mu.Lock()
	n.applyNetworkLocked(id.Network)
	n.mu.Unlock()
	ecfg := batching.DefaultConfig()
	ecfg.Iterations = cfg.PropagateIterations
	ecfg.BurstSize = cfg.MaxPropagationBurstSize
	ecfg.Latency = cfg.MaxPropagationBurstLatency
	ecfg.MaxBatchBytes = transport.DefaultConfig().MaxFrameSize / 2
	n.emitter, err = batching.New(ecfg, n.sendBatch)
	if err != nil {
		n.stop()
		return nil, err
	}
	n.pullKick = make(chan struct{}, 1)
	n.chunked = newChunkState()
	if cfg.Dissemination == DisseminationTree && cfg.PropagateIterations > 0 { // 0: push off, pull only
		if n.tree, err = n.newTree(cfg); err != nil {
			n.emitter.Close()
			n.stop()
			return nil, err
		}
	}
	topts := []transport.Option{transport.WithLogger(n.log), transport.WithTracer(evidenceTracer{n: n})}
	for _, t := range o.transportTracers {
		topts = append(topts, transport.WithTracer(t))
	}
	n.maxEnvelopes = o.transport.MaxBatchEnvelopes
	n.maxControl = o.transport.MaxBatchControl
	// Nothing is read from a peer on push or pull before it is a live member
	// this peer may talk to: its hello completed, or its alive was verified.
	topts = append(topts, transport.WithAdmission(n.admitted))
	handlers := Handlers{Push: n.handlePush, Pull: n.handlePull, Hello: n.handleHello}
	n.tr, err = o.network(h, o.transport, handlers, topts...)
	if err != nil {
		n.emitter.Close()
		n.closeTree()
		n.stop()
		return nil, err
	}
	return n, nil
}

// Start connects the node to the network: it starts the hello handshake on
// every connection, the heartbeat, StateInfo and pull loops.
func (n *Node) Start() error {
	n.mu.Lock()
	if n.closed.Load() || n.started {
		n.mu.Unlock()
		if n.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	n.started = true
	n.startedAt = n.now()
	n.host.Network().Notify(n.notifiee())
	n.goLoop(n.helloLoop)
	n.goLoop(n.aliveLoop)
	n.goLoop(n.membershipSyncLoop)
	n.goLoop(n.stateInfoLoop)
	n.goLoop(n.pullLoop)
	n.goLoop(n.chunkLoop)
	if n.tree != nil {
		n.goLoop(func(ctx context.Context) { n.treeLoop(ctx.Done()) })
	}
	n.mu.Unlock()
	for _, c := range n.host.Network().Conns() {
		n.connected(c)
	}
	n.emitAlive()
	return nil
}

func (n *Node) goLoop(f func(ctx context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.ctx)
	}()
}

// Close stops every loop, the emitter and the transport, ends every
// subscription, and waits for all of them. It is idempotent. The host stays up.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed.Swap(true) {
		n.mu.Unlock()
		return nil
	}
	n.mu.Unlock()
	for _, cs := range n.channelList() {
		cs.mu.Lock()
		cs.closeSubscriptionsLocked(ErrClosed)
		cs.mu.Unlock()
	}
	n.host.Network().StopNotify(n.notifiee())
	n.emitter.Close()
	n.closeTree()
	err := n.tr.Close()
	n.stop()
	return err
}

// admitted reports whether the transport may read push and pull streams
// from p: p is a live member the audience lets this peer talk to, and not
// rejected within its back-off. A stranger's refused streams are counted
// (refusedStranger).
func (n *Node) admitted(p peer.ID, _ protocol.ID) bool {
	if n.rejectedRecently(p) {
		return false
	}
	v := n.view()
	if m, ok := v.member(p); ok && v.MayTalk(m) {
		return true
	}
	n.refusedStranger(p)
	return false
}

// closeTree flushes and stops the tree's control emitter.
func (n *Node) closeTree() {
	if n.tree != nil {
		n.tree.ctrl.Close()
	}
}

// newRand returns a generator for one of the node's uses (stream), seeded.
func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// stop ends the node's goroutines (loops, writers) and waits for them.
func (n *Node) stop() {
	n.cancel()
	n.wg.Wait()
}

// signingKey returns the key this peer signs with.
func (n *Node) signingKey() crypto.PrivKey { return *n.key.Load() }

// Self returns this peer's description.
func (n *Node) Self() Peer {
	return Peer{ID: n.self, Org: n.org, External: n.external, Alive: true, Channels: n.joined()}
}

// Peer describes a known peer.
type Peer struct {
	ID       peer.ID
	Org      string
	External bool
	Alive    bool
	// Channels holds the channels for which the peer's verified StateInfo
	// says it has joined.
	Channels []string
}

// Peers returns every known peer, alive or dead, but not self.
func (n *Node) Peers() []Peer {
	n.mu.Lock()
	out := make([]Peer, 0, len(n.members.members))
	for _, m := range n.members.members {
		out = append(out, Peer{ID: m.id, Org: m.org, External: m.external, Alive: !m.dead})
	}
	n.mu.Unlock()
	for _, cs := range n.channelList() {
		cs.mu.Lock()
		for i := range out {
			if cs.eligibleLocked(out[i].ID) {
				out[i].Channels = append(out[i].Channels, cs.name)
			}
		}
		cs.mu.Unlock()
	}
	sortPeers(out)
	return out
}

// ChannelPeers returns the live peers eligible for channel ch: their org is
// a member and their verified StateInfo says they joined and did not leave.
func (n *Node) ChannelPeers(ch string) []Peer {
	var out []Peer
	for _, p := range n.Peers() {
		if !p.Alive {
			continue
		}
		for _, c := range p.Channels {
			if c == ch {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// network returns the network config in force.
func (n *Node) network() *identity.Network { return n.net.Load() }

// UpdateNetwork puts a changed network config in force (Fabric's channel
// config update): a channel that no longer lists this peer's org is left
// at once and its subscriptions end with ErrNotMember; StateInfo of peers
// whose org left a channel is dropped at once, so they stop being eligible
// for it; new channels of this org can be joined. The network name and
// this peer's org must stay.
func (n *Node) UpdateNetwork(net *identity.Network) error {
	if net == nil || net.Name() != n.network().Name() {
		return errors.New("node: UpdateNetwork needs a config of the same network")
	}
	if _, ok := net.Org(n.org); !ok {
		return fmt.Errorf("node: the new network config has no org %s", n.org)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return ErrClosed
	}
	n.net.Store(net)
	n.applyNetworkLocked(net)
	n.invalidateView()
	return nil
}

// applyNetworkLocked (mu held) derives the per-channel state from net: a
// channel that no longer lists this peer's org is dropped, its subscriptions
// ended and its writer stopped; a new one gets a state and a writer; the
// StateInfo of peers whose org left a channel is forgotten.
func (n *Node) applyNetworkLocked(net *identity.Network) {
	mine := net.ChannelsOfOrg(n.org)
	old := *n.channels.Load()
	next := make(map[string]*channelState, len(mine))
	for name, cs := range old {
		if !slices.Contains(mine, name) {
			cs.mu.Lock()
			cs.closeSubscriptionsLocked(ErrNotMember)
			cs.mu.Unlock()
			close(cs.quit)
		}
	}
	orgs := net.ChannelOrgs()
	for _, ch := range mine {
		cs := old[ch]
		if cs == nil {
			cs = n.restored[ch]
		}
		if cs == nil {
			cs = newChannelState(ch, n.cfg)
		}
		if old[ch] == nil {
			n.wg.Go(func() { n.runWriter(cs) })
		}
		next[ch] = cs
		cs.mu.Lock()
		for id := range cs.states {
			if m := n.members.get(id); id != n.self && (m == nil || !slices.Contains(orgs[ch], m.org)) {
				delete(cs.states, id)
			}
		}
		cs.mu.Unlock()
	}
	n.restored = nil
	n.channels.Store(&next)
}

// restore loads what the store holds, for each channel of this peer's org:
// its height, last hash and the blocks of its window, and whether this peer
// had joined or left it. A rejoined channel's StateInfo goes out with the
// first publication tick.
func (n *Node) restore(net *identity.Network) error {
	n.restored = make(map[string]*channelState)
	for _, name := range net.ChannelsOfOrg(n.org) {
		n.restored[name] = newChannelState(name, n.cfg)
	}
	if n.store == nil {
		return nil
	}
	states, err := n.store.ChannelStates()
	if err != nil {
		return fmt.Errorf("node: reading channel states: %w", err)
	}
	for name, cs := range n.restored {
		h, err := n.store.Height(name)
		if err != nil {
			return fmt.Errorf("node: reading the height of %q: %w", name, err)
		}
		last, err := n.store.LastHash(name)
		if err != nil {
			return fmt.Errorf("node: reading the last hash of %q: %w", name, err)
		}
		cs.ledger.restore(h, last)
		from := h - min(h, cs.ledger.window)
		err = n.store.Range(name, from, int(cs.ledger.window), math.MaxInt, func(num uint64, raw []byte) bool {
			if b := decodeStoredBlock(raw); b != nil {
				cs.ledger.blocks[num] = b
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("node: reading the blocks of %q: %w", name, err)
		}
		if st, ok := states[name]; ok && st.Joined {
			cs.joined, cs.left, cs.dirty = true, st.Left, true
		}
	}
	return nil
}
