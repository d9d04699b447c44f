package node

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestNewer(t *testing.T) {
	for _, tt := range []struct {
		name               string
		inc, seq, inc0, s0 uint64
		want               bool
	}{
		{"higher sequence", 1, 5, 1, 4, true},
		{"replay", 1, 5, 1, 5, false},
		{"older sequence", 1, 4, 1, 5, false},
		{"new incarnation, lower sequence", 2, 0, 1, 9, true},
		{"old incarnation", 1, 9, 2, 0, false},
	} {
		if got := newer(tt.inc, tt.seq, tt.inc0, tt.s0); got != tt.want {
			t.Errorf("%s: newer = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMembershipApplyExpireRevive(t *testing.T) {
	t0 := time.Unix(1000, 0)
	far := t0.Add(time.Hour)
	tab := newMembership()
	p := peer.ID("p")
	in := ma.StringCast("/ip4/10.0.0.1/tcp/1")

	if fresh, _ := tab.apply(&member{id: p, org: "A", inc: 1, seq: 1, internal: []ma.Multiaddr{in}, notAfter: far}, t0); !fresh {
		t.Fatal("first alive not fresh")
	}
	if !tab.stale(p, 1, 1) || tab.stale(p, 1, 2) {
		t.Fatal("stale must hold for the replay and not for the next sequence")
	}
	if fresh, _ := tab.apply(&member{id: p, org: "A", inc: 1, seq: 1, notAfter: far}, t0.Add(time.Second)); fresh {
		t.Fatal("replay accepted")
	}
	// A newer alive stripped of its Secret keeps the internal address already known.
	tab.apply(&member{id: p, org: "A", inc: 1, seq: 2, notAfter: far}, t0.Add(2*time.Second))
	if got := tab.get(p).internal; len(got) != 1 || !got[0].Equal(in) {
		t.Fatalf("internal addresses lost: %v", got)
	}
	if died := tab.expire(t0.Add(4*time.Second), 3*time.Second); len(died) != 0 {
		t.Fatalf("expired too early: %v", died)
	}
	if died := tab.expire(t0.Add(5*time.Second), 3*time.Second); !slices.Equal(died, []peer.ID{p}) {
		t.Fatalf("expire = %v, want [p]", died)
	}
	if tab.live(p) {
		t.Fatal("dead member reported live")
	}
	// Replays do not revive; a newer alive does.
	if fresh, _ := tab.apply(&member{id: p, org: "A", inc: 1, seq: 2, notAfter: far}, t0.Add(6*time.Second)); fresh {
		t.Fatal("replay revived a dead member")
	}
	if fresh, revived := tab.apply(&member{id: p, org: "A", inc: 2, seq: 0, notAfter: far}, t0.Add(7*time.Second)); !fresh || !revived {
		t.Fatalf("restart: fresh=%v revived=%v, want both", fresh, revived)
	}
}

func TestMembershipExpiresCertificates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tab := newMembership()
	tab.apply(&member{id: "p", inc: 1, notAfter: t0.Add(time.Second)}, t0)
	if died := tab.expire(t0.Add(time.Second), time.Hour); len(died) != 1 {
		t.Fatal("a member whose certificate expired stays live")
	}
}

func TestMembershipPurgesLongDead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tab := newMembership()
	tab.apply(&member{id: "p", inc: 1, notAfter: t0.Add(time.Hour)}, t0)
	tab.expire(t0.Add(time.Second), time.Second)
	if gone := tab.purge(t0.Add(purgeFactor*time.Second-time.Nanosecond), time.Second); len(gone) != 0 {
		t.Fatalf("purged too early: %v", gone)
	}
	if gone := tab.purge(t0.Add(purgeFactor*time.Second), time.Second); !slices.Equal(gone, []peer.ID{"p"}) || tab.get("p") != nil {
		t.Fatalf("purge = %v, want [p] and the member forgotten", gone)
	}
}

// TestMembershipCompletesStrippedAlive: an alive of this org's member whose
// first copy came through another org (no Secret, so no internal address)
// is completed by the same alive with its Secret, which is otherwise a replay.
func TestMembershipCompletesStrippedAlive(t *testing.T) {
	t0 := time.Unix(1000, 0)
	far := t0.Add(time.Hour)
	tab := newMembership()
	p := peer.ID("p")
	in := ma.StringCast("/ip4/10.0.0.1/tcp/1")

	tab.apply(&member{id: p, org: "A", inc: 1, seq: 1, notAfter: far}, t0)
	if !tab.lacksInternal(p, 1, 1, "A") {
		t.Fatal("a stripped copy must be completable")
	}
	if tab.lacksInternal(p, 1, 1, "B") || tab.lacksInternal(p, 1, 2, "A") {
		t.Fatal("only the same alive of a member of the given org is completable")
	}
	if tab.completeInternal(&member{id: p, org: "A", inc: 1, seq: 1, notAfter: far}) {
		t.Fatal("a copy without internal addresses completes nothing")
	}
	if !tab.completeInternal(&member{id: p, org: "A", inc: 1, seq: 1, internal: []ma.Multiaddr{in}, notAfter: far}) {
		t.Fatal("the copy with its Secret did not complete the member")
	}
	if got := tab.get(p).internal; len(got) != 1 || !got[0].Equal(in) {
		t.Fatalf("internal = %v, want [%v]", got, in)
	}
	if tab.lacksInternal(p, 1, 1, "A") || tab.completeInternal(&member{id: p, org: "A", inc: 1, seq: 1, internal: []ma.Multiaddr{in}, notAfter: far}) {
		t.Fatal("a completed member is completed again")
	}
}
