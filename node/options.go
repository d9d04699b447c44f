package node

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/transport"
)

// Option configures a Node's collaborators.
type Option func(*options)

type options struct {
	logger           *slog.Logger
	tracers          []Tracer
	transportTracers []transport.Tracer
	now              func() time.Time
	registerer       prometheus.Registerer
	seed             uint64
	transport        transport.Config
	gater            Gater
	store            store.Store
	network          func(h host.Host, cfg transport.Config, hs Handlers, opts ...transport.Option) (Network, error)
}

func defaultOptions() options {
	var b [8]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	return options{
		logger:    slog.New(slog.DiscardHandler),
		now:       time.Now,
		seed:      binary.LittleEndian.Uint64(b[:]),
		transport: transport.DefaultConfig(),
		network:   newTransport,
	}
}

// newTransport is the Network of every node outside tests: a transport on
// the node's host serving the node's handlers.
func newTransport(h host.Host, cfg transport.Config, hs Handlers, opts ...transport.Option) (Network, error) {
	return transport.New(h, cfg, append(opts,
		transport.WithLendingPushHandler(hs.Push),
		transport.WithPullHandler(hs.Pull),
		transport.WithHelloHandler(hs.Hello),
	)...)
}

// WithLogger sets the structured logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTracer adds a tracer that sees what the node accepts, delivers, drops
// and sends; tests, metrics and the benchmark hang off it. Several may be
// added; each sees every event, in the order they were added.
func WithTracer(t Tracer) Option {
	return func(o *options) {
		if t != nil {
			o.tracers = append(o.tracers, t)
		}
	}
}

// WithTransportTracer adds a tracer of the transport (frames and bytes per
// protocol and peer). Several may be added.
func WithTransportTracer(t transport.Tracer) Option {
	return func(o *options) {
		if t != nil {
			o.transportTracers = append(o.transportTracers, t)
		}
	}
}

// WithClock sets the clock used for certificate validity and membership
// expiry (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRegisterer registers the node's Prometheus metrics (default: none).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.registerer = r } }

// WithSeed seeds the node's peer selection, for reproducible tests and
// benchmarks (default: random).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithTransportConfig sets the transport's configuration (default
// transport.DefaultConfig()).
func WithTransportConfig(c transport.Config) Option { return func(o *options) { o.transport = c } }

// WithGater lets the node keep out, for the gater's back-off, a peer that
// failed the handshake (default: none; the peer is only disconnected).
func WithGater(g Gater) Option { return func(o *options) { o.gater = g } }

// WithStore keeps delivered blocks and channel membership in s, so a restart
// resumes where the peer stopped: its ledger heights, the channels it had
// joined, and, for a publisher, its numbering. Blocks older than the
// in-memory window are then served from s to peers catching up. Without a
// store the node keeps only the window. The node does not close s.
func WithStore(s store.Store) Option { return func(o *options) { o.store = s } }
