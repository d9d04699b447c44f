package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
)

// Discovery finds candidate peers and connects to them (see the package
// documentation). Create it with New, then Start it; Close stops it.
type Discovery struct {
	h         host.Host
	cfg       Config
	bootstrap []peer.AddrInfo
	log       *slog.Logger
	tracer    Tracer
	now       func() time.Time

	rngMu sync.Mutex
	rng   *rand.Rand // back-off jitter

	mu       sync.Mutex
	started  bool
	closed   bool
	ctx      context.Context // set by Start; candidates are dialled only while it lives
	cancel   context.CancelFunc
	wg       sync.WaitGroup // every goroutine of this Discovery
	sub      event.Subscription
	mdns     interface{ Close() error }
	dht      *dht.IpfsDHT
	dials    *dialer
	closeErr error
}

// Option configures New beyond Config: collaborators, not tunables.
type Option func(*Discovery)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *Discovery) { d.log = l } }

// WithTracer sets the tracer (default NopTracer).
func WithTracer(t Tracer) Option { return func(d *Discovery) { d.tracer = t } }

// WithRand sets the source of the back-off jitter (default: seeded from the
// runtime's random source). Discovery serialises its use.
func WithRand(r *rand.Rand) Option { return func(d *Discovery) { d.rng = r } }

// WithClock sets the clock of candidate rate limiting
// (Config.CandidateRedialInterval; default time.Now). Bootstrap redials run
// on timers and so on the real clock.
func WithClock(now func() time.Time) Option { return func(d *Discovery) { d.now = now } }

// New returns a Discovery for h; nothing runs until Start. h should already
// listen: mDNS advertises the addresses it has at Start.
func New(h host.Host, cfg Config, opts ...Option) (*Discovery, error) {
	if h == nil {
		return nil, errors.New("discovery: nil host")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	boot, err := ParseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	boot = removeSelf(boot, h.ID())
	d := &Discovery{
		h:         h,
		cfg:       cfg,
		bootstrap: boot,
		log:       slog.Default(),
		tracer:    NopTracer{},
		rng:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		now:       time.Now,
	}
	for _, opt := range opts {
		opt(d)
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.tracer == nil {
		d.tracer = NopTracer{}
	}
	if d.rng == nil {
		d.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.log = d.log.With("component", "discovery")
	d.dials = &dialer{
		h:           h,
		timeout:     cfg.DialTimeout,
		slots:       make(chan struct{}, cfg.MaxConcurrentDials),
		minInterval: cfg.CandidateRedialInterval,
		now:         d.now,
		tracer:      d.tracer,
		log:         d.log,
		inflight:    make(map[peer.ID]bool),
		lastTry:     make(map[peer.ID]time.Time),
	}
	return d, nil
}

// backoff is the jittered delay before retry number attempt.
func (d *Discovery) backoff(attempt int) time.Duration {
	d.rngMu.Lock()
	defer d.rngMu.Unlock()
	return d.cfg.Backoff.Delay(attempt, d.rng)
}

func removeSelf(ais []peer.AddrInfo, self peer.ID) []peer.AddrInfo {
	out := ais[:0]
	for _, ai := range ais {
		if ai.ID != self {
			out = append(out, ai)
		}
	}
	return out
}

// Bootstrap returns the parsed bootstrap peers (without the host itself).
func (d *Discovery) Bootstrap() []peer.AddrInfo {
	out := make([]peer.AddrInfo, len(d.bootstrap))
	copy(out, d.bootstrap)
	return out
}

// Namespace is the DHT namespace this Discovery advertises and looks up.
func (d *Discovery) Namespace() string { return d.cfg.namespace() }

// Start dials the bootstrap peers and starts mDNS and the DHT as
// configured. Cancelling ctx stops discovery like Close does, except that
// only Close waits (and closes the DHT). Start may be called once; if it
// fails, the Discovery is closed.
func (d *Discovery) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.started:
		return ErrStarted
	}
	d.started = true
	d.ctx, d.cancel = context.WithCancel(ctx)

	// Subscribe before the first dial, so that no disconnection of a
	// bootstrap peer is missed.
	sub, err := d.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.Name("fabgossip/discovery"))
	if err != nil {
		d.cancel()
		return fmt.Errorf("discovery: subscribe: %w", err)
	}
	d.sub = sub
	d.dials.start(d.ctx, &d.wg)

	if d.cfg.DHT {
		if err := d.startDHT(); err != nil {
			d.closed = true
			d.stopLocked()
			return err
		}
	}
	if d.cfg.MDNS {
		if err := d.startMDNS(); err != nil {
			d.closed = true
			d.stopLocked()
			return err
		}
	}
	d.wg.Add(1)
	go d.runBootstrap(d.ctx, sub)
	return nil
}

// AddCandidate adds ai's addresses to the peerstore (for
// Config.CandidateAddrTTL) and, while discovery runs, dials ai unless it is
// connected, being dialled, was dialled within Config.CandidateRedialInterval,
// or all dial slots are busy. It does not block.
func (d *Discovery) AddCandidate(ai peer.AddrInfo) {
	if ai.ID == "" || ai.ID == d.h.ID() {
		return
	}
	if len(ai.Addrs) > 0 {
		d.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, d.cfg.CandidateAddrTTL)
	}
	d.dials.try(SourceExternal, peer.AddrInfo{ID: ai.ID})
}

// Close stops discovery: it cancels every goroutine, waits for them, and
// closes mDNS and the DHT. It is idempotent; every call returns the first
// call's error.
func (d *Discovery) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return d.closeErr
	}
	d.closed = true
	if d.started {
		d.stopLocked()
	}
	return d.closeErr
}

// stopLocked cancels, closes mDNS (which waits for its resolver), stops new
// dials, waits for our goroutines, then closes the DHT and the event
// subscription. The goroutines never take d.mu, so waiting under it is safe.
func (d *Discovery) stopLocked() {
	d.cancel()
	var errs []error
	if d.mdns != nil {
		errs = append(errs, d.mdns.Close())
	}
	d.dials.stop()
	d.wg.Wait()
	if d.dht != nil {
		errs = append(errs, d.dht.Close())
	}
	if d.sub != nil {
		errs = append(errs, d.sub.Close())
	}
	d.closeErr = errors.Join(errs...)
}
