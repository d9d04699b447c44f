package peerconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/admin"
	"github.com/fabgossip/fabgossip/node/discovery"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/node/p2phost"
	"github.com/fabgossip/fabgossip/node/store"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// maxTokenFileSize caps an admin token file.
const maxTokenFileSize = 4 << 10

// Peer is a running fabgossip peer built from a Config: the block store, the
// libp2p host, the gossip node, discovery, and the admin API, sharing one
// Prometheus registry. New builds it, Start runs it, Close stops it.
type Peer struct {
	cfg      *Config
	store    *store.Bolt // nil when WithStore gave one
	log      *slog.Logger
	net      *identity.Network
	org      string
	channels []string
	reg      *prometheus.Registry
	rec      *admin.Recorder
	host     *p2phost.Host
	shaped   *shape.Host // the host the node runs on when Testnet.Shaping is set; nil otherwise
	node     *node.Node
	disc     *discovery.Discovery
	api      *admin.API

	mu       sync.Mutex
	started  bool
	closed   bool
	cancel   context.CancelFunc
	srv      *admin.Server
	closeErr error
}

// Option configures New.
type Option func(*peerOptions)

type peerOptions struct {
	logger   *slog.Logger
	nodeOpts []node.Option
	now      func() time.Time
	store    store.Store
}

// WithLogger sets the logger (default: the one Config.Log describes, on
// stderr).
func WithLogger(l *slog.Logger) Option { return func(o *peerOptions) { o.logger = l } }

// WithNodeOptions appends options for node.New (a seed, a clock). The
// tracer, transport tracer, registerer, gater, logger and store are set by
// New.
func WithNodeOptions(opts ...node.Option) Option {
	return func(o *peerOptions) { o.nodeOpts = append(o.nodeOpts, opts...) }
}

// WithStore makes the peer keep its blocks in s instead of opening the
// store in Config.DataDir (for tests: store.NewMemory()). The peer does not
// close s.
func WithStore(s store.Store) Option { return func(o *peerOptions) { o.store = s } }

// WithClock sets the clock used to check this peer's own certificate
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *peerOptions) { o.now = now } }

// New reads the files cfg names, checks that they fit together (the key is
// the certificate's peer, the certificate verifies against the network, the
// channels exist and include the peer's org), opens the block store in
// cfg.DataDir (unless WithStore), and builds the host, node, discovery and
// admin API. The node resumes from the store: its ledger heights and the
// channels it had joined. A data directory another process holds fails with
// an error wrapping store.ErrLocked. The host listens at once, so a port in
// use is reported here; nothing else runs until Start. On error everything
// built is closed.
func New(cfg *Config, opts ...Option) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := peerOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		l, err := cfg.Logger(os.Stderr)
		if err != nil {
			return nil, err
		}
		o.logger = l
	}
	p := &Peer{cfg: cfg, log: o.logger}

	var err error
	if p.net, err = identity.LoadNetwork(cfg.Path(cfg.Network)); err != nil {
		return nil, err
	}
	key, err := identity.LoadKey(cfg.Path(cfg.Key))
	if err != nil {
		return nil, err
	}
	cert, err := identity.LoadCertificate(cfg.Path(cfg.Certificate))
	if err != nil {
		return nil, err
	}
	if p.org, err = checkIdentity(p.net, key, cert, cfg, o.now()); err != nil {
		return nil, err
	}
	if p.channels, err = p.resolveChannels(); err != nil {
		return nil, err
	}
	token, err := p.readToken()
	if err != nil {
		return nil, err
	}
	nodeCfg, err := cfg.NodeConfig()
	if err != nil {
		return nil, err
	}

	st := o.store
	if st == nil {
		if p.store, err = openStore(cfg, p.log); err != nil {
			return nil, err
		}
		st = p.store
	}
	if err := p.build(key, cert, token, nodeCfg, st, o); err != nil {
		if p.store != nil {
			err = errors.Join(err, p.store.Close())
		}
		return nil, err
	}
	return p, nil
}

// openStore opens the block store in cfg.DataDir, with errors that name the
// directory.
func openStore(cfg *Config, log *slog.Logger) (*store.Bolt, error) {
	dir := cfg.Path(cfg.DataDir)
	s, err := store.Open(dir, append(cfg.StoreOptions(), store.WithLogger(log))...)
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("data_dir %s is in use by another process (another peer with the same data_dir?): %w", dir, store.ErrLocked)
	case err != nil:
		return nil, fmt.Errorf("data_dir %s: %w", dir, err)
	}
	return s, nil
}

