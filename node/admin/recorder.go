package admin

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// DefaultDeliveryLog is how many deliveries per channel a Recorder
// remembers (number, hash, size and time; about 80 bytes each). It is far
// more than the node's block window, so that a client polling with data=false
// sees every delivery even when it polls less often than blocks arrive.
const DefaultDeliveryLog = 1 << 16

// otherLabel is the channel or protocol label of names outside the known set,
// so that a remote peer cannot grow the metrics' label sets.
const otherLabel = "other"

// Delivery is one block as this peer delivered it.
type Delivery struct {
	Number uint64
	Hash   []byte
	// Size is the length of the block's data.
	Size int
	// At is when the node delivered the block (handed it to subscribers).
	At time.Time
}

// ChannelCounts are a Recorder's totals for one channel.
type ChannelCounts struct {
	// BlocksReceived and BlockBytesReceived count the block envelopes of the
	// channel that reached this peer (push or pull), before any check, and
	// their marshalled size. Duplicates and refused blocks are included: this
	// is what the network sent here.
	BlocksReceived     uint64
	BlockBytesReceived uint64
	// BlocksAccepted counts blocks that passed every check; BlocksDelivered
	// those delivered in order (published ones included).
	BlocksAccepted  uint64
	BlocksDelivered uint64
}

// Recorder observes a node for the admin API: delivery times per block,
// block traffic per channel, and the transport's frames and bytes per
// protocol, both as Prometheus metrics and for the status. Pass
// NodeTracer to node.WithTracer and TransportTracer to
// node.WithTransportTracer. It is safe for concurrent use.
type Recorder struct {
	now      func() time.Time
	logLimit int
	channels map[string]*channelRecord // every channel of the network, fixed at construction

	blocksReceived     *prometheus.CounterVec // channel
	blockBytesReceived *prometheus.CounterVec // channel
	blocksAccepted     *prometheus.CounterVec // channel, path
	blocksDelivered    *prometheus.CounterVec // channel
	framesSent         *prometheus.CounterVec // protocol
	bytesSent          *prometheus.CounterVec // protocol
	framesReceived     *prometheus.CounterVec // protocol
	bytesReceived      *prometheus.CounterVec // protocol
	framesDropped      *prometheus.CounterVec // protocol, reason
	streamErrors       *prometheus.CounterVec // protocol, kind
}

type channelRecord struct {
	mu     sync.Mutex
	counts ChannelCounts
	first  uint64 // number of log[0]
	log    []Delivery
}

// RecorderOption configures NewRecorder.
type RecorderOption func(*Recorder)

// WithClock sets the clock of delivery times (default time.Now).
func WithClock(now func() time.Time) RecorderOption { return func(r *Recorder) { r.now = now } }

// WithDeliveryLog sets how many deliveries per channel are remembered
// (default DefaultDeliveryLog).
func WithDeliveryLog(n int) RecorderOption { return func(r *Recorder) { r.logLimit = n } }

