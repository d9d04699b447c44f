package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
	"github.com/fabgossip/fabgossip/transport/wire"
)

// publishN publishes n blocks on ch from p and returns them.
func publishN(t *testing.T, p *testnet.Peer, ch string, n int) []node.Block {
	t.Helper()
	var out []node.Block
	for i := range n {
		b, err := p.Publish(context.Background(), ch, fmt.Appendf(nil, "%s-%d", ch, i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestPullOnly is Fabric's TestPull: with push disabled, 6 peers converge on
// all 10 blocks through pull alone.
func TestPullOnly(t *testing.T) {
	cfg := node.LocalConfig()
	cfg.PropagateIterations = 0
	tr := newRecorder()
	c := startCluster(t, oneOrg(6), testnet.Options{Seed: 2, Config: &cfg, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	subs := joinAll(t, c, "ch")
	pub := c.Peers[0]
	waitFor(t, "every peer eligible at the publisher", func() bool { return len(pub.ChannelPeers("ch")) == 5 })
	want := publishN(t, pub, "ch", 10)
	for _, p := range c.Peers {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], want)
	}
	if n := tr.acceptedVia(node.ViaPush); n != 0 {
		t.Fatalf("%d blocks arrived by push with push disabled", n)
	}
	if n := tr.acceptedVia(node.ViaPull); n != 50 {
		t.Fatalf("%d blocks arrived by pull, want 5 peers × 10", n)
	}
}

// TestDataLeakage is Fabric's TestDataLeakage: peers 0-4 join channel A and
// 5-9 channel B (one org, so org membership does not separate them); each
// block reaches exactly its channel's members, and no other peer receives it.
func TestDataLeakage(t *testing.T) {
	topo := testnet.Topology{
		Network: "test",
		Orgs:    []testnet.OrgSpec{{Name: "O", Peers: 10, External: 1}},
		Channels: []identity.Channel{
			{Name: "A", Orgs: []string{"O"}},
			{Name: "B", Orgs: []string{"O"}},
		},
	}
	tr := newRecorder()
	c := startCluster(t, topo, testnet.Options{Seed: 3, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	members := map[string][]*testnet.Peer{"A": c.Peers[:5], "B": c.Peers[5:]}
	subs := map[string]map[int]*node.Subscription{}
	for ch, ps := range members {
		subs[ch] = map[int]*node.Subscription{}
		for _, p := range ps {
			if err := p.JoinChannel(ch); err != nil {
				t.Fatal(err)
			}
			s, err := p.Subscribe(ch)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			subs[ch][p.Index] = s
		}
	}
	for ch, ps := range members {
		waitFor(t, "channel "+ch+" converged", func() bool { return len(ps[0].ChannelPeers(ch)) == 4 })
	}
	for ch, ps := range members {
		want := publishN(t, ps[0], ch, 10)
		for _, p := range ps {
			expectBlocks(t, fmt.Sprintf("peer %d on %s", p.Index, ch), subs[ch][p.Index], want)
		}
	}
	for ch, ps := range members {
		for _, p := range c.Peers {
			if slices.Contains(ps, p) {
				continue
			}
			if n := tr.blocksReceivedAt(p.Host.ID(), ch); n != 0 {
				t.Errorf("peer %d, not a member of %s, received %d of its blocks", p.Index, ch, n)
			}
		}
	}
}

// TestConfidentiality is Fabric's TestConfidentiality with its assertions
// written correctly: orgs A, B, C, D × 3 peers (2 external each), channels
// C0{A,B}, C1{A,C}, C2{B,C}, C3{B,D}. Every message that crosses an org
// boundary mentions only the sender's and the receiver's orgs, and D never
// learns of A or C.
func TestConfidentiality(t *testing.T) {
	topo := testnet.Topology{
		Network: "test",
		Orgs: []testnet.OrgSpec{
			{Name: "A", Peers: 3, External: 2}, {Name: "B", Peers: 3, External: 2},
			{Name: "C", Peers: 3, External: 2}, {Name: "D", Peers: 3, External: 2},
		},
		Channels: []identity.Channel{
			{Name: "C0", Orgs: []string{"A", "B"}},
			{Name: "C1", Orgs: []string{"A", "C"}},
			{Name: "C2", Orgs: []string{"B", "C"}},
			{Name: "C3", Orgs: []string{"B", "D"}},
		},
	}
	tr := newRecorder()
	c := startCluster(t, topo, testnet.Options{Seed: 4, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	orgOf := map[peer.ID]string{}
	for _, p := range c.Peers {
		orgOf[p.Host.ID()] = p.Org
	}
	subs := map[string]map[int]*node.Subscription{}
	for _, ch := range []string{"C0", "C1", "C2", "C3"} {
		subs[ch] = joinAll(t, c, ch)
	}
	// The publisher of each channel: a non-external peer of its first org, so
	// blocks must cross through external peers.
	publishers := map[string]*testnet.Peer{"C0": c.Peers[2], "C1": c.Peers[2], "C2": c.Peers[5], "C3": c.Peers[5]}
	for ch := range publishers {
		waitConverged(t, c, ch)
	}
	for ch, pub := range publishers {
		want := publishN(t, pub, ch, 5)
		for _, p := range c.Members(ch) {
			expectBlocks(t, fmt.Sprintf("peer %d (%s) on %s", p.Index, p.Org, ch), subs[ch][p.Index], want)
		}
	}

	crossed := 0
	for _, r := range tr.all() {
		src, dst := orgOf[r.from], orgOf[r.to]
		if src == dst {
			continue
		}
		crossed++
		for _, org := range mentionedOrgs(t, c.Network, orgOf, r.env) {
			if org != src && org != dst {
				t.Errorf("a message from org %s to org %s mentions org %s", src, dst, org)
			}
		}
	}
	if crossed == 0 {
		t.Fatal("no message crossed an org boundary: the test inspected nothing")
	}
	for _, p := range c.Peers {
		if p.Org != "D" {
			continue
		}
		for _, q := range p.Peers() {
			if q.Org == "A" || q.Org == "C" {
				t.Errorf("peer %d of D knows %s of org %s", p.Index, q.ID, q.Org)
			}
		}
	}
}

// mentionedOrgs returns the orgs an envelope reveals: the org of the peer an
// alive or StateInfo is about, and the publisher's org of a block.
func mentionedOrgs(t *testing.T, net *identity.Network, orgOf map[peer.ID]string, env *wire.Envelope) []string {
	t.Helper()
	var m wire.Message
	if err := proto.Unmarshal(env.GetPayload(), &m); err != nil {
		t.Fatalf("undecodable envelope on the wire: %v", err)
	}
	switch {
	case m.GetAlive() != nil:
		return []string{orgOf[aliveSubjectOf(t, m.GetAlive())]}
	case m.GetStateInfo() != nil:
		p, _ := peer.IDFromBytes(m.GetStateInfo().GetPeerId())
		return []string{orgOf[p]}
	case m.GetBlock() != nil:
		f, err := identity.DecodeCertificate(m.GetBlock().GetPublisherCertificate())
		if err != nil {
			t.Fatal(err)
		}
		return []string{f.Org}
	}
	return nil
}

// aliveSubjectOf returns the peer an alive on the wire is about: its
// certificate's, or a slim heartbeat's peer ID.
func aliveSubjectOf(t *testing.T, a *wire.Alive) peer.ID {
	t.Helper()
	if a.GetCertificate() == nil {
		p, err := peer.IDFromBytes(a.GetPeerId())
		if err != nil {
			t.Fatalf("slim heartbeat with a malformed peer ID: %v", err)
		}
		return p
	}
	f, err := identity.DecodeCertificate(a.GetCertificate())
	if err != nil {
		t.Fatal(err)
	}
	return f.PeerID
}

// TestLeave: after a peer leaves a channel it receives none of its later
// blocks and drops out of the others' channel views.
func TestLeave(t *testing.T) {
	tr := newRecorder()
	c := startCluster(t, oneOrg(5), testnet.Options{Seed: 5, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
	}})
	subs := joinAll(t, c, "ch")
	pub, leaver := c.Peers[0], c.Peers[4]
	waitFor(t, "channel converged", func() bool { return len(pub.ChannelPeers("ch")) == 4 })
	want := publishN(t, pub, "ch", 3)
	for _, p := range c.Peers {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], want)
	}
	if err := leaver.LeaveChannel("ch"); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Peers[:4] {
		// Seen as alive and no longer eligible: a peer that merely timed the
		// leaver out (a loaded machine can delay its heartbeats) would drop
		// it from ChannelPeers too, and push to it again once it is back.
		waitFor(t, fmt.Sprintf("peer %d sees the leave", p.Index), func() bool {
			peers := p.Peers()
			i := slices.IndexFunc(peers, func(q node.Peer) bool { return q.ID == leaver.Host.ID() })
			return i >= 0 && peers[i].Alive && !slices.Contains(peers[i].Channels, "ch")
		})
	}
	want = publishN(t, pub, "ch", 5)
	for _, p := range c.Peers[1:4] {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], want[:])
	}
	// Copies of the blocks published before the leave may still arrive (a
	// forward already on the wire); none published after it may.
	first := want[0].Number
	for _, r := range tr.all() {
		if r.to != leaver.Host.ID() {
			continue
		}
		var m wire.Message
		if proto.Unmarshal(r.env.GetPayload(), &m) == nil && m.GetBlock().GetChannel() == "ch" && m.GetBlock().GetNumber() >= first {
			t.Errorf("the peer that left received block %d, published after it left, from %s", m.GetBlock().GetNumber(), peerName(c, r.from))
		}
	}
}

// TestLoss: with 20% of push frames dropped at every receiver, every
// eligible peer still delivers every block, through the tree's grafts and
// pull; the repair (grafts retried while answers are slow, copies from
// several sources) is never taken for replays or any other misbehaviour.
func TestLoss(t *testing.T) {
	c := startCluster(t, oneOrg(8), testnet.Options{Seed: 6, NodeOptions: func(p *testnet.Peer) []node.Option {
		return []node.Option{node.WithInboundPushLoss(0.2, uint64(p.Index))}
	}})
	subs := joinAll(t, c, "ch")
	pub := c.Peers[0]
	waitFor(t, "channel converged", func() bool { return len(pub.ChannelPeers("ch")) == 7 })
	want := publishN(t, pub, "ch", 30)
	for _, p := range c.Peers {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], want)
	}
	for _, p := range c.Peers {
		for _, q := range c.Peers {
			if s := p.Score(q.Host.ID()); s != 0 {
				t.Errorf("peer %d holds a score of %v against honest peer %d", p.Index, s, q.Index)
			}
		}
	}
}

// waitConverged waits until every member of ch sees, as eligible, every
// member it may know: the other members of its org, and if it is external,
// the external members of the channel's other orgs.
func waitConverged(t *testing.T, c *testnet.Cluster, ch string) {
	t.Helper()
	members := c.Members(ch)
	for _, p := range members {
		want := 0
		for _, q := range members {
			if q != p && (q.Org == p.Org || p.External && q.External) {
				want++
			}
		}
		waitFor(t, fmt.Sprintf("peer %d sees its %d peers of %s", p.Index, want, ch), func() bool {
			return len(p.ChannelPeers(ch)) == want
		})
	}
}

// TestNetworkUpdateEndsEligibility: when a config update removes an org from
// a channel, its peers stop being eligible at once, and its own peers leave.
func TestNetworkUpdateEndsEligibility(t *testing.T) {
	topo := testnet.Topology{
		Network:  "test",
		Orgs:     []testnet.OrgSpec{{Name: "A", Peers: 2, External: 1}, {Name: "B", Peers: 2, External: 1}},
		Channels: []identity.Channel{{Name: "ch", Orgs: []string{"A", "B"}}},
	}
	c := startCluster(t, topo, testnet.Options{Seed: 7})
	subs := joinAll(t, c, "ch")
	waitConverged(t, c, "ch")
	spec := c.Network.Spec()
	spec.Channels[0].Orgs = []string{"A"}
	updated, err := identity.NewNetwork(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Peers {
		if err := p.UpdateNetwork(updated); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.Peers {
		for _, q := range p.ChannelPeers("ch") {
			if q.Org == "B" {
				t.Errorf("peer %d still sees %s of org B eligible for ch", p.Index, q.ID)
			}
		}
		if p.Org == "B" {
			if _, err := subs[p.Index].Next(context.Background()); !errors.Is(err, node.ErrNotMember) {
				t.Errorf("peer %d of B: subscription ended with %v, want ErrNotMember", p.Index, err)
			}
			if _, err := p.Publish(context.Background(), "ch", []byte("x")); !errors.Is(err, node.ErrNotMember) {
				t.Errorf("peer %d of B could still use ch: %v", p.Index, err)
			}
		}
	}
}

// peerName names a cluster peer by its index, for failure messages.
func peerName(c *testnet.Cluster, id peer.ID) string {
	for _, p := range c.Peers {
		if p.Host.ID() == id {
			return fmt.Sprintf("peer %d", p.Index)
		}
	}
	return id.String()
}
