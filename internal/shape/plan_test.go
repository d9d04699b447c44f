package shape

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// Latencies are symmetric, zero to oneself, within the jitter of their
// base (intra-org for two peers of an org, inter-org otherwise, and for a
// host in no org), and the same for the same seed.
func TestLatenciesFollowTheProfile(t *testing.T) {
	org := []int{0, 0, 0, 1, 1, 2, -1}
	p := DefaultProfile()
	lat := NewLatencies(org, p, 42)
	again := NewLatencies(org, p, 42)
	other := NewLatencies(org, p, 43)
	differs := false
	for i := range org {
		if lat.Between(i, i) != 0 {
			t.Errorf("latency %d–%d = %v, want 0", i, i, lat.Between(i, i))
		}
		for j := range org {
			if i == j {
				continue
			}
			d := lat.Between(i, j)
			base := p.InterOrg
			if org[i] >= 0 && org[i] == org[j] {
				base = p.IntraOrg
			}
			lo, hi := time.Duration(float64(base)*(1-p.Jitter)), time.Duration(float64(base)*(1+p.Jitter))
			if d < lo || d > hi {
				t.Errorf("latency %d–%d = %v, want within [%v, %v]", i, j, d, lo, hi)
			}
			if d != lat.Between(j, i) || d != again.Between(i, j) {
				t.Errorf("latency %d–%d = %v: not symmetric or not reproducible", i, j, d)
			}
			differs = differs || d != other.Between(i, j)
		}
	}
	if !differs {
		t.Error("another seed drew the same latencies")
	}
}

func TestFloorIsTheShortestPathToTheFarthestMember(t *testing.T) {
	// 0 → 1 costs 10 direct but 2 + 3 through 2; 3 is not a member.
	lat := NewZeroLatencies(4)
	lat.Set(0, 1, 10*time.Millisecond)
	lat.Set(0, 2, 2*time.Millisecond)
	lat.Set(2, 1, 3*time.Millisecond)
	lat.Set(0, 3, time.Millisecond)
	lat.Set(3, 1, time.Millisecond)
	if got := Floor(lat, 0, []int{0, 1, 2}, nil); got != 5*time.Millisecond {
		t.Errorf("floor %v, want 5ms (through member 2, not non-member 3)", got)
	}
	noRelay := func(a, b int) bool { return a == 0 }
	if got := Floor(lat, 0, []int{0, 1, 2}, noRelay); got != 10*time.Millisecond {
		t.Errorf("floor with the publisher as the only sender %v, want 10ms", got)
	}
}

// A plan survives its file, every peer draws the same latencies from it,
// and a peer's shaped host gets its own index's.
func TestPlanRoundTripsAndShapesItsPeers(t *testing.T) {
	mn := mocknet.New()
	defer func() { _ = mn.Close() }()
	plan := &Plan{Seed: 9, IntraOrgLatency: Duration(IntraOrgLatency), InterOrgLatency: Duration(InterOrgLatency), Jitter: LatencyJitter, EgressMbps: 100, Loss: 0.05}
	for i := range 4 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		plan.Peers = append(plan.Peers, PlanPeer{ID: h.ID(), Org: []string{"org1", "org2"}[i/2]})
	}
	path := filepath.Join(t.TempDir(), "shaping.json")
	if err := WritePlan(path, plan); err != nil {
		t.Fatal(err)
	}
	if err := WritePlan(path, plan); err == nil {
		t.Error("WritePlan replaced a file")
	}
	got, err := LoadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Profile() != plan.Profile() || got.Seed != 9 || got.EgressMbps != 100 || got.Loss != 0.05 || len(got.Peers) != 4 {
		t.Fatalf("loaded %+v, want %+v", got, plan)
	}
	a, b := plan.Latencies(), got.Latencies()
	for i := range 4 {
		for j := range 4 {
			if a.Between(i, j) != b.Between(i, j) {
				t.Fatalf("latency %d–%d differs after the file: %v, %v", i, j, a.Between(i, j), b.Between(i, j))
			}
		}
	}
	if a.Between(0, 1) > 3*time.Millisecond || a.Between(0, 2) < 20*time.Millisecond {
		t.Errorf("org1's link %v, org1–org2 link %v: want intra- and inter-org latencies", a.Between(0, 1), a.Between(0, 2))
	}
	h := mn.Hosts()[0]
	for _, x := range mn.Hosts() {
		if x.ID() == plan.Peers[1].ID {
			h = x
		}
	}
	s, err := New(h, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.String(), "25ms between orgs") || !strings.Contains(s.String(), "100 Mbit/s") {
		t.Errorf("description %q", s)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}

	stranger, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(stranger, got, nil); err == nil {
		t.Error("a host that is not in the plan was shaped")
	}
}

func TestPlanValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		plan  Plan
		field string
	}{
		{Plan{InterOrgLatency: -1}, "inter_org_latency"},
		{Plan{Jitter: 1}, "jitter"},
		{Plan{EgressMbps: -1}, "egress_mbps"},
		{Plan{Loss: 1}, "loss"},
		{Plan{Peers: []PlanPeer{{ID: "a", Org: "o"}, {ID: "a", Org: "o"}}}, "peers[1].id"},
		{Plan{Peers: []PlanPeer{{ID: peer.ID("a")}}}, "peers[0].org"},
	} {
		if err := c.plan.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: error %v, want one naming %s", c.plan, err, c.field)
		}
	}
}