// build builds the registry, host, node (on store st), discovery and admin
// API. On error everything it built is closed.
func (p *Peer) build(key crypto.PrivKey, cert *wire.Certificate, token string, nodeCfg node.Config, st store.Store, o peerOptions) error {
	cfg := p.cfg
	var err error
	p.reg = prometheus.NewRegistry()
	if err := p.reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := p.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	if p.rec, err = admin.NewRecorder(admin.ChannelNames(p.net), p.reg); err != nil {
		return err
	}
	p.host, err = p2phost.New(key, cfg.HostConfig(),
		p2phost.WithLogger(p.log), p2phost.WithPrometheusRegisterer(p.reg))
	if err != nil {
		return fmt.Errorf("libp2p host: %w", err)
	}
	nodeHost, err := p.shape()
	if err != nil {
		return errors.Join(err, p.host.Close())
	}
	nodeOpts := append([]node.Option{
		node.WithLogger(p.log),
		node.WithRegisterer(p.reg),
		node.WithGater(p.host.Gater()),
		node.WithTracer(p.rec.NodeTracer()),
		node.WithTransportTracer(p.rec.TransportTracer()),
		node.WithClock(o.now),
		node.WithStore(st),
	}, o.nodeOpts...)
	id := node.Identity{Network: p.net, Key: key, Certificate: cert, External: cfg.External}
	if p.node, err = node.New(id, nodeHost, nodeCfg, nodeOpts...); err != nil {
		return errors.Join(err, p.closeHost())
	}
	if p.disc, err = discovery.New(p.host, cfg.DiscoveryConfig(p.net.Name()), discovery.WithLogger(p.log)); err != nil {
		return errors.Join(err, p.node.Close(), p.closeHost())
	}
	p.api, err = admin.New(p.node, p.net, p.rec,
		admin.WithToken(token),
		admin.WithGatherer(p.reg),
		admin.WithAddrs(p.host.Addrs),
		admin.WithMaxBlockBytes(nodeCfg.MaxBlockBytes),
		admin.WithLogger(p.log))
	if err != nil {
		return errors.Join(err, p.disc.Close(), p.node.Close(), p.closeHost())
	}
	if token == "" && cfg.Admin.Address != "" && !isLoopback(cfg.Admin.Address) {
		p.log.Warn("admin API listens beyond loopback without a token; anyone who reaches it can publish", "address", cfg.Admin.Address)
	}
	return nil
}

// shape returns the host the node runs on: the libp2p host, or, when the
// config's testnet section names a shaping plan, that host shaped as the
// plan says (for the testnet only). Frames the plan's loss drops are counted
// in fabgossip_testnet_frames_dropped_total.
func (p *Peer) shape() (host.Host, error) {
	path := p.cfg.Testnet.Shaping
	if path == "" {
		return p.host, nil
	}
	plan, err := shape.LoadPlan(p.cfg.Path(path))
	if err != nil {
		return nil, fmt.Errorf("testnet.shaping: %w", err)
	}
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fabgossip_testnet_frames_dropped_total",
		Help: "Push frames the testnet's shaping (testnet.shaping in the peer config) dropped on receipt.",
	})
	if err := p.reg.Register(dropped); err != nil {
		return nil, err
	}
	if p.shaped, err = shape.New(p.host, plan, dropped.Inc); err != nil {
		return nil, fmt.Errorf("testnet.shaping %s: %w", p.cfg.Path(path), err)
	}
	p.log.Warn("testnet shaping on: this peer's gossip streams are slowed and lossy on purpose; not for a real network",
		"plan", p.cfg.Path(path), "shaping", p.shaped.String())
	return p.shaped, nil
}

// closeHost closes the host, through its shaping when there is one (which
// then also waits for the shaping's goroutines).
func (p *Peer) closeHost() error {
	if p.shaped != nil {
		return p.shaped.Close()
	}
	return p.host.Close()
}

// checkIdentity checks that key, cert and net belong together and returns
// the peer's org, with errors that name the files.
func checkIdentity(net *identity.Network, key crypto.PrivKey, cert *wire.Certificate, cfg *Config, now time.Time) (string, error) {
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("key file %s: %w", cfg.Path(cfg.Key), err)
	}
	fields, err := identity.DecodeCertificate(cert)
	if err != nil {
		return "", fmt.Errorf("certificate file %s: %w", cfg.Path(cfg.Certificate), err)
	}
	if fields.PeerID != self {
		return "", fmt.Errorf("certificate file %s is for peer %s, but key file %s is peer %s",
			cfg.Path(cfg.Certificate), fields.PeerID, cfg.Path(cfg.Key), self)
	}
	v, err := identity.VerifyCertificate(net, cert, self, now)
	if err != nil {
		return "", fmt.Errorf("certificate file %s (org %q) against network file %s: %w",
			cfg.Path(cfg.Certificate), fields.Org, cfg.Path(cfg.Network), err)
	}
	return v.Org, nil
}

func (p *Peer) resolveChannels() ([]string, error) {
	if len(p.cfg.Channels) == 0 {
		return p.net.ChannelsOfOrg(p.org), nil
	}
	var errs []error
	for i, ch := range p.cfg.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		e := &Error{File: p.cfg.File, Line: p.cfg.lineOf(field), Field: field}
		switch {
		case !hasChannel(p.net, ch):
			e.Msg = fmt.Sprintf("unknown channel %q (network file %s)", ch, p.cfg.Path(p.cfg.Network))
		case !p.net.OrgInChannel(p.org, ch):
			e.Msg = fmt.Sprintf("org %q is not a member of channel %q", p.org, ch)
		default:
			continue
		}
		errs = append(errs, e)
	}
	return p.cfg.Channels, errors.Join(errs...)
}

