package testnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/node/peerconfig"
)

// Generating a WAN testnet writes one shaping plan that every peer config
// names and that holds every peer with its org, and each channel's floor is
// the plan's shortest path: one inter-org hop between external peers, then
// one inside the org, for a channel of several orgs.
func TestWANGenerateWritesThePlanEveryPeerReads(t *testing.T) {
	o := DefaultProcessOptions()
	o.Orgs, o.PeersPerOrg, o.External, o.Channels = 3, 3, 1, 2
	o.WAN = &WANOptions{EgressMbps: 50, Loss: 0.1}
	o.Seed = 3
	dir := t.TempDir()
	r := &run{o: o, dir: dir, victim: -1}
	if err := r.generate(); err != nil {
		t.Fatal(err)
	}
	plan, err := shape.LoadPlan(filepath.Join(dir, shapingFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Peers) != 9 || plan.Seed != 3 || plan.EgressMbps != 50 || plan.Loss != 0.1 || plan.Profile() != shape.DefaultProfile() {
		t.Fatalf("plan %+v", plan)
	}
	for i, g := range r.peers {
		if plan.Peers[i].ID != g.ID || plan.Peers[i].Org != g.Org {
			t.Errorf("plan peer %d is %+v, want %s of %s", i, plan.Peers[i], g.ID, g.Org)
		}
		c, err := peerconfig.Load(g.Config)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Path(c.Testnet.Shaping); got != filepath.Join(dir, shapingFile) {
			t.Errorf("%s: testnet.shaping resolves to %q, want the plan", g.Name, got)
		}
	}
	lat := plan.Latencies()
	for k := range r.channels {
		f := r.floor(k)
		lo := time.Duration(float64(shape.InterOrgLatency)*(1-shape.LatencyJitter)) + time.Duration(float64(shape.IntraOrgLatency)*(1-shape.LatencyJitter))
		if f < lo || f > 2*shape.InterOrgLatency {
			t.Errorf("%s: floor %v, want an inter-org hop and an intra-org one (at least %v)", r.channels[k].Name, f, lo)
		}
	}
	if got := shape.Floor(lat, 0, []int{0}, nil); got != 0 {
		t.Errorf("the floor of a lone publisher is %v", got)
	}

	r2 := &run{o: DefaultProcessOptions(), dir: t.TempDir(), victim: -1}
	if err := r2.generate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r2.dir, shapingFile)); err == nil || r2.floor(0) != 0 {
		t.Error("a testnet without --wan wrote a shaping plan or has a floor")
	}
}

func TestWANOptionsValidate(t *testing.T) {
	for _, w := range []WANOptions{{Loss: -0.1}, {Loss: 1}, {EgressMbps: -1}} {
		o := DefaultProcessOptions()
		o.WAN = &w
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", w)
		}
	}
}

// TestWANProcesses runs a small WAN testnet of real processes with 10% of
// the push frames lost: every block reaches every eligible peer and no
// other, frames were dropped, and no block was delivered faster than its
// floor (a lower bound, which no slow machine can break: every byte of a
// block waits at least its link's latency on every hop).
func TestWANProcesses(t *testing.T) {
	dir := t.TempDir()
	bin := buildFabgossip(t, dir)
	o := DefaultProcessOptions()
	o.Orgs, o.PeersPerOrg, o.External, o.Channels = 2, 2, 1, 1
	o.Blocks, o.Rate = 60, 30
	o.WAN = &WANOptions{EgressMbps: 100, Loss: 0.1}
	o.Binary, o.Dir = bin, filepath.Join(dir, "net")
	o.StartTimeout, o.DeliveryTimeout = 30*time.Second, 20*time.Second
	var out bytes.Buffer
	o.Out = &out
	defer func() { t.Logf("testnet output:\n%s", out.String()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := RunProcesses(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.FramesDropped == 0 || !strings.Contains(rep.Topology.WAN, "25ms between orgs") {
		t.Errorf("passed %v, %d frames dropped, WAN %q", rep.Passed, rep.FramesDropped, rep.Topology.WAN)
	}
	c := rep.Channels[0]
	if c.FloorMs <= 0 || float64(c.LatencyP50Ms) < c.FloorMs || c.P50OverFloor < 1 {
		t.Errorf("floor %.1fms, T_full p50 %.1fms (%.2f × floor): want a floor, and T_full at least that", c.FloorMs, c.LatencyP50Ms, c.P50OverFloor)
	}
	if s := out.String(); !strings.Contains(s, "p50 ÷ floor") || !strings.Contains(s, "push frames dropped") {
		t.Errorf("the table lacks the floor columns or the drops")
	}
	log, err := os.ReadFile(filepath.Join(o.Dir, "org1", "peer0", "peer.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "testnet shaping on") {
		t.Errorf("peer0.org1's log does not say it is shaped:\n%s", log)
	}
}
