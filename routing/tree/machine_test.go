package tree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/libp2p/go-libp2p/core/peer"
)

var t0 = time.Unix(1_000_000, 0)

// testView: channel c on orgs A and B. Org A: self a0 (external), a1 (external), a2, r (the
// root), and x, which holds no StateInfo for c. Org B: b0, b1 (external), b2 (not external).
func testView() routing.View {
	in := map[string]bool{"c": true}
	m := func(id, org string, ext bool, ch map[string]bool) routing.Member {
		return routing.Member{ID: peer.ID(id), Org: org, External: ext, Channels: ch, Alive: true}
	}
	v := routing.View{ChannelOrgs: map[string][]string{"c": {"A", "B"}}}
	v.Members = []routing.Member{
		m("a0", "A", true, in), m("a1", "A", true, in), m("a2", "A", false, in), m("r", "A", false, in),
		m("x", "A", true, map[string]bool{}),
		m("b0", "B", true, in), m("b1", "B", true, in), m("b2", "B", false, in),
	}
	v.Self = v.Members[0]
	return v
}

func viewFor(v routing.View, self string) routing.View {
	for _, m := range v.Members {
		if string(m.ID) == self {
			v.Self = m
		}
	}
	return v
}

var tid = ID{Channel: "c", Root: "r"}

func newMachine(t *testing.T, cfg Config, self string, v routing.View) *Machine {
	t.Helper()
	m, err := New(cfg, peer.ID(self), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	m.SetView(viewFor(v, self))
	return m
}

// allEager is a config under which every link of the test view starts eager.
func allEager() Config {
	c := DefaultConfig()
	c.InitialEager = 10
	return c
}

func ids(ss ...string) []peer.ID {
	out := make([]peer.ID, len(ss))
	for i, s := range ss {
		out[i] = peer.ID(s)
	}
	return out
}

func payloadsTo(r Ready) []peer.ID {
	var out []peer.ID
	for _, s := range r.Payloads {
		out = append(out, s.To)
	}
	slices.Sort(out)
	return out
}

func ihavesTo(r Ready) []peer.ID {
	var out []peer.ID
	for _, a := range r.IHaves {
		out = append(out, a.To)
	}
	slices.Sort(out)
	return out
}

func TestCandidates(t *testing.T) {
	v := testView()
	got := Candidates(v, "c", 2)
	own := slices.DeleteFunc(slices.Clone(got), func(c Candidate) bool { return c.CrossOrg })
	if want := []Candidate{{"a1", false}, {"a2", false}, {"r", false}}; !slices.Equal(own, want) {
		t.Fatalf("own-org links %v, want %v", own, want)
	}
	for _, c := range got {
		if c.ID == "x" || c.ID == "b2" || c.ID == "a0" {
			t.Errorf("link to %s: ineligible, foreign non-external or self", c.ID)
		}
	}
	if n := len(got) - len(own); n != 1 {
		t.Errorf("a0 has %d doors, want 1 (two doors between A's and B's two externals)", n)
	}
	if c := Candidates(viewFor(v, "a2"), "c", 2); slices.ContainsFunc(c, func(c Candidate) bool { return c.CrossOrg }) {
		t.Errorf("non-external a2 has cross-org links: %v", c)
	}
	if c := Candidates(viewFor(v, "x"), "c", 2); c != nil {
		t.Errorf("x, not in the channel, has links %v", c)
	}
	// Doors are symmetric: a links b exactly when b links a, and every pair of orgs is linked.
	doors := 0
	for _, a := range []string{"a0", "a1"} {
		for _, c := range Candidates(viewFor(v, a), "c", 2) {
			if !c.CrossOrg {
				continue
			}
			doors++
			back := Candidates(viewFor(v, string(c.ID)), "c", 2)
			if !slices.Contains(back, Candidate{peer.ID(a), true}) {
				t.Errorf("door %s→%s is not linked back", a, c.ID)
			}
		}
	}
	if doors != 2 {
		t.Errorf("%d doors between A and B, want 2", doors)
	}
}

func TestInitialRuleIsSymmetric(t *testing.T) {
	v := routing.View{ChannelOrgs: map[string][]string{"c": {"A"}}}
	for i := range 30 {
		v.Members = append(v.Members, routing.Member{ID: peer.ID(fmt.Sprintf("p%02d", i)), Org: "A", Channels: map[string]bool{"c": true}, Alive: true})
	}
	id := ID{Channel: "c", Root: "p00"}
	ms := map[peer.ID]*Machine{}
	eager := 0
	cfg := DefaultConfig()
	cfg.MaxEager = 0 // the root would trim its children, and this test delivers no PRUNE
	for _, mem := range v.Members {
		m := newMachine(t, cfg, string(mem.ID), v)
		if mem.ID == id.Root {
			m.Publish(id, 1, t0)
		} else {
			m.IHave(id.Root, id, nil, t0) // creates the tree
		}
		ms[mem.ID] = m
	}
	for p, m := range ms {
		for _, q := range m.Eager(id) {
			eager++
			if !slices.Contains(ms[q].Eager(id), p) {
				t.Errorf("%s holds %s eager, not the reverse", p, q)
			}
		}
	}
	if avg := float64(eager) / 30; avg < 2 || avg > 6 {
		t.Errorf("%.1f initial eager links per peer, want about InitialEager = 4", avg)
	}
}

func TestForward(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	m.Prune("a2", tid, false, t0)
	m.Payload("a1", tid, 7, true, t0)
	r := m.Ready()
	// Eager: a1 (the sender), a2 (pruned, lazy), r (the root), the door: payload to the door only.
	if got := payloadsTo(r); len(got) != 1 || !strings.HasPrefix(string(got[0]), "b") {
		t.Errorf("payloads to %v, want the door only", got)
	}
	if got := ihavesTo(r); !slices.Equal(got, ids("a2")) {
		t.Errorf("IHAVE to %v, want [a2]", got)
	}
	m.Publish(tid, 8, t0)
	if r := m.Ready(); !r.Empty() {
		t.Errorf("Publish on a tree rooted elsewhere output %+v", r)
	}
}

func TestDuplicatePrune(t *testing.T) {
	cases := []struct {
		name      string
		setup     func(m *Machine)
		num       uint64
		at        time.Duration
		wantPrune bool
	}{
		{name: "redundant eager link", num: 20, at: 2 * time.Second, wantPrune: true},
		{name: "grafted within PruneGuard", setup: func(m *Machine) { m.Graft("a1", tid, nil, t0.Add(1500*time.Millisecond)) }, num: 20, at: 2 * time.Second},
		{name: "graft guard expired", setup: func(m *Machine) { m.Graft("a1", tid, nil, t0) }, num: 20, at: 2 * time.Second, wantPrune: true},
		{name: "old block", num: 20 - 16, at: 2 * time.Second},
		{name: "last eager parent", setup: func(m *Machine) {
			for _, p := range m.Eager(tid) {
				if p != "a1" {
					m.Prune(p, tid, false, t0)
				}
			}
		}, num: 20, at: 2 * time.Second},
		{name: "duplicate on a lazy link: the sender holds it eager", setup: func(m *Machine) { m.Prune("a1", tid, false, t0) }, num: 20, at: 2 * time.Second, wantPrune: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, allEager(), "a0", testView())
			m.Payload("a2", tid, 20, true, t0)
			if tc.setup != nil {
				tc.setup(m)
			}
			m.Ready()
			m.Payload("a1", tid, tc.num, false, t0.Add(tc.at))
			r := m.Ready()
			pruned := slices.Contains(r.Prunes, Link{To: "a1", ID: tid})
			if pruned != tc.wantPrune {
				t.Fatalf("pruned %v, want %v (outputs %+v)", pruned, tc.wantPrune, r)
			}
			if pruned && slices.Contains(m.Eager(tid), "a1") {
				t.Errorf("a1 still eager after PRUNE")
			}
		})
	}
}

