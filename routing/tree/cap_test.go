package tree

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/libp2p/go-libp2p/core/peer"
)

// cliqueView is one org of n eligible peers p00…, all in channel c, self p00.
func cliqueView(n int) routing.View {
	v := routing.View{ChannelOrgs: map[string][]string{"c": {"A"}}}
	for i := range n {
		v.Members = append(v.Members, routing.Member{ID: peer.ID(fmt.Sprintf("p%02d", i)), Org: "A", Channels: map[string]bool{"c": true}, Alive: true})
	}
	v.Self = v.Members[0]
	return v
}

func prunesFull(r Ready) (full, plain []peer.ID) {
	for _, p := range r.Prunes {
		if p.Full {
			full = append(full, p.To)
		} else {
			plain = append(plain, p.To)
		}
	}
	return full, plain
}

// A peer with MaxEager children refuses a further GRAFT: no payload, a PRUNE marked full, the link
// stays lazy. The same grafter coming back within PruneGuard found nobody else and is taken.
func TestGraftRefusedWhenFull(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxEager = 2
	root := ID{Channel: "c", Root: "p00"}
	m := newMachine(t, cfg, "p00", cliqueView(8))
	m.Publish(root, 1, t0) // creates the tree and trims it to the cap
	m.Ready()
	for _, p := range m.Eager(root) {
		m.Prune(p, root, false, t0)
	}
	for _, p := range []peer.ID{"p01", "p02"} {
		m.Graft(p, root, nil, t0)
	}
	if got := m.Eager(root); !slices.Equal(got, []peer.ID{"p01", "p02"}) {
		t.Fatalf("eager %v after two grafts under the cap, want [p01 p02]", got)
	}
	m.Ready()

	at := t0.Add(10 * time.Millisecond)
	m.Graft("p03", root, []uint64{1}, at)
	r := m.Ready()
	if full, _ := prunesFull(r); len(r.Payloads) != 0 || !slices.Equal(full, []peer.ID{"p03"}) {
		t.Fatalf("graft over the cap: payloads %v, full prunes %v; want none and [p03]", payloadsTo(r), full)
	}
	if slices.Contains(m.Eager(root), "p03") {
		t.Fatal("a refused grafter is eager")
	}

	m.Graft("p03", root, []uint64{1}, at.Add(200*time.Millisecond))
	r = m.Ready()
	if !slices.Equal(payloadsTo(r), []peer.ID{"p03"}) || len(r.Prunes) != 0 || !slices.Contains(m.Eager(root), "p03") {
		t.Fatalf("second graft within PruneGuard: payloads %v, prunes %+v, eager %v; want it taken", payloadsTo(r), r.Prunes, m.Eager(root))
	}

	m.Graft("p04", root, []uint64{1}, at.Add(300*time.Millisecond))
	if full, _ := prunesFull(m.Ready()); !slices.Equal(full, []peer.ID{"p04"}) {
		t.Errorf("another grafter over the cap: full prunes %v, want [p04]", full)
	}
}

// cappedRoot is a0 of testView, the root of a tree of channel c, with every link eager at first
// and MaxEager max, and its one door.
func cappedRoot(t *testing.T, max int) (*Machine, ID, peer.ID) {
	t.Helper()
	cfg := allEager()
	cfg.MaxEager = max
	v := testView()
	var doors []peer.ID
	for _, c := range Candidates(viewFor(v, "a0"), "c", cfg.Doors) {
		if c.CrossOrg {
			doors = append(doors, c.ID)
		}
	}
	if len(doors) != 1 {
		t.Fatalf("doors %v, want one", doors)
	}
	return newMachine(t, cfg, "a0", v), ID{Channel: "c", Root: "a0"}, doors[0]
}