// NewRecorder returns a Recorder for channels (all the network's: see
// ChannelNames) and registers its metrics with reg (nil: none). Blocks of
// other channels are counted under the channel label "other".
func NewRecorder(channels []string, reg prometheus.Registerer, opts ...RecorderOption) (*Recorder, error) {
	r := &Recorder{
		now:      time.Now,
		logLimit: DefaultDeliveryLog,
		channels: make(map[string]*channelRecord),
		blocksReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_channel_blocks_received_total",
			Help: "Block envelopes that reached this peer, by channel, before any check (duplicates and refused ones included). Nonzero for a channel this peer's org is not a member of means a leak.",
		}, []string{"channel"}),
		blockBytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_channel_block_bytes_received_total",
			Help: "Marshalled bytes of the block envelopes counted by fabgossip_channel_blocks_received_total.",
		}, []string{"channel"}),
		blocksAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_channel_blocks_accepted_total",
			Help: "Blocks that passed every check, by channel and how they arrived (push, pull, publish).",
		}, []string{"channel", "path"}),
		blocksDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_channel_blocks_delivered_total",
			Help: "Blocks delivered in order, by channel.",
		}, []string{"channel"}),
		framesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_frames_sent_total", Help: "Frames written, by protocol.",
		}, []string{"protocol"}),
		bytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_bytes_sent_total", Help: "Frame bytes written (length prefix included), by protocol.",
		}, []string{"protocol"}),
		framesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_frames_received_total", Help: "Frames read and decoded, by protocol.",
		}, []string{"protocol"}),
		bytesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_bytes_received_total", Help: "Frame bytes read (length prefix included), by protocol.",
		}, []string{"protocol"}),
		framesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_frames_dropped_total", Help: "Frames discarded before they were written, by protocol and reason.",
		}, []string{"protocol", "reason"}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabgossip_transport_stream_errors_total", Help: "Failed streams, by protocol and kind of failure.",
		}, []string{"protocol", "kind"}),
	}
	for _, opt := range opts {
		opt(r)
	}
	if r.logLimit <= 0 {
		return nil, fmt.Errorf("admin: delivery log of %d entries; want at least 1", r.logLimit)
	}
	for _, c := range channels {
		r.channels[c] = &channelRecord{}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{
			r.blocksReceived, r.blockBytesReceived, r.blocksAccepted, r.blocksDelivered,
			r.framesSent, r.bytesSent, r.framesReceived, r.bytesReceived, r.framesDropped, r.streamErrors,
		} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("admin: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// ChannelNames lists the channels of net, for NewRecorder.
func ChannelNames(net *identity.Network) []string {
	var out []string
	for _, c := range net.Channels() {
		out = append(out, c.Name)
	}
	return out
}

// NodeTracer is the node.Tracer to pass to node.WithTracer.
func (r *Recorder) NodeTracer() node.Tracer { return nodeTracer{r} }

// TransportTracer is the transport.Tracer to pass to
// node.WithTransportTracer.
func (r *Recorder) TransportTracer() transport.Tracer { return transportTracer{r} }

// Counts returns the totals of channel ch (zero for a channel the network
// does not have).
func (r *Recorder) Counts(ch string) ChannelCounts {
	c := r.channels[ch]
	if c == nil {
		return ChannelCounts{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// Deliveries returns up to limit remembered deliveries of channel ch, from
// block number from on, in order.
func (r *Recorder) Deliveries(ch string, from uint64, limit int) []Delivery {
	c := r.channels[ch]
	if c == nil || limit <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := uint64(0)
	if from > c.first {
		start = from - c.first
	}
	if start >= uint64(len(c.log)) {
		return nil
	}
	end := min(uint64(len(c.log)), start+uint64(limit))
	return slices.Clone(c.log[start:end])
}

// DeliveredAt returns when block number of channel ch was delivered, if it
// is still remembered.
func (r *Recorder) DeliveredAt(ch string, number uint64) (time.Time, bool) {
	c := r.channels[ch]
	if c == nil {
		return time.Time{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if number < c.first || number-c.first >= uint64(len(c.log)) {
		return time.Time{}, false
	}
	return c.log[number-c.first].At, true
}

func (r *Recorder) channelLabel(ch string) string {
	if _, ok := r.channels[ch]; ok {
		return ch
	}
	return otherLabel
}

// received counts a block envelope that reached this peer.
// chunkReceived adds a chunk of size bytes of channel ch to its block
// bytes received.
func (r *Recorder) chunkReceived(ch string, size int) {
	r.blockBytesReceived.WithLabelValues(r.channelLabel(ch)).Add(float64(size))
	if c := r.channels[ch]; c != nil {
		c.mu.Lock()
		c.counts.BlockBytesReceived += uint64(size)
		c.mu.Unlock()
	}
}

func (r *Recorder) received(env *wire.Envelope) {
	ch, _, ok := node.PeekBlock(env)
	if !ok {
		// Not a block, or one in an unusual encoding: only the latter is
		// decoded (the node decodes it the same way).
		var m wire.Message
		if proto.Unmarshal(env.GetPayload(), &m) != nil || m.GetBlock() == nil {
			return
		}
		ch = m.GetBlock().GetChannel()
	}
	size := proto.Size(env)
	label := r.channelLabel(ch)
	r.blocksReceived.WithLabelValues(label).Inc()
	r.blockBytesReceived.WithLabelValues(label).Add(float64(size))
	if c := r.channels[ch]; c != nil {
		c.mu.Lock()
		c.counts.BlocksReceived++
		c.counts.BlockBytesReceived += uint64(size)
		c.mu.Unlock()
	}
}

func (r *Recorder) accepted(b node.Block, via node.Path) {
	r.blocksAccepted.WithLabelValues(r.channelLabel(b.Channel), via.String()).Inc()
	if c := r.channels[b.Channel]; c != nil {
		c.mu.Lock()
		c.counts.BlocksAccepted++
		c.mu.Unlock()
	}
}

func (r *Recorder) delivered(b node.Block) {
	at := r.now()
	r.blocksDelivered.WithLabelValues(r.channelLabel(b.Channel)).Inc()
	c := r.channels[b.Channel]
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts.BlocksDelivered++
	// Blocks are delivered in order, so the log is consecutive; a gap (which
	// the node never produces) restarts it rather than lying about numbers.
	if len(c.log) == 0 || b.Number != c.first+uint64(len(c.log)) {
		c.log, c.first = c.log[:0], b.Number
	}
	c.log = append(c.log, Delivery{Number: b.Number, Hash: slices.Clone(b.Hash), Size: len(b.Data), At: at})
	if over := len(c.log) - r.logLimit; over > 0 {
		c.log = slices.Delete(c.log, 0, over)
		c.first += uint64(over)
	}
}

// nodeTracer is the Recorder as a node.Tracer.
type nodeTracer struct{ r *Recorder }

func (t nodeTracer) Received(_ peer.ID, env *wire.Envelope)               { t.r.received(env) }
func (t nodeTracer) BlockAccepted(b node.Block, _ peer.ID, via node.Path) { t.r.accepted(b, via) }
func (t nodeTracer) BlockDelivered(b node.Block)                          { t.r.delivered(b) }
func (nodeTracer) Dropped(string, string, peer.ID)                        {}
func (nodeTracer) BatchSent(peer.ID, *wire.Batch)                         {}

// ChunkReceived counts a chunk's data in the channel's block bytes
// received, as a single-frame block's envelope is.
func (t nodeTracer) ChunkReceived(_ peer.ID, ch string, size int) { t.r.chunkReceived(ch, size) }

// transportTracer is the Recorder as a transport.Tracer.
type transportTracer struct{ r *Recorder }

func protocolLabel(p protocol.ID) string {
	switch p {
	case transport.ProtocolPush, transport.ProtocolPull, transport.ProtocolHello:
		return string(p)
	}
	return otherLabel
}

func (t transportTracer) FrameSent(_ peer.ID, p protocol.ID, n int) {
	l := protocolLabel(p)
	t.r.framesSent.WithLabelValues(l).Inc()
	t.r.bytesSent.WithLabelValues(l).Add(float64(n))
}

func (t transportTracer) FrameReceived(_ peer.ID, p protocol.ID, n int) {
	l := protocolLabel(p)
	t.r.framesReceived.WithLabelValues(l).Inc()
	t.r.bytesReceived.WithLabelValues(l).Add(float64(n))
}

func (t transportTracer) Dropped(_ peer.ID, p protocol.ID, reason transport.DropReason, frames int) {
	t.r.framesDropped.WithLabelValues(protocolLabel(p), reason.String()).Add(float64(frames))
}

func (t transportTracer) StreamError(_ peer.ID, p protocol.ID, kind transport.ErrorKind, _ error) {
	t.r.streamErrors.WithLabelValues(protocolLabel(p), kind.String()).Inc()
}