func hasChannel(n *identity.Network, ch string) bool {
	_, ok := n.Channel(ch)
	return ok
}

func (p *Peer) readToken() (string, error) {
	if p.cfg.Admin.TokenFile == "" {
		return "", nil
	}
	path := p.cfg.Path(p.cfg.Admin.TokenFile)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, maxTokenFileSize+1)
	n, _ := f.Read(buf)
	if n > maxTokenFileSize {
		return "", fmt.Errorf("admin token file %s: larger than %d bytes", path, maxTokenFileSize)
	}
	token := strings.TrimSpace(string(buf[:n]))
	if token == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	return token, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start starts the node, joins the configured channels, starts the admin
// API and then discovery, so that by the first connection the peer already
// says which channels it is in. Cancelling ctx stops discovery; Close stops
// everything. Start may be called once.
func (p *Peer) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return node.ErrClosed
	case p.started:
		return errors.New("peer: already started")
	}
	p.started = true
	if err := p.node.Start(); err != nil {
		return err
	}
	for _, ch := range p.channels {
		if err := p.node.JoinChannel(ch); err != nil {
			return fmt.Errorf("join channel %q: %w", ch, err)
		}
	}
	if p.cfg.Admin.Address != "" {
		srv, err := admin.Listen(p.cfg.Admin.Address, p.api, p.log)
		if err != nil {
			return err
		}
		p.srv = srv
	}
	ctx, p.cancel = context.WithCancel(ctx)
	if err := p.disc.Start(ctx); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	p.log.Info("peer started", "peer", p.host.ID().String(), "org", p.org, "external", p.cfg.External,
		"addrs", p.host.Addrs(), "channels", p.channels, "heights", p.heights(), "data_dir", p.dataDir(), "admin", p.AdminURL())
	return nil
}

// Close stops discovery, the admin API, the node and the host, in that
// order, and waits for each, then closes the block store (unless WithStore
// gave it). It is idempotent; every call returns the first call's error.
func (p *Peer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.closeErr
	}
	p.closed = true
	if p.cancel != nil {
		p.cancel()
	}
	var errs []error
	errs = append(errs, p.disc.Close())
	if p.srv != nil {
		errs = append(errs, p.srv.Close())
	}
	errs = append(errs, p.node.Close(), p.closeHost())
	if p.store != nil {
		errs = append(errs, p.store.Close())
	}
	p.closeErr = errors.Join(errs...)
	return p.closeErr
}

// heights describes the ledger height of every configured channel, which
// after a restart is where the store left it.
func (p *Peer) heights() string {
	var b strings.Builder
	for i, ch := range p.channels {
		h, err := p.node.Height(ch)
		if err != nil {
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", ch, h)
	}
	return b.String()
}

// dataDir is the store's directory, or "" when WithStore gave the store.
func (p *Peer) dataDir() string {
	if p.store == nil {
		return ""
	}
	return p.cfg.Path(p.cfg.DataDir)
}

// Run starts the peer and runs it until ctx ends, then closes it.
func (p *Peer) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return errors.Join(err, p.Close())
	}
	<-ctx.Done()
	p.log.Info("peer stopping")
	return p.Close()
}

// Node is the gossip node.
func (p *Peer) Node() *node.Node { return p.node }

// Host is the libp2p host.
func (p *Peer) Host() *p2phost.Host { return p.host }

// Network is the network config.
func (p *Peer) Network() *identity.Network { return p.net }

// Org is the peer's org, from its certificate.
func (p *Peer) Org() string { return p.org }

// Registry is the Prometheus registry of every metric the peer has.
func (p *Peer) Registry() *prometheus.Registry { return p.reg }

// Recorder is the admin API's recorder of deliveries.
func (p *Peer) Recorder() *admin.Recorder { return p.rec }

// AdminURL is the admin API's base URL once started ("" when it is off).
func (p *Peer) AdminURL() string {
	if p.srv == nil {
		return ""
	}
	return p.srv.URL()
}

// Info is what a started peer tells a supervisor (the testnet, a script):
// who it is and where to reach it.
type Info struct {
	PeerID   string   `json:"peer_id"`
	Org      string   `json:"org"`
	External bool     `json:"external"`
	Addrs    []string `json:"addrs"`
	AdminURL string   `json:"admin_url"`
}

// Info describes the peer.
func (p *Peer) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := Info{PeerID: p.host.ID().String(), Org: p.org, External: p.cfg.External, AdminURL: p.AdminURL()}
	for _, a := range p.host.Addrs() {
		in.Addrs = append(in.Addrs, a.String()+"/p2p/"+p.host.ID().String())
	}
	return in
}