// Publishing on a tree with more own-org children than MaxEager prunes the farthest, marked full;
// doors are not counted.
func TestTrimToCap(t *testing.T) {
	m, root, door := cappedRoot(t, 2)
	for p, ms := range map[peer.ID]int{"a1": 3, "a2": 1, "r": 5, "b0": 50, "b1": 50} {
		m.ObserveRTT(p, time.Duration(ms)*time.Millisecond)
	}
	m.Publish(root, 1, t0)
	r := m.Ready()
	want := []peer.ID{"a1", "a2", door}
	slices.Sort(want)
	got := payloadsTo(r)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("payloads to %v, want %v (the two nearest own-org links and the door)", got, want)
	}
	if full, plain := prunesFull(r); !slices.Equal(full, []peer.ID{"r"}) || len(plain) != 0 {
		t.Errorf("prunes full %v plain %v, want full [r]", full, plain)
	}
	if got := ihavesTo(r); !slices.Equal(got, []peer.ID{"r"}) {
		t.Errorf("IHAVE to %v, want the pruned child [r]", got)
	}
}

// A door's GRAFT is taken however many own-org children a peer has: refusing it would send its
// org's entry two cross-org hops away, and Doors bounds those links already.
func TestDoorGraftNotCapped(t *testing.T) {
	m, root, door := cappedRoot(t, 1)
	m.Publish(root, 1, t0)
	m.Ready()
	m.Prune(door, root, false, t0)
	m.Ready()
	m.Graft(door, root, []uint64{1}, t0.Add(time.Millisecond))
	r := m.Ready()
	if full, _ := prunesFull(r); len(full) != 0 || !slices.Equal(payloadsTo(r), []peer.ID{door}) {
		t.Fatalf("door graft at the cap: payloads %v, full prunes %v; want the block sent to %s", payloadsTo(r), full, door)
	}
	m.Graft("r", root, []uint64{1}, t0.Add(2*time.Millisecond))
	if full, _ := prunesFull(m.Ready()); !slices.Equal(full, []peer.ID{"r"}) {
		t.Errorf("own-org graft at the cap: full prunes %v, want [r]", full)
	}
}

// A PRUNE marked full puts its sender behind the other announcers of a missing block, and a
// missing block grafted from it is grafted from the next announcer at once.
func TestFullAnnouncerGraftedLast(t *testing.T) {
	m := newMachine(t, DefaultConfig(), "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	m.Ready()
	m.Prune("a2", tid, true, t0)
	m.IHave("a2", tid, []uint64{2}, t0)
	m.IHave("a1", tid, []uint64{2}, t0.Add(time.Millisecond))
	at := m.Ready().NextTick
	m.Tick(at)
	if r := m.Ready(); len(r.Grafts) != 1 || r.Grafts[0].To != "a1" {
		t.Fatalf("grafts %+v, want one to a1, the announcer that is not full", r.Grafts)
	}

	// The graft to a1 is refused: a1 is full now, and the block goes to a2 without waiting out
	// RetryTimeout.
	m.Prune("a1", tid, true, at.Add(time.Millisecond))
	r := m.Ready()
	if !r.NextTick.Equal(at.Add(time.Millisecond)) {
		t.Fatalf("next tick %v after a refusal, want at once (%v)", r.NextTick, at.Add(time.Millisecond))
	}
	m.Tick(r.NextTick)
	if r := m.Ready(); len(r.Grafts) != 1 || r.Grafts[0].To != "a2" {
		t.Fatalf("grafts %+v after the refusal, want one to a2", r.Grafts)
	}
}

// The root receives no pushes, so a PRUNE of its that was lost would leave a child holding it
// eager forever; its IHAVE for a block the child lacks repairs that.
func TestRootAnnouncementMakesItLazy(t *testing.T) {
	m := newMachine(t, allEager(), "a0", testView())
	m.Payload("a1", tid, 1, true, t0)
	if !slices.Contains(m.Eager(tid), "r") {
		t.Fatal("the root link does not start eager under allEager")
	}
	m.IHave("r", tid, []uint64{4}, t0)
	if slices.Contains(m.Eager(tid), "r") {
		t.Error("the root announced a block we lack, and its link is still eager")
	}
	m.IHave("a1", tid, []uint64{4}, t0)
	if !slices.Contains(m.Eager(tid), "a1") {
		t.Error("an announcement from a peer other than the root changed its relation")
	}
}
