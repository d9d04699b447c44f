package node

import (
	"context"
	"crypto/sha256"
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
type Node struct {
	cfg      Config
	net      atomic.Pointer[identity.Network] // swapped by UpdateNetwork
	key      crypto.PrivKey
	self     peer.ID
	org      string
	external bool
	cert     *wire.Certificate
	host     host.Host
	tr       *transport.Transport
	emitter  *batching.Emitter[outMsg]
	log      *slog.Logger
	tracer   tracerDispatch
	now      func() time.Time
	metrics  *metrics
	planCfg  routing.Config
	// sharesChannel holds the orgs that are members of a channel with ours;
	// replaced whole by UpdateNetwork, read without the lock.
	sharesChannel atomic.Pointer[map[string]bool]
	seed          uint64

	mu       sync.Mutex
	members  *membership
	channels map[string]*channelState // every channel of the network config whose orgs include ours
	viewVer  uint64                   // bumped on every change that affects routing
	view     routing.View             // cached for viewVer == viewAt
	viewAt   uint64
	inc, seq uint64 // this peer's alive (incarnation, sequence)
	closed   bool
	started  bool

	planRng *rand.Rand // owned by the emitter's flush goroutine
	loopRng *rand.Rand // guarded by mu

	ownAlive    *wire.Envelope                      // this peer's latest alive, Secret included; guarded by mu
	suspects    map[peer.ID]time.Time               // peers that served forged blocks, left out of pull until then
	store       store.Store                         // nil: the in-memory window only
	pushLoss    func() bool                         // test hook: drop an inbound push frame when it returns true
	fetchTamper func(*wire.Envelope) *wire.Envelope // test hook: a byzantine fetch responder; guarded by mu
	gater       Gater

	notifyOnce sync.Once
	notify     *network.NotifyBundle
	pendingMu  sync.Mutex
	pending    map[peer.ID]bool      // peers queued for a handshake
	rejected   map[peer.ID]time.Time // peers rejected, not greeted again until then
	helloQ     chan peer.ID

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Gater keeps a peer out for a while; *p2phost.Gater is one.
type Gater interface {
	Block(p peer.ID, reason string)
}

// protectTag is the connection-manager tag protecting connections to peers
// that share a channel with this one.
const protectTag = "fabgossip-channel"

// outMsg is what travels through the emitter: routing facts and the envelope.
type outMsg = routing.Message[*wire.Envelope]

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
		cfg:      cfg,
		key:      id.Key,
		self:     self,
		org:      verified.Org,
		external: id.External,
		cert:     id.Certificate,
		host:     h,
		log:      o.logger.With("peer", self.String(), "org", verified.Org),
		tracer:   tracerDispatch(o.tracers),
		now:      o.now,
		planCfg:  routing.Config{PropagatePeerNum: cfg.PropagatePeerNum, CrossOrgPeerNum: cfg.CrossOrgPeerNum},
		seed:     o.seed,
		members:  newMembership(),
		channels: make(map[string]*channelState),
		planRng:  rand.New(rand.NewPCG(o.seed, 1)),
		loopRng:  rand.New(rand.NewPCG(o.seed, 2)),
		helloQ:   make(chan peer.ID, 1024),
		pending:  make(map[peer.ID]bool),
		rejected: make(map[peer.ID]time.Time),
		suspects: make(map[peer.ID]time.Time),
		gater:    o.gater,
		inc:      uint64(o.now().UnixNano()),
	}
	n.metrics, err = newMetrics(o.registerer)
	if err != nil {
		return nil, err
	}
	n.store = o.store
	n.net.Store(id.Network)
	n.applyNetworkLocked(id.Network)
	if err := n.restore(); err != nil {
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	ecfg := batching.DefaultConfig()
	ecfg.Iterations = cfg.PropagateIterations
	ecfg.BurstSize = cfg.MaxPropagationBurstSize
	ecfg.Latency = cfg.MaxPropagationBurstLatency
	ecfg.MaxBatchBytes = transport.DefaultConfig().MaxFrameSize / 2
	n.emitter, err = batching.New(ecfg, n.sendBatch)
	if err != nil {
		return nil, err
	}
	topts := []transport.Option{transport.WithLogger(n.log)}
	for _, t := range o.transportTracers {
		topts = append(topts, transport.WithTracer(t))
	}
	n.tr, err = transport.New(h, o.transport, append(topts,
		transport.WithPushHandler(n.handlePush),
		transport.WithPullHandler(n.handlePull),
		transport.WithHelloHandler(n.handleHello),
	)...)
	if err != nil {
		n.emitter.Close()
		return nil, err
	}
	return n, nil
}

// Start connects the node to the network: it starts the hello handshake on
// every connection, the heartbeat, StateInfo and pull loops.
func (n *Node) Start() error {
	n.mu.Lock()
	if n.closed || n.started {
		n.mu.Unlock()
		if n.closed {
			return ErrClosed
		}
		return nil
	}
	n.started = true
	n.host.Network().Notify(n.notifiee())
	n.goLoop(n.helloLoop)
	n.goLoop(n.aliveLoop)
	n.goLoop(n.stateInfoLoop)
	n.goLoop(n.pullLoop)
	n.mu.Unlock()
	for _, c := range n.host.Network().Conns() {
		n.enqueueHello(c.RemotePeer())
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
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for _, cs := range n.channels {
		cs.closeSubscriptions(ErrClosed)
	}
	n.mu.Unlock()
	n.cancel()
	n.host.Network().StopNotify(n.notifiee())
	n.emitter.Close()
	err := n.tr.Close()
	n.wg.Wait()
	return err
}

// Self returns this peer's description.
func (n *Node) Self() Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Peer{ID: n.self, Org: n.org, External: n.external, Alive: true, Channels: n.joinedLocked()}
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
	defer n.mu.Unlock()
	out := make([]Peer, 0, len(n.members.members))
	for _, m := range n.members.members {
		p := Peer{ID: m.id, Org: m.org, External: m.external, Alive: !m.dead}
		for name, cs := range n.channels {
			if cs.eligible(m.id) {
				p.Channels = append(p.Channels, name)
			}
		}
		out = append(out, p)
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

// channelMAC is how a StateInfo names its channel: SHA-256(peer ID || name).
func channelMAC(p peer.ID, ch string) []byte {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte(ch))
	return h.Sum(nil)
}

// invalidateViewLocked marks the routing view stale.
func (n *Node) invalidateViewLocked() { n.viewVer++ }

// routingView returns the planner's view of the membership, rebuilt only when
// something that affects routing changed.
func (n *Node) routingView() routing.View {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.viewAt == n.viewVer && n.view.Self.ID != "" {
		return n.view
	}
	v := routing.View{
		Self:        routing.Member{ID: n.self, Org: n.org, External: n.external, Alive: true, Channels: map[string]bool{}},
		ChannelOrgs: n.network().ChannelOrgs(),
		Members:     make([]routing.Member, 0, len(n.members.members)),
	}
	for name, cs := range n.channels {
		if cs.joined && !cs.left {
			v.Self.Channels[name] = true
		}
	}
	for _, m := range n.members.members {
		if m.dead {
			continue
		}
		rm := routing.Member{ID: m.id, Org: m.org, External: m.external, Alive: true}
		for name, cs := range n.channels {
			if cs.eligible(m.id) {
				if rm.Channels == nil {
					rm.Channels = make(map[string]bool, 1)
				}
				rm.Channels[name] = true
			}
		}
		v.Members = append(v.Members, rm)
	}
	n.view, n.viewAt = v, n.viewVer
	return v
}

// sendBatch is the emitter's send function: plan, then hand each peer its
// frame. It runs on the emitter's single flush goroutine, outside any lock.
func (n *Node) sendBatch(batch []outMsg) {
	v := n.routingView()
	sends := routing.Plan(n.planCfg, batch, v, n.planRng)
	for _, s := range sends {
		b := &wire.Batch{Envelopes: make([]*wire.Envelope, len(s.Messages))}
		for i, m := range s.Messages {
			if m.StripSecret {
				b.Envelopes[i] = transport.StripSecret(m.Payload)
			} else {
				b.Envelopes[i] = m.Payload
			}
		}
		if err := n.tr.Send(s.To, b); err != nil {
			n.metrics.sendErrors.Inc()
			n.log.Debug("push send failed", "to", s.To.String(), "err", err)
			continue
		}
		n.metrics.batchesSent.Inc()
		n.tracer.BatchSent(s.To, b)
	}
}

// emit hands a message to the emitter; a full emitter drops it (counted):
// gossip is best effort and pull repairs.
func (n *Node) emit(m outMsg, key string) {
	if err := n.emitter.Add(batching.Item[outMsg]{Msg: m, Key: key, Size: envSize(m.Payload)}); err != nil {
		if errors.Is(err, batching.ErrFull) {
			n.metrics.dropped.WithLabelValues(m.Kind.String(), "emitter_full").Inc()
		}
	}
}

// mayTalk reports whether this peer exchanges anything with a peer of org:
// always within its own org; across orgs only between external peers whose
// orgs share a channel. Peers that are not external are invisible to other
// orgs, and orgs with no channel in common never learn of each other.
func (n *Node) mayTalk(org string, external bool) bool {
	if org == n.org {
		return true
	}
	return n.external && external && (*n.sharesChannel.Load())[org]
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
	if n.closed {
		return ErrClosed
	}
	n.net.Store(net)
	n.applyNetworkLocked(net)
	n.invalidateViewLocked()
	return nil
}

// applyNetworkLocked derives the per-channel state and the orgs this peer
// shares a channel with from net.
func (n *Node) applyNetworkLocked(net *identity.Network) {
	mine := net.ChannelsOfOrg(n.org)
	for name, cs := range n.channels {
		if !slices.Contains(mine, name) {
			cs.closeSubscriptions(ErrNotMember)
			delete(n.channels, name)
		}
	}
	shares := make(map[string]bool)
	orgs := net.ChannelOrgs()
	for _, ch := range mine {
		if n.channels[ch] == nil {
			n.channels[ch] = newChannelState(ch, n.cfg)
		}
		for _, org := range orgs[ch] {
			shares[org] = true
		}
		cs := n.channels[ch]
		for id := range cs.states {
			if m := n.members.get(id); id != n.self && (m == nil || !slices.Contains(orgs[ch], m.org)) {
				delete(cs.states, id)
			}
		}
	}
	n.sharesChannel.Store(&shares)
}

// restore loads what the store holds: each channel's height, last hash and
// the blocks of its window, and which channels this peer had joined or left.
// A rejoined channel's StateInfo goes out with the first publication tick.
func (n *Node) restore() error {
	if n.store == nil {
		return nil
	}
	states, err := n.store.ChannelStates()
	if err != nil {
		return fmt.Errorf("node: reading channel states: %w", err)
	}
	for name, cs := range n.channels {
		h, err := n.store.Height(name)
		if err != nil {
			return fmt.Errorf("node: reading the height of %q: %w", name, err)
		}
		last, err := n.store.LastHash(name)
		if err != nil {
			return fmt.Errorf("node: reading the last hash of %q: %w", name, err)
		}
		cs.ledger.height, cs.ledger.lastHash = h, last
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

// retryDeliveries delivers what is held and ready but was not stored
// because the store failed earlier.
func (n *Node) retryDeliveries() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, cs := range n.channels {
		if run, _ := cs.ledger.ready(); len(run) > 0 {
			_ = n.deliverLocked(cs, run)
		}
	}
}
