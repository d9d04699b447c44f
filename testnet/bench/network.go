package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/testnet"
)

// Network modes (Options.Network).
const (
	// NetworkMock is every host on a libp2p mocknet, links with the
	// latency profile (IntraOrgLatency, InterOrgLatency). It was the
	// default until 2026-12-07; see NetworkPipe for why it no longer is.
	NetworkMock = "mock"
	// NetworkTCP is real libp2p hosts on loopback TCP
	// (testnet.NewLoopbackHost): every byte goes through the kernel, TLS or
	// Noise and yamux, a CPU-realistic check. There is no emulated latency.
	NetworkTCP = "tcp"
	// NetworkPipe, the default, is the mocknet of NetworkMock with the latency profile
	// applied on each stream's reading side instead (shape.Delay, as the
	// testnet's --wan does): a stream is a pipe of that latency. A mocknet
	// link's own latency holds every write of a stream until the one before
	// it has arrived, so a stream carries one write per one-way latency: on a
	// 25 ms link, a frame queued behind another waits 25 ms more, which no
	// real link does, and an egress limiter's 16 KiB writes each pay it.
	// NetworkMock keeps that model, so that earlier figures can be
	// reproduced.
	NetworkPipe = "pipe"
)

// pipeLatency is what TopologySummary.Latency adds under NetworkPipe.
const pipeLatency = "; the latency is applied per stream on the reading side (a pipe of that latency: a write never waits for an earlier one to arrive)"

// tcpLatency is TopologySummary.Latency over loopback TCP.
const tcpLatency = "real loopback TCP (libp2p hosts on 127.0.0.1, TCP only, default security and muxer): no emulated latency, the latency profile does not apply; floors are the loopback ones, taken as 0, so ×floor is n/a"

// checkNetwork fills in o's default network and checks the network options.
func checkNetwork(o *Options) error {
	if o.Network == "" {
		o.Network = NetworkPipe
	}
	switch o.Network {
	case NetworkMock, NetworkPipe:
	case NetworkTCP:
		if o.Scale == ScaleL && o.topology == nil {
			return errors.New("bench: network tcp is for S (and quick): L's 200 hosts would need tens of thousands of loopback sockets in one process")
		}
	default:
		return fmt.Errorf("bench: unknown network %q (want %s, %s or %s)", o.Network, NetworkMock, NetworkPipe, NetworkTCP)
	}
	if o.EgressMbps < 0 {
		return fmt.Errorf("bench: egress limit %g Mbit/s is negative (0 is off)", o.EgressMbps)
	}
	if o.Loss < 0 || o.Loss >= 1 {
		return fmt.Errorf("bench: frame loss %g is outside [0, 1) (0 is off)", o.Loss)
	}
	return nil
}

// networkText says, for the report, what network a run used.
func networkText(network string, egressMbps, loss float64) string {
	s := "mocknet with per-link latency"
	if network == NetworkPipe {
		s = "mocknet with per-link latency applied per stream on the reading side (a pipe)"
	}
	if network == NetworkTCP {
		s = "real loopback TCP, no emulated latency"
	}
	s += ", " + shape.NewEgress(egressMbps).String()
	if loss > 0 {
		s += ", " + lossText(loss)
	}
	return s
}

// setNetwork applies o's network mode and egress limit to env. Over TCP no
// link has an emulated latency, so env's latencies (and the floors computed
// from them) are all 0.
func (env *runEnv) setNetwork(o Options) {
	env.network, env.egressMbps, env.loss = o.Network, o.EgressMbps, o.Loss
	if o.Network == NetworkTCP {
		env.lat = shape.NewZeroLatencies(env.l.peers() + 1)
	}
}

// linkLatencies is what the mocknet's links get: the latency profile, or
// none under NetworkPipe, whose hosts delay their streams instead.
func (env *runEnv) linkLatencies() *shape.Latencies {
	if env.network == NetworkPipe {
		return shape.NewZeroLatencies(env.l.peers() + 1)
	}
	return env.lat
}

// overFloor renders T_full over the floor, p50 / p99, or n/a when the run
// had no floor (loopback TCP).
func overFloor(x Result) string {
	for _, f := range x.FloorMs {
		if f > 0 {
			return fmt.Sprintf("%.1f / %.1f", x.TFullOverFloor, x.TFullP99OverFloor)
		}
	}
	return "n/a"
}

// sysNet is how one system's hosts are built, connected and closed: on a
// mocknet or as loopback TCP hosts, each wrapped in the run's egress limit
// when there is one.
type sysNet struct {
	tcp bool
	eg  *shape.Egress // nil: no limit
	ls  *shape.Loss   // nil: no frame loss
	// mn is the mocknet the hosts are on (nil over TCP); closeMN says this
	// sysNet built it (a testnet.Cluster closes its own).
	mn      mocknet.Mocknet
	closeMN bool
	// own are the loopback hosts this sysNet built, unwrapped, to close.
	own []host.Host
	// pipe (NetworkPipe) delays every host's streams by lat, from the
	// layout index of each remote in index; delays are those delays, to
	// wait for once the hosts are closed.
	pipe   bool
	lat    *shape.Latencies
	mu     sync.Mutex
	index  map[peer.ID]int
	delays []*shape.Delay
}