func TestSymmetryRepair(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	m.Prune("a1", tid, false, t0)
	if slices.Contains(m.Eager(tid), "a1") {
		t.Fatal("a1 eager after its PRUNE")
	}
	m.Payload("a1", tid, 3, true, t0)
	if !slices.Contains(m.Eager(tid), "a1") {
		t.Error("a fresh push on a lazy link did not make it eager")
	}
	m.Graft("a2", tid, nil, t0)
	if !slices.Contains(m.Eager(tid), "a2") {
		t.Error("GRAFT did not make the link eager")
	}
}

func TestGraftRetryOrder(t *testing.T) {
	cfg := allEager()
	m := newMachine(t, cfg, "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	m.Ready()
	m.IHave("a2", tid, []uint64{2}, t0)
	m.IHave("r", tid, []uint64{2}, t0.Add(time.Millisecond))
	r := m.Ready()
	if r.NextTick.IsZero() || r.NextTick.Before(t0.Add(cfg.GraftTimeout)) {
		t.Fatalf("timer at %v, want at least GraftTimeout after the IHAVE", r.NextTick.Sub(t0))
	}
	var order []peer.ID
	now := r.NextTick
	for range 2*graftRounds + 2 {
		m.Tick(now)
		r = m.Ready()
		if len(r.Grafts) > 1 {
			t.Fatalf("%d grafts outstanding for one block", len(r.Grafts))
		}
		for _, g := range r.Grafts {
			order = append(order, g.To)
		}
		if r.NextTick.IsZero() {
			break
		}
		now = r.NextTick
	}
	want := slices.Repeat(ids("a2", "r"), graftRounds)
	if !slices.Equal(order, want) {
		t.Errorf("grafted %v, want %v", order, want)
	}
	// The arrival clears the entry: no graft after it.
	m.IHave("a2", tid, []uint64{2}, now)
	m.Payload("a2", tid, 2, true, now)
	m.Tick(now.Add(time.Hour))
	if r := m.Ready(); len(r.Grafts) != 0 {
		t.Errorf("grafted %v after the block arrived", r.Grafts)
	}
}

func TestGapGraftsTheSender(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	m.Payload("a1", tid, 4, true, t0)
	m.Tick(t0.Add(time.Second))
	var got []uint64
	for _, g := range m.Ready().Grafts {
		if g.To == "a1" {
			got = append(got, g.Numbers...)
		}
	}
	if slices.Sort(got); !slices.Equal(got, []uint64{2, 3}) {
		t.Errorf("grafted %v from a1, want [2 3]", got)
	}
}

func TestSendFailedAnnounces(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	m.SendFailed("a1", tid, 5, t0)
	m.SendFailed("b2", tid, 5, t0)
	r := m.Ready()
	if len(r.IHaves) != 1 || r.IHaves[0].To != "a1" || !slices.Equal(r.IHaves[0].Numbers, []uint64{5}) {
		t.Errorf("IHAVEs %+v, want one of 5 to a1", r.IHaves)
	}
}

func TestNothingToStrangers(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	for _, p := range ids("x", "b2", "stranger", "a0") {
		m.Graft(p, tid, []uint64{1, 2}, t0)
		m.IHave(p, tid, []uint64{1}, t0)
		m.Prune(p, tid, false, t0)
		m.SendFailed(p, tid, 1, t0)
	}
	m.Tick(t0.Add(time.Hour))
	if r := m.Ready(); !r.Empty() {
		t.Errorf("outputs for non-candidates: %+v", r)
	}
	// A link that vanishes loses the outputs queued for it.
	m.Payload("a1", tid, 1, true, t0)
	v := testView()
	v.Members = slices.DeleteFunc(v.Members, func(m routing.Member) bool { return m.ID == "a2" })
	m.SetView(v)
	r := m.Ready()
	if slices.Contains(payloadsTo(r), "a2") || slices.Contains(ihavesTo(r), "a2") {
		t.Errorf("outputs to a2 after it left the view: %+v", r)
	}
}

func TestBounds(t *testing.T) {
	cfg := allEager()
	cfg.MaxMissing, cfg.MaxTrees, cfg.MaxAnnouncers, cfg.MaxIHave = 100, 3, 2, 8
	m := newMachine(t, cfg, "a0", testView())
	huge := make([]uint64, 1_000_000)
	for i := range huge {
		huge[i] = uint64(i)
	}
	m.IHave("a1", tid, huge, t0)
	if s := m.Stats(); s.Missing != cfg.MaxIHave {
		t.Errorf("one IHAVE of a million numbers: %d missing entries, want MaxIHave = %d", s.Missing, cfg.MaxIHave)
	}
	for i := range 100 {
		for _, p := range ids("a1", "a2", "r") {
			m.IHave(p, tid, huge[i*8:i*8+8], t0)
		}
	}
	for i := range 10 {
		m.IHave("a1", ID{Channel: "c", Root: peer.ID(fmt.Sprintf("fake%d", i))}, huge[:8], t0)
	}
	s := m.Stats()
	if s.Missing > cfg.MaxMissing*cfg.MaxTrees || s.Trees > cfg.MaxTrees || s.Announcers > s.Missing*cfg.MaxAnnouncers {
		t.Errorf("stats %+v beyond MaxMissing %d per tree, MaxTrees %d, MaxAnnouncers %d", s, cfg.MaxMissing, cfg.MaxTrees, cfg.MaxAnnouncers)
	}
	m.Ready()
	m.Graft("a1", tid, huge, t0)
	if r := m.Ready(); len(r.Payloads) != cfg.MaxIHave {
		t.Errorf("a GRAFT of a million numbers: %d payload sends, want MaxIHave = %d", len(r.Payloads), cfg.MaxIHave)
	}
	// A tree that carried a payload outlives invented roots.
	m2 := newMachine(t, cfg, "a0", testView())
	m2.Payload("a1", tid, 1, true, t0)
	for i := range 20 {
		m2.IHave("a1", ID{Channel: "c", Root: peer.ID(fmt.Sprintf("fake%d", i))}, huge[:1], t0)
	}
	if m2.Eager(tid) == nil {
		t.Error("invented roots evicted the tree that carries blocks")
	}
	// Long outputs are split.
	m3 := newMachine(t, cfg, "a0", testView())
	for n := range uint64(20) {
		m3.SendFailed("a1", tid, n, t0)
	}
	for _, a := range m3.Ready().IHaves {
		if len(a.Numbers) > cfg.MaxIHave {
			t.Errorf("IHAVE of %d numbers, want <= %d", len(a.Numbers), cfg.MaxIHave)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.MaxMissing = -3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "MaxMissing") || !strings.Contains(err.Error(), "-3") {
		t.Errorf("error %v, want one naming MaxMissing and -3", err)
	}
	c = DefaultConfig()
	c.GraftTimeout = 0
	if _, err := New(c, "a", rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), "GraftTimeout") {
		t.Errorf("New error %v, want one naming GraftTimeout", err)
	}
}
