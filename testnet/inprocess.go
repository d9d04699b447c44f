package testnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// OrgSpec is one org of a topology: how many peers, and how many of them
// (the first ones) are external.
type OrgSpec struct {
	Name     string
	Peers    int
	External int
}

// Topology is a network to build: its orgs and channels.
type Topology struct {
	Network  string
	Orgs     []OrgSpec
	Channels []identity.Channel
}

// Peer is one in-process peer of a Cluster.
type Peer struct {
	*node.Node
	Host     host.Host
	Org      string
	External bool
	// Index is the peer's position in Cluster.Peers.
	Index int
	Key   crypto.PrivKey
	Cert  *wire.Certificate
}

// Cluster is a network of in-process peers on a mocknet: every host can dial
// every other (so a leak is possible, and so is measurable), links have the
// latency the Options give. With Options.Hosts, the peers run on the hosts it
// builds instead (real loopback hosts, say) and there is no mocknet.
type Cluster struct {
	Peers   []*Peer
	Network *identity.Network
	CAKeys  map[string]crypto.PrivKey
	// Mocknet links the peers' hosts; nil when Options.Hosts built them.
	Mocknet mocknet.Mocknet

	cfg  node.Config
	opts Options
	// hosts are the hosts Options.Hosts built, which Close closes.
	hosts []host.Host
}

// Options tune how a Cluster is built.
type Options struct {
	// Config is every node's gossip configuration (default node.LocalConfig()).
	Config *node.Config
	// Seed makes keys and peer selection reproducible.
	Seed uint64
	// NodeOptions returns extra options for a peer (tracers, clocks). Its
	// Node is not built yet.
	NodeOptions func(p *Peer) []node.Option
	// Latency returns the one-way latency of the link between peers i and j
	// (default: none). It applies to the mocknet only.
	Latency func(i, j int) time.Duration
	// Hosts, if set, builds peer i's host for key instead of a mocknet host
	// (testnet.NewLoopbackHost, say): the cluster then has no mocknet, links
	// and Latency do not apply, peers connect with host.Connect, and Close
	// closes the hosts.
	Hosts func(i int, key crypto.PrivKey) (host.Host, error)
	// WrapHost, if set, wraps peer i's host (mocknet or Hosts-built) before
	// its node is built: Peer.Host and the node get the wrapped host (an
	// egress limiter around its streams, say).
	WrapHost func(i int, h host.Host) host.Host
}

// seededReader is an io.Reader of deterministic bytes for key generation.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func newSeededReader(seed uint64) seededReader {
	var k [32]byte
	for i := range 4 {
		for j := range 8 {
			k[i*8+j] = byte((seed + uint64(i)) >> (8 * j))
		}
	}
	return seededReader{rand.NewChaCha8(k)}
}

// NewCluster builds the peers of topo on a fresh mocknet and links every pair
// (or, with Options.Hosts, on the hosts it builds), without connecting or
// starting them.
func NewCluster(topo Topology, o Options) (*Cluster, error) {
	cfg := node.LocalConfig()
	if o.Config != nil {
		cfg = *o.Config
	}
	rnd := newSeededReader(o.Seed)
	orgNames := make([]string, len(topo.Orgs))
	for i, org := range topo.Orgs {
		orgNames[i] = org.Name
	}
	net, caKeys, err := identity.GenerateNetwork(topo.Network, orgNames, topo.Channels, rnd)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Network: net, CAKeys: caKeys, cfg: cfg, opts: o}
	if o.Hosts == nil {
		c.Mocknet = mocknet.New()
	}
	now := time.Now()
	for _, org := range topo.Orgs {
		for k := range org.Peers {
			key, err := identity.GenerateKey(rnd)
			if err != nil {
				return nil, c.closeOnErr(err)
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return nil, c.closeOnErr(err)
			}
			cert, err := identity.IssueCertificate(caKeys[org.Name], identity.CertificateFields{
				Network: topo.Network, Org: org.Name, PeerID: id,
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), Serial: uint64(len(c.Peers) + 1),
			})
			if err != nil {
				return nil, c.closeOnErr(err)
			}
			i := len(c.Peers)
			var h host.Host
			if o.Hosts != nil {
				if h, err = o.Hosts(i, key); err != nil {
					return nil, c.closeOnErr(err)
				}
				c.hosts = append(c.hosts, h)
			} else {
				addr := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&0xff, i>>8&0xff, i&0xff))
				if h, err = c.Mocknet.AddPeer(key, addr); err != nil {
					return nil, c.closeOnErr(err)
				}
			}
			if o.WrapHost != nil {
				h = o.WrapHost(i, h)
			}
			c.Peers = append(c.Peers, &Peer{Host: h, Org: org.Name, External: k < org.External, Index: i, Key: key, Cert: cert})
		}
	}
	if c.Mocknet != nil {
		if err := c.Mocknet.LinkAll(); err != nil {
			return nil, c.closeOnErr(err)
		}
	}
	if c.Mocknet != nil && o.Latency != nil {
		for i, a := range c.Peers {
			for j, b := range c.Peers {
				if i == j {
					continue
				}
				for _, l := range c.Mocknet.LinksBetweenPeers(a.Host.ID(), b.Host.ID()) {
					l.SetOptions(mocknet.LinkOptions{Latency: o.Latency(i, j)})
				}
			}
		}
	}
	for _, p := range c.Peers {
		if err := c.newNode(p, 0); err != nil {
			return nil, c.closeOnErr(err)
		}
	}
	return c, nil
}

