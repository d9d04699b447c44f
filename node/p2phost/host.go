package p2phost

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Host is the libp2p host of a peer together with the parts that package
// node drives directly: the Gater (block peers that fail the handshake), the
// connection manager (ConnManager().Protect(p, "fabgossip-channel") for peers
// that share a channel, Unprotect when they no longer do) and the resource
// manager.
//
// Host embeds host.Host, so a *Host is a host.Host. Close the *Host, not the
// embedded host: only Host.Close also stops the resource manager.
type Host struct {
	host.Host // its ConnManager() is the connection manager built from Config

	gater *Gater
	rcmgr network.ResourceManager
	log   *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Option configures New beyond Config: collaborators, not tunables.
type Option func(*options)

type options struct {
	registerer prometheus.Registerer
	now        func() time.Time
	logger     *slog.Logger
	extra      []libp2p.Option
}

// WithPrometheusRegisterer turns libp2p's metrics on and registers them
// (swarm, identify, resource manager, event bus...) with reg. Without it,
// metrics are off.
func WithPrometheusRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.registerer = reg }
}

// WithClock sets the clock of the Gater (default time.Now), so that tests
// can expire a block without waiting for it.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithLibp2pOptions appends libp2p options after the ones New derives from
// Config; a later option wins where libp2p allows overriding, and libp2p
// reports an error where it does not (a second transport of the same kind,
// a second resource manager...).
func WithLibp2pOptions(opts ...libp2p.Option) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// New builds the host of key as cfg describes and listens on every
// Config.ListenAddrs: a peer that cannot listen on one of them (port taken)
// fails to start rather than silently running without it.
func New(key crypto.PrivKey, cfg Config, opts ...Option) (*Host, error) {
	if key == nil {
		return nil, ErrNoKey
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{now: time.Now, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}

	listen, err := parseAddrs(cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	announce, err := parseAddrs(cfg.AnnounceAddrs)
	if err != nil {
		return nil, err
	}
	gater := NewGater(cfg.GaterBackoff, cfg.GaterMaxEntries, o.now)
	cm, err := connmgr.NewConnManager(cfg.ConnMgrLowWater, cfg.ConnMgrHighWater,
		connmgr.WithGracePeriod(cfg.ConnMgrGracePeriod))
	if err != nil {
		return nil, fmt.Errorf("p2phost: connection manager: %w", err)
	}
	rm, err := newResourceManager(cfg, o.registerer != nil)
	if err != nil {
		_ = cm.Close()
		return nil, fmt.Errorf("p2phost: resource manager: %w", err)
	}

	lopts := []libp2p.Option{
		libp2p.Identity(key),
		// Listen after construction (below): libp2p v0.51 leaks the swarm
		// when it cannot listen on any address during construction, and
		// succeeds when it can listen on only some of them.
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		libp2p.ConnectionGater(gater),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.UserAgent(cfg.UserAgent),
	}
	if len(announce) > 0 {
		lopts = append(lopts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr {
			return append([]ma.Multiaddr(nil), announce...)
		}))
	}
	if o.registerer != nil {
		lopts = append(lopts, libp2p.PrometheusRegisterer(o.registerer))
	} else {
		lopts = append(lopts, libp2p.DisableMetrics())
	}
	lopts = append(lopts, o.extra...)

	h, err := libp2p.New(lopts...)
	if err != nil {
		// libp2p closes the managers only on some failure paths; both
		// tolerate a second Close.
		_ = cm.Close()
		_ = rm.Close()
		return nil, fmt.Errorf("p2phost: %w", err)
	}
	hh := &Host{Host: h, gater: gater, rcmgr: rm, log: o.logger}
	for _, a := range listen {
		if err := h.Network().Listen(a); err != nil {
			_ = hh.Close()
			return nil, fmt.Errorf("p2phost: listen on %s: %w", a, err)
		}
	}
	o.logger.Debug("libp2p host started", "peer", h.ID(), "addrs", h.Addrs())
	return hh, nil
}

// Gater is the host's connection gater.
func (h *Host) Gater() *Gater { return h.gater }

// ResourceManager is the host's resource manager (for ViewProtocol and
// friends).
func (h *Host) ResourceManager() network.ResourceManager { return h.rcmgr }

// AddrInfo is the peer ID and advertised addresses of the host: what another
// peer needs to dial it.
func (h *Host) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// BlockPeer keeps p out for the gater's back-off and closes the connections
// we have with it. It is what a failed hello handshake calls.
func (h *Host) BlockPeer(p peer.ID, reason string) error {
	h.gater.Block(p, reason)
	h.log.Info("peer blocked", "peer", p, "reason", reason, "for", h.gater.Backoff())
	return h.Network().ClosePeer(p)
}

// Close stops the host (listeners, connections, the connection manager) and
// then the resource manager. It is idempotent; every call returns the first
// call's error.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.closeErr = errors.Join(h.Host.Close(), h.rcmgr.Close())
	})
	return h.closeErr
}

var _ host.Host = (*Host)(nil)

func parseAddrs(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidConfig, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}
