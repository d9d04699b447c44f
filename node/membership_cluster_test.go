package node_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// liveView returns the peers p sees alive.
func liveView(p *testnet.Peer) []peer.ID {
	var out []peer.ID
	for _, q := range p.Peers() {
		if q.Alive {
			out = append(out, q.ID)
		}
	}
	return out
}

// waitFullView waits until every peer of ps sees every other alive.
func waitFullView(t *testing.T, ps []*testnet.Peer) {
	t.Helper()
	for _, p := range ps {
		waitFor(t, fmt.Sprintf("peer %d sees %d peers", p.Index, len(ps)-1), func() bool {
			view := liveView(p)
			for _, q := range ps {
				if q != p && !slices.Contains(view, q.Host.ID()) {
					return false
				}
			}
			return true
		})
	}
}

// TestConvergence: a bootstrap peer and 10 peers all see each other.
func TestConvergence(t *testing.T) {
	c := startCluster(t, oneOrg(11), testnet.Options{Seed: 10})
	waitFullView(t, c.Peers)
}

// TestPartitionsMerge: three groups that each know only their own bootstrap
// peer merge into one view when a peer that knows all three joins.
func TestPartitionsMerge(t *testing.T) {
	c, err := testnet.NewCluster(oneOrg(13), testnet.Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.StartNodes(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	groups := [][]*testnet.Peer{c.Peers[0:4], c.Peers[4:8], c.Peers[8:12]}
	for _, g := range groups {
		for _, p := range g[1:] {
			if err := c.Connect(ctx, p.Index, g[0].Index); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range groups {
		waitFullView(t, g)
	}
	for _, g := range groups {
		for _, p := range g {
			if n := len(liveView(p)); n != 3 {
				t.Fatalf("before the merge, peer %d sees %d peers, want only its group's 3", p.Index, n)
			}
		}
	}
	joiner := c.Peers[12]
	for _, g := range groups {
		if err := c.Connect(ctx, joiner.Index, g[0].Index); err != nil {
			t.Fatal(err)
		}
	}
	waitFullView(t, c.Peers)
}

// gaterLog records the peers a node gated.
type gaterLog struct {
	mu      sync.Mutex
	blocked map[peer.ID]string
}

func (g *gaterLog) Block(p peer.ID, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.blocked[p] = reason
}

func (g *gaterLog) has(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.blocked[p]
	return ok
}

// intruder is a libp2p host on the cluster's mocknet that speaks the
// fabgossip protocols through a bare transport, with whatever credentials a
// test gives it.
type intruder struct {
	key      crypto.PrivKey
	id       peer.ID
	tr       *transport.Transport
	mu       sync.Mutex
	received int
}

func newIntruder(t *testing.T, c *testnet.Cluster) *intruder {
	t.Helper()
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Mocknet.AddPeer(key, ma.StringCast("/ip4/10.200.0.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Mocknet.LinkAll(); err != nil {
		t.Fatal(err)
	}
	in := &intruder{key: key, id: h.ID()}
	in.tr, err = transport.New(h, transport.DefaultConfig(), transport.WithPushHandler(func(peer.ID, *wire.Batch) {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.received++
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.tr.Close() })
	return in
}

func (in *intruder) pushes() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.received
}

// aliveWith signs an alive for the intruder carrying cert.
func (in *intruder) aliveWith(t *testing.T, cert *wire.Certificate) *wire.Envelope {
	t.Helper()
	env, err := transport.Sign(in.key, &wire.Message{Content: &wire.Message_Alive{Alive: &wire.Alive{
		Certificate: cert, Incarnation: 1, Sequence: 1,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func knownAnywhere(c *testnet.Cluster, id peer.ID) bool {
	for _, p := range c.Peers {
		if slices.ContainsFunc(p.Peers(), func(q node.Peer) bool { return q.ID == id }) {
			return true
		}
	}
	return false
}

// TestOutsiders: a peer whose certificate is from an unknown CA, for another
// peer ID, for another network, or expired never enters any view, receives
// no alive, is disconnected and gated.
func TestOutsiders(t *testing.T) {
	gaters := map[int]*gaterLog{}
	tr := newRecorder()
	c := startCluster(t, oneOrg(4), testnet.Options{Seed: 12, NodeOptions: func(p *testnet.Peer) []node.Option {
		g := &gaterLog{blocked: map[peer.ID]string{}}
		gaters[p.Index] = g
		return []node.Option{node.WithGater(g), node.WithTracer(tr.at(p.Host.ID()))}
	}})
	waitFullView(t, c.Peers)
	target := c.Peers[1]
	now := time.Now()
	rogueCA, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fields := func(id peer.ID) identity.CertificateFields {
		return identity.CertificateFields{Network: "test", Org: "A", PeerID: id, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), Serial: 99}
	}
	tests := []struct {
		name  string
		ca    crypto.PrivKey
		cert  func(f identity.CertificateFields) identity.CertificateFields
		valid bool
	}{
		{name: "unknown CA", ca: rogueCA, cert: func(f identity.CertificateFields) identity.CertificateFields { return f }},
		{name: "another peer ID", ca: c.CAKeys["A"], cert: func(f identity.CertificateFields) identity.CertificateFields {
			f.PeerID = c.Peers[3].Host.ID()
			return f
		}},
		{name: "another network", ca: c.CAKeys["A"], cert: func(f identity.CertificateFields) identity.CertificateFields {
			f.Network = "other"
			return f
		}},
		{name: "expired", ca: c.CAKeys["A"], cert: func(f identity.CertificateFields) identity.CertificateFields {
			f.NotBefore, f.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour)
			return f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newIntruder(t, c)
			cert, err := identity.IssueCertificate(tt.ca, tt.cert(fields(in.id)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := in.tr.Hello(ctx, target.Host.ID(), &wire.Hello{Alive: in.aliveWith(t, cert)}); err == nil {
				t.Fatal("the target answered an outsider's hello")
			}
			waitFor(t, "the outsider disconnected", func() bool {
				return target.Host.Network().Connectedness(in.id) != network.Connected
			})
			if !gaters[target.Index].has(in.id) {
				t.Error("the outsider was not gated")
			}
			// A heartbeat round later, it is still unknown and was sent nothing.
			seen := tr.receivedCount()
			waitFor(t, "a round of alive traffic", func() bool { return tr.receivedCount() >= seen+2*len(c.Peers) })
			if knownAnywhere(c, in.id) {
				t.Error("the outsider entered a view")
			}
			if n := in.pushes(); n != 0 {
				t.Errorf("the outsider received %d push frames", n)
			}
		})
	}
}

// TestSpoofing: a member replaying another peer's alive envelope over its
// own connection gains nothing: it is not answered, not taken for that peer,
// and is disconnected.
func TestSpoofing(t *testing.T) {
	tr := newRecorder()
	c := startCluster(t, oneOrg(4), testnet.Options{Seed: 13, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	waitFullView(t, c.Peers)
	victim, target := c.Peers[3], c.Peers[1]
	var replay *wire.Envelope
	for _, r := range tr.all() {
		var m wire.Message
		if proto.Unmarshal(r.env.GetPayload(), &m) != nil || m.GetAlive() == nil {
			continue
		}
		if f, err := identity.DecodeCertificate(m.GetAlive().GetCertificate()); err == nil && f.PeerID == victim.Host.ID() {
			replay = r.env
			break
		}
	}
	if replay == nil {
		t.Fatal("no alive of the victim was recorded")
	}
	in := newIntruder(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := in.tr.Hello(ctx, target.Host.ID(), &wire.Hello{Alive: replay}); err == nil {
		t.Fatal("the target answered a hello that replays another peer's alive")
	}
	waitFor(t, "the spoofer disconnected", func() bool {
		return target.Host.Network().Connectedness(in.id) != network.Connected
	})
	if knownAnywhere(c, in.id) {
		t.Fatal("the spoofer entered a view")
	}
	if !slices.Contains(liveView(target), victim.Host.ID()) {
		t.Fatal("the victim dropped out of the target's view")
	}
}

// TestEndpointLeakage is Fabric's TestMultipleOrgEndpointLeakage: 2 orgs × 5
// peers, 2 external per org. A peer that is not external is never known to
// the other org, no internal address ever reaches the other org, and the
// external peers of both orgs know each other.
func TestEndpointLeakage(t *testing.T) {
	topo := testnet.Topology{
		Network:  "test",
		Orgs:     []testnet.OrgSpec{{Name: "A", Peers: 5, External: 2}, {Name: "B", Peers: 5, External: 2}},
		Channels: []identity.Channel{{Name: "ch", Orgs: []string{"A", "B"}}},
	}
	tr := newRecorder()
	c := startCluster(t, topo, testnet.Options{Seed: 14, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	orgOf := map[peer.ID]string{}
	external := map[peer.ID]bool{}
	for _, p := range c.Peers {
		orgOf[p.Host.ID()] = p.Org
		external[p.Host.ID()] = p.External
	}
	for _, p := range c.Peers {
		var want []*testnet.Peer
		for _, q := range c.Peers {
			if q.Org == p.Org || p.External && q.External {
				want = append(want, q)
			}
		}
		waitFor(t, fmt.Sprintf("peer %d sees its %d peers", p.Index, len(want)-1), func() bool {
			view := liveView(p)
			for _, q := range want {
				if q != p && !slices.Contains(view, q.Host.ID()) {
					return false
				}
			}
			return true
		})
		for _, q := range p.Peers() {
			if q.Org != p.Org && !(p.External && external[q.ID]) {
				t.Errorf("peer %d (%s, external=%v) knows %s of org %s (external=%v)", p.Index, p.Org, p.External, q.ID, q.Org, external[q.ID])
			}
		}
	}
	crossed := 0
	for _, r := range tr.all() {
		if orgOf[r.from] == orgOf[r.to] {
			continue
		}
		crossed++
		if r.env.GetSecret() != nil {
			t.Errorf("an envelope from org %s to org %s carries a Secret (internal addresses)", orgOf[r.from], orgOf[r.to])
		}
		var m wire.Message
		if err := proto.Unmarshal(r.env.GetPayload(), &m); err != nil {
			t.Fatal(err)
		}
		if a := m.GetAlive(); a != nil {
			if p := aliveSubjectOf(t, a); !external[p] {
				t.Errorf("the alive of non-external peer %s crossed from org %s to org %s", p, orgOf[r.from], orgOf[r.to])
			}
		}
	}
	if crossed == 0 {
		t.Fatal("nothing crossed between the orgs: the test inspected nothing")
	}
}

// TestExpiry: a stopped peer leaves every view after AliveExpirationTimeout
// and comes back when restarted.
func TestExpiry(t *testing.T) {
	c := startCluster(t, oneOrg(5), testnet.Options{Seed: 15})
	waitFullView(t, c.Peers)
	gone := c.Peers[4]
	if err := c.Stop(gone.Index); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Peers[:4] {
		waitFor(t, fmt.Sprintf("peer %d expires the stopped peer", p.Index), func() bool {
			return !slices.Contains(liveView(p), gone.Host.ID())
		})
	}
	if err := c.Restart(gone.Index, 1); err != nil {
		t.Fatal(err)
	}
	waitFullView(t, c.Peers)
}

// TestSlimHeartbeats: with the certificate left out of every heartbeat
// (PublishCertPeriod 0), peers still converge (hellos and membership
// exchanges carry full alives), and the slim heartbeats alone keep every
// member alive for several expiry timeouts. With DirectAlive each heartbeat
// reaches each receiver once, from its subject; with Fabric's forwarding,
// copies come through third peers too. A converged membership exchange
// carries nothing.
func TestSlimHeartbeats(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			cfg := node.LocalConfig()
			cfg.PublishCertPeriod = 0
			cfg.DirectAlive = direct
			tr := newRecorder()
			c := startCluster(t, oneOrg(6), testnet.Options{Seed: 31, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
				return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
			}})
			waitFullView(t, c.Peers)
			time.Sleep(2 * cfg.AliveTimeInterval) // late handshakes, and the full alives they forward, end
			start := len(tr.all())
			// Longer than the expiry timeout: only slim heartbeats keep the views full.
			time.Sleep(cfg.AliveExpirationTimeout + 2*cfg.AliveTimeInterval)
			for _, p := range c.Peers {
				if got := len(liveView(p)); got != len(c.Peers)-1 {
					t.Errorf("peer %d sees %d live peers after %v of slim heartbeats, want %d", p.Index, got, cfg.AliveExpirationTimeout, len(c.Peers)-1)
				}
			}
			slim, full, relayed := 0, 0, 0
			for _, r := range tr.all()[start:] {
				var m wire.Message
				if err := proto.Unmarshal(r.env.GetPayload(), &m); err != nil || m.GetAlive() == nil {
					continue
				}
				if m.GetAlive().GetCertificate() != nil {
					full++
					continue
				}
				slim++
				if aliveSubjectOf(t, m.GetAlive()) != r.from {
					relayed++
				}
			}
			if slim == 0 || full != 0 {
				t.Errorf("after convergence: %d slim and %d full heartbeats received, want some slim and no full", slim, full)
			}
			if direct && relayed != 0 {
				t.Errorf("direct heartbeats: %d of %d came through a third peer, want 0", relayed, slim)
			}
			if !direct && relayed == 0 {
				t.Errorf("forwarded heartbeats: none of %d came through a third peer", slim)
			}
		})
	}
}

// TestHeartbeatFromUnknownPeer: a slim heartbeat about a peer whose
// certificate this peer never verified is refused, and makes it ask the
// sender for the membership (where a real subject's certificate would come
// from).
func TestHeartbeatFromUnknownPeer(t *testing.T) {
	cfg := node.LocalConfig()
	cfg.PublishCertPeriod = 0
	cfg.MembershipSyncInterval = time.Hour // only the unknown heartbeat may start an exchange
	tr := newRecorder()
	var asked sync.Map // peer asked for the membership by peer 0 → count
	var answered atomic.Int64
	c := startCluster(t, oneOrg(3), testnet.Options{Seed: 32, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		opts := []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
		if p.Index == 0 {
			opts = append(opts, node.WithNetworkWrap(nil, func(nw node.Network) node.Network { return membershipCounter{nw, &asked, &answered} }))
		}
		return opts
	}})
	waitFullView(t, c.Peers)
	a, b := c.Peers[0], c.Peers[1]
	time.Sleep(cfg.AliveTimeInterval) // past any exchange the handshakes started
	askedB := func() int64 {
		v, _ := asked.Load(b.Host.ID())
		n, _ := v.(*atomic.Int64)
		if n == nil {
			return 0
		}
		return n.Load()
	}
	was := askedB()
	// A slim heartbeat about a fresh key, as if b had relayed it.
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := transport.Sign(key, &wire.Message{Content: &wire.Message_Alive{Alive: &wire.Alive{PeerId: []byte(stranger), Incarnation: 1, Sequence: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	before := tr.droppedCount("alive", "unknown_peer")
	a.Node.InjectEnvelope(b.Host.ID(), env)
	if got := tr.droppedCount("alive", "unknown_peer") - before; got != 1 {
		t.Fatalf("slim heartbeat about an unknown peer: %d drops as unknown_peer, want 1", got)
	}
	if slices.Contains(liveView(a), stranger) {
		t.Fatal("the unknown peer entered the view on a slim heartbeat")
	}
	waitFor(t, "peer 0 asks peer 1 for the membership", func() bool { return askedB() > was })
	// Both know every member: the answer leaves all of them out.
	if n := answered.Load(); n != 0 {
		t.Errorf("a converged membership exchange carried %d alives, want 0", n)
	}
}

// membershipCounter counts the membership requests a node sends, by peer.
// The count goes up once the response is in, and answered holds the alive
// envelopes of the latest response.
type membershipCounter struct {
	node.Network
	asked    *sync.Map
	answered *atomic.Int64
}

func (m membershipCounter) Pull(ctx context.Context, to peer.ID, req *wire.PullRequest) (*wire.PullResponse, error) {
	resp, err := m.Network.Pull(ctx, to, req)
	if req.GetMembership() != nil && err == nil {
		m.answered.Store(int64(len(resp.GetMembership().GetAlive())))
		v, _ := m.asked.LoadOrStore(to, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	return resp, err
}

// TestRelayedHeartbeatVerified: with DirectAlive a heartbeat is checked by
// its signature only when it does not come from its subject (whose own
// connection authenticates it, and which is never forwarded): a badly
// signed heartbeat relayed by a third peer is refused and counted against
// that peer.
func TestRelayedHeartbeatVerified(t *testing.T) {
	tr := newRecorder()
	c := startCluster(t, oneOrg(3), testnet.Options{Seed: 41, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	a, b, relay := c.Peers[0], c.Peers[1], c.Peers[2]
	waitFor(t, "a full view", func() bool { return len(a.Peers()) == 2 })
	env, err := b.SignHeartbeat()
	if err != nil {
		t.Fatal(err)
	}
	env.Signature[0] ^= 1
	a.InjectEnvelope(relay.Host.ID(), env)
	if got := tr.droppedCount("alive", "bad_signature"); got != 1 {
		t.Fatalf("%d relayed forged heartbeats refused, want 1", got)
	}
	if a.Score(relay.Host.ID()) == 0 {
		t.Fatal("the relay of a forged heartbeat was not scored")
	}
}