func (c *Cluster) newNode(p *Peer, generation uint64) error {
	opts := []node.Option{node.WithSeed(c.opts.Seed*1_000_003 + uint64(p.Index) + generation<<32)}
	if c.opts.NodeOptions != nil {
		opts = append(opts, c.opts.NodeOptions(p)...)
	}
	n, err := node.New(node.Identity{Network: c.Network, Key: p.Key, Certificate: p.Cert, External: p.External}, p.Host, c.cfg, opts...)
	if err != nil {
		return err
	}
	p.Node = n
	return nil
}

// Stop closes peer i's node; its host stays up, as a crashed process's
// address would, refusing the fabgossip protocols.
func (c *Cluster) Stop(i int) error {
	return c.Peers[i].Node.Close()
}

// Restart starts a fresh node (a new incarnation) for peer i, whose node
// was stopped, on the same host and identity. It does not rejoin channels.
func (c *Cluster) Restart(i int, generation uint64) error {
	p := c.Peers[i]
	if err := c.newNode(p, generation); err != nil {
		return err
	}
	return p.Start()
}

func (c *Cluster) closeOnErr(err error) error {
	return errors.Join(err, c.Close())
}

// Start starts every node and bootstraps the network: each peer connects to
// the first peer of its org, and the first peers of orgs that have external
// peers connect to each other. Everything else is found by the nodes
// themselves.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.StartNodes(); err != nil {
		return err
	}
	return c.Bootstrap(ctx)
}

// StartNodes starts every node without connecting any.
func (c *Cluster) StartNodes() error {
	for _, p := range c.Peers {
		if err := p.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Connect dials peer j from peer i.
func (c *Cluster) Connect(ctx context.Context, i, j int) error {
	a, b := c.Peers[i], c.Peers[j]
	if err := a.Host.Connect(ctx, peer.AddrInfo{ID: b.Host.ID(), Addrs: b.Host.Addrs()}); err != nil {
		return fmt.Errorf("connect peer %d to %d: %w", i, j, err)
	}
	return nil
}

// Bootstrap connects each peer to the first peer of its org, and the first
// peers of orgs that share a channel to each other when both are external.
func (c *Cluster) Bootstrap(ctx context.Context) error {
	first := map[string]*Peer{}
	for _, p := range c.Peers {
		if first[p.Org] == nil {
			first[p.Org] = p
		}
	}
	for _, p := range c.Peers {
		if b := first[p.Org]; b != p {
			if err := c.Connect(ctx, p.Index, b.Index); err != nil {
				return err
			}
		}
	}
	for _, a := range first {
		for _, b := range first {
			if a.Index < b.Index && a.External && b.External && c.shareChannel(a.Org, b.Org) {
				if err := c.Connect(ctx, a.Index, b.Index); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Close stops every node, then the hosts Options.Hosts built, or the mocknet.
func (c *Cluster) Close() error {
	var errs []error
	for _, p := range c.Peers {
		if p.Node != nil {
			errs = append(errs, p.Node.Close())
		}
	}
	for _, h := range c.hosts {
		errs = append(errs, h.Close())
	}
	if c.Mocknet != nil {
		errs = append(errs, c.Mocknet.Close())
	}
	return errors.Join(errs...)
}

// Members returns the peers whose org is a member of channel ch.
func (c *Cluster) Members(ch string) []*Peer {
	var out []*Peer
	for _, p := range c.Peers {
		if c.Network.OrgInChannel(p.Org, ch) {
			out = append(out, p)
		}
	}
	return out
}

func (c *Cluster) shareChannel(a, b string) bool {
	for _, ch := range c.Network.Channels() {
		if c.Network.OrgInChannel(a, ch.Name) && c.Network.OrgInChannel(b, ch.Name) {
			return true
		}
	}
	return false
}
