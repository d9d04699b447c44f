package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
)

// waitFor polls cond until it holds or the deadline passes. Multi-peer
// convergence has no single event to wait on; the deadline is generous and
// only bounds a failing test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startCluster(t testing.TB, topo testnet.Topology, opts testnet.Options) *testnet.Cluster {
	t.Helper()
	c, err := testnet.NewCluster(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// joinAll joins every member of ch and waits until each sees all the others
// as eligible.
func joinAll(t *testing.T, c *testnet.Cluster, ch string) map[int]*node.Subscription {
	t.Helper()
	subs := map[int]*node.Subscription{}
	members := c.Members(ch)
	for _, p := range members {
		if err := p.JoinChannel(ch); err != nil {
			t.Fatal(err)
		}
		s, err := p.Subscribe(ch)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		subs[p.Index] = s
	}
	return subs
}

// expectBlocks reads want blocks from s and checks their numbers and data.
func expectBlocks(t *testing.T, who string, s *node.Subscription, want []node.Block) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, w := range want {
		got, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("%s: waiting for block %d: %v", who, w.Number, err)
		}
		if got.Number != w.Number || string(got.Data) != string(w.Data) {
			t.Fatalf("%s: got block %d %q, want %d %q", who, got.Number, got.Data, w.Number, w.Data)
		}
	}
}

func oneOrg(peers int) testnet.Topology {
	return testnet.Topology{
		Network:  "test",
		Orgs:     []testnet.OrgSpec{{Name: "A", Peers: peers, External: 1}},
		Channels: []identity.Channel{{Name: "ch", Orgs: []string{"A"}}},
	}
}

// TestDissemination is Fabric's TestDissemination: a publisher and 10 peers in
// one channel; every peer delivers exactly the 10 blocks, in order, and the
// publisher never receives its own block back.
func TestDissemination(t *testing.T) {
	tr := newRecorder()
	reg := prometheus.NewRegistry() // peer 1's metrics
	c := startCluster(t, oneOrg(11), testnet.Options{Seed: 1, NodeOptions: func(p *testnet.Peer) []node.Option {
		opts := []node.Option{node.WithTracer(tr.at(p.Host.ID()))}
		if p.Index == 1 {
			opts = append(opts, node.WithRegisterer(reg))
		}
		return opts
	}})
	subs := joinAll(t, c, "ch")
	pub := c.Peers[0]
	waitFor(t, "every peer eligible at the publisher", func() bool { return len(pub.ChannelPeers("ch")) == 10 })

	var want []node.Block
	for i := range 10 {
		b, err := pub.Publish(context.Background(), "ch", fmt.Appendf(nil, "block-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	for _, p := range c.Peers {
		expectBlocks(t, fmt.Sprintf("peer %d", p.Index), subs[p.Index], want)
	}
	if n := deliveryLatencySamples(t, reg); n != 10 {
		t.Fatalf("peer 1 observed %d delivery latencies, want one per block (10)", n)
	}
	if n := tr.acceptedAt(pub.Host.ID()); n != 0 {
		// BlockAccepted at the publisher from anyone but itself would be a self-loop.
		t.Fatalf("the publisher accepted %d of its own blocks back from the network", n)
	}
	if n := tr.receivedBlocksAt(pub.Host.ID()); n != 0 {
		t.Fatalf("the publisher received %d copies of its own blocks", n)
	}
}

// deliveryLatencySamples reads the sample count of the delivery latency
// histogram from reg.
func deliveryLatencySamples(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "fabgossip_block_delivery_latency_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no delivery latency histogram registered")
	return 0
}