func newSysNet(env *runEnv) *sysNet {
	return &sysNet{
		tcp: env.network == NetworkTCP, eg: shape.NewEgress(env.egressMbps), ls: newLoss(env.loss, env.seed, env.rec),
		pipe: env.network == NetworkPipe, lat: env.lat, index: map[peer.ID]int{},
	}
}

// wrap applies the run's latency (under NetworkPipe), egress limit and
// frame loss to the host of layout index i.
func (n *sysNet) wrap(i int, h host.Host) host.Host {
	if n.pipe {
		n.mu.Lock()
		n.index[h.ID()] = i
		d := shape.NewDelay(func(remote peer.ID) time.Duration {
			n.mu.Lock()
			j, ok := n.index[remote]
			n.mu.Unlock()
			if !ok {
				return 0
			}
			return n.lat.Between(i, j)
		})
		n.delays = append(n.delays, d)
		n.mu.Unlock()
		h = d.Wrap(h)
	}
	return n.ls.Wrap(i, n.eg.Wrap(h))
}

// peerHosts builds the hosts of the GossipSub and direct systems: one per
// peer of the layout, plus the outsider at index l.peers() when outsider is
// set, none connected.
func (n *sysNet) peerHosts(env *runEnv, outsider bool) ([]host.Host, error) {
	if !n.tcp {
		mn, hosts, err := newMocknet(env.l, env.linkLatencies(), env.seed, outsider)
		if err != nil {
			return nil, err
		}
		n.mn, n.closeMN = mn, true
		for i := range hosts {
			hosts[i] = n.wrap(i, hosts[i])
		}
		return hosts, nil
	}
	count := env.l.peers()
	if outsider {
		count++
	}
	keys, err := hostKeys(env.seed, count)
	if err != nil {
		return nil, err
	}
	hosts := make([]host.Host, count)
	for i, key := range keys {
		if hosts[i], err = n.loopback(i, key); err != nil {
			return nil, err
		}
	}
	return hosts, nil
}

// loopback builds a loopback host of key, layout index i, that n closes.
func (n *sysNet) loopback(i int, key crypto.PrivKey) (host.Host, error) {
	h, err := testnet.NewLoopbackHost(key)
	if err != nil {
		return nil, err
	}
	n.own = append(n.own, h)
	return n.wrap(i, h), nil
}

// clusterHosts is testnet.Options.Hosts for the fabgossip systems: loopback
// hosts over TCP (the cluster closes them), nil (mocknet) otherwise.
func (n *sysNet) clusterHosts() func(int, crypto.PrivKey) (host.Host, error) {
	if !n.tcp {
		return nil
	}
	return func(_ int, key crypto.PrivKey) (host.Host, error) { return testnet.NewLoopbackHost(key) }
}

// clusterWrap is testnet.Options.WrapHost for the fabgossip systems: the
// egress limit and frame loss, or nil for neither.
func (n *sysNet) clusterWrap() func(int, host.Host) host.Host {
	if n.eg == nil && n.ls == nil && !n.pipe {
		return nil
	}
	return n.wrap
}

// fabOutsider builds the fabgossip systems' outsider host (no org, no
// certificate): on the cluster's mocknet, linked to every peer with the
// latencies of lat (the outsider is index l.peers()), or a loopback host.
func (n *sysNet) fabOutsider(c *testnet.Cluster, lat *shape.Latencies) (host.Host, error) {
	if c.Mocknet == nil {
		key, _, err := crypto.GenerateEd25519Key(crand.Reader)
		if err != nil {
			return nil, err
		}
		return n.loopback(outsiderIndex(lat), key)
	}
	n.mn = c.Mocknet
	h, err := c.Mocknet.GenPeer()
	if err != nil {
		return nil, err
	}
	for i, p := range c.Peers {
		lk, err := c.Mocknet.LinkPeers(h.ID(), p.Host.ID())
		if err != nil {
			return nil, err
		}
		if !n.pipe {
			lk.SetOptions(mocknet.LinkOptions{Latency: lat.Between(outsiderIndex(lat), i)})
		}
	}
	return n.wrap(outsiderIndex(lat), h), nil
}

// connect connects host a to host b: through the mocknet, or by dialling b's
// loopback address.
func (n *sysNet) connect(ctx context.Context, a, b host.Host) error {
	if n.mn != nil {
		_, err := n.mn.ConnectPeers(a.ID(), b.ID())
		return err
	}
	return a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
}

// stop makes every write waiting for egress tokens give up; close calls it
// first, and a system whose hosts someone else closes calls it before.
func (n *sysNet) stop() { n.eg.Stop() }

// close stops the egress limiter, then closes the hosts and the mocknet n
// built. It is idempotent.
func (n *sysNet) close() error {
	n.stop()
	var errs []error
	for _, h := range n.own {
		errs = append(errs, h.Close())
	}
	n.own = nil
	if n.closeMN {
		errs = append(errs, n.mn.Close())
		n.closeMN = false
	}
	n.mu.Lock()
	delays := n.delays
	n.delays = nil
	n.mu.Unlock()
	for _, d := range delays {
		d.Wait() // the hosts are closed: every pump ends
	}
	return errors.Join(errs...)
}
