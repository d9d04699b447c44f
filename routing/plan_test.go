package routing

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The channels of the rule tables. Our org is A.
var tableChannels = map[string][]string{
	"ab": {"A", "B"}, // our org and B
	"bc": {"B", "C"}, // a channel our org is not in
}

// routeCase is one row of a rule table: a view of Self (org A) and one receiver, one message, and
// whether the receiver gets it. With a single candidate, "sent or not" is fully deterministic.
type routeCase struct {
	name    string
	selfExt bool
	recv    Member
	msg     Message[int]
	cfg     *Config // nil: DefaultConfig
	sent    bool
	strip   bool
}

// rcv builds the receiver: id "r", alive, holding StateInfo for the given channels.
func rcv(org string, external bool, channels ...string) Member {
	return member("r", org, external, channels...)
}

func deadRcv(org string, external bool, channels ...string) Member {
	m := rcv(org, external, channels...)
	m.Alive = false
	return m
}

func block(ch string) Message[int] {
	return Message[int]{Kind: KindBlock, Channel: ch, Origin: "pub", OriginOrg: "A"}
}

func crossBlock(ch string) Message[int] {
	m := block(ch)
	m.CrossOrg = true
	return m
}

func stateInfo(ch, originOrg string, originExternal bool) Message[int] {
	return Message[int]{Kind: KindStateInfo, Channel: ch, Origin: "origin", OriginOrg: originOrg, OriginExternal: originExternal}
}

func alive(originOrg string, originExternal bool) Message[int] {
	return Message[int]{Kind: KindAlive, Origin: "origin", OriginOrg: originOrg, OriginExternal: originExternal}
}

func from(m Message[int], id peer.ID) Message[int] { m.From = id; return m }
func orgOnly(m Message[int]) Message[int]          { m.OrgOnly = true; return m }
func withKind(m Message[int], k Kind) Message[int] { m.Kind = k; return m }
func cfgOf(propagate, crossOrg int) *Config {
	return &Config{PropagatePeerNum: propagate, CrossOrgPeerNum: crossOrg}
}

func runRouteCases(t *testing.T, cases []routeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			self := member("self", "A", tc.selfExt, "ab")
			v := View{Self: self, Members: []Member{self, tc.recv}, ChannelOrgs: tableChannels}
			for seed := range uint64(5) {
				sends := Plan(cfg, []Message[int]{tc.msg}, v, newRNG(seed))
				switch {
				case !tc.sent && len(sends) != 0:
					t.Fatalf("seed %d: got %v, want nothing sent", seed, showSends(sends))
				case tc.sent && (len(sends) != 1 || sends[0].To != "r" || len(sends[0].Messages) != 1):
					t.Fatalf("seed %d: got %v, want the message sent to r", seed, showSends(sends))
				case tc.sent && sends[0].Messages[0].StripSecret != tc.strip:
					t.Fatalf("seed %d: StripSecret = %v, want %v", seed, sends[0].Messages[0].StripSecret, tc.strip)
				}
			}
		})
	}
}

func TestRuleBlocks(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "own org, eligible", recv: rcv("A", false, "ab"), msg: block("ab"), sent: true},
		{name: "own org, eligible, external", recv: rcv("A", true, "ab"), msg: block("ab"), sent: true},
		{name: "own org, no StateInfo for the channel", recv: rcv("A", false), msg: block("ab"), sent: false},
		{name: "own org, StateInfo for another channel only", recv: rcv("A", false, "bc"), msg: block("ab"), sent: false},
		{name: "own org, dead", recv: deadRcv("A", false, "ab"), msg: block("ab"), sent: false},
		{name: "own org, came from the receiver", recv: rcv("A", false, "ab"), msg: from(block("ab"), "r"), sent: false},
		{name: "own org, came from another peer", recv: rcv("A", false, "ab"), msg: from(block("ab"), "x"), sent: true},
		{name: "own org, org-only", recv: rcv("A", false, "ab"), msg: orgOnly(block("ab")), sent: true},
		{name: "own org, channel our org is not in", recv: rcv("A", false, "bc"), msg: block("bc"), sent: false},
		{name: "own org, unknown channel", recv: rcv("A", false, "zz"), msg: block("zz"), sent: false},
		{name: "own org, push off", recv: rcv("A", false, "ab"), msg: block("ab"), cfg: cfgOf(0, 1), sent: false},
		{name: "other org, eligible, both external, not CrossOrg", selfExt: true, recv: rcv("B", true, "ab"), msg: block("ab"), sent: false},
		{name: "other org, foreign publisher, not CrossOrg", selfExt: true, recv: rcv("B", true, "ab"), msg: func() Message[int] { m := block("ab"); m.OriginOrg = "B"; return m }(), sent: false},
	})
}

func TestRuleCrossOrgBlocks(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "both external, receiver eligible", selfExt: true, recv: rcv("B", true, "ab"), msg: crossBlock("ab"), sent: true},
		{name: "self not external", selfExt: false, recv: rcv("B", true, "ab"), msg: crossBlock("ab"), sent: false},
		{name: "receiver not external", selfExt: true, recv: rcv("B", false, "ab"), msg: crossBlock("ab"), sent: false},
		{name: "receiver without StateInfo", selfExt: true, recv: rcv("B", true), msg: crossBlock("ab"), sent: false},
		{name: "receiver dead", selfExt: true, recv: deadRcv("B", true, "ab"), msg: crossBlock("ab"), sent: false},
		{name: "receiver's org not in the channel", selfExt: true, recv: rcv("C", true, "ab"), msg: crossBlock("ab"), sent: false},
		{name: "came from the receiver", selfExt: true, recv: rcv("B", true, "ab"), msg: from(crossBlock("ab"), "r"), sent: false},
		{name: "org-only wins over CrossOrg", selfExt: true, recv: rcv("B", true, "ab"), msg: orgOnly(crossBlock("ab")), sent: false},
		{name: "CrossOrgPeerNum 0", selfExt: true, recv: rcv("B", true, "ab"), msg: crossBlock("ab"), cfg: cfgOf(3, 0), sent: false},
		{name: "PropagatePeerNum 0 does not stop cross-org", selfExt: true, recv: rcv("B", true, "ab"), msg: crossBlock("ab"), cfg: cfgOf(0, 1), sent: true},
		{name: "own org still gets it", selfExt: true, recv: rcv("A", false, "ab"), msg: crossBlock("ab"), sent: true},
		{name: "channel our org is not in, other org", selfExt: true, recv: rcv("B", true, "bc"), msg: crossBlock("bc"), sent: false},
		{name: "unknown channel", selfExt: true, recv: rcv("B", true, "zz"), msg: crossBlock("zz"), sent: false},
	})
}

func TestRuleStateInfo(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "internal origin, own org", recv: rcv("A", false), msg: stateInfo("ab", "A", false), sent: true},
		{name: "internal origin, own org, channel our org is not in", recv: rcv("A", false), msg: stateInfo("bc", "A", false), sent: false},
		{name: "internal origin, other org, both external", selfExt: true, recv: rcv("B", true, "ab"), msg: stateInfo("ab", "A", false), sent: false},
		{name: "foreign origin, own org, receiver not external", recv: rcv("A", false), msg: stateInfo("ab", "B", true), sent: false},
		{name: "foreign origin, own org, receiver external", selfExt: true, recv: rcv("A", true), msg: stateInfo("ab", "B", true), sent: true},
		{name: "foreign origin, back to its org", selfExt: true, recv: rcv("B", true), msg: stateInfo("ab", "B", true), sent: true},
		{name: "external origin, other org in channel, both external", selfExt: true, recv: rcv("B", true), msg: stateInfo("ab", "A", true), sent: true},
		{name: "external origin, other org, receiver not external", selfExt: true, recv: rcv("B", false), msg: stateInfo("ab", "A", true), sent: false},
		{name: "external origin, other org, self not external", selfExt: false, recv: rcv("B", true), msg: stateInfo("ab", "A", true), sent: false},
		{name: "external origin, org not in channel", selfExt: true, recv: rcv("C", true), msg: stateInfo("ab", "A", true), sent: false},
		{name: "external origin, channel our org is not in, own org", recv: rcv("A", false), msg: stateInfo("bc", "B", true), sent: false},
		{name: "foreign origin, a third org", selfExt: true, recv: rcv("C", true), msg: stateInfo("bc", "B", true), sent: false},
		{name: "foreign origin, channel our org is not in, its org", selfExt: true, recv: rcv("B", true), msg: stateInfo("bc", "B", true), sent: false},
		{name: "external origin, unknown channel", selfExt: true, recv: rcv("A", false), msg: stateInfo("zz", "A", true), sent: false},
		{name: "org-only, external origin, other org", selfExt: true, recv: rcv("B", true), msg: orgOnly(stateInfo("ab", "A", true)), sent: false},
		{name: "org-only, external origin, own org", selfExt: true, recv: rcv("A", false), msg: orgOnly(stateInfo("ab", "A", true)), sent: true},
		{name: "came from the receiver", recv: rcv("A", false), msg: from(stateInfo("ab", "A", false), "r"), sent: false},
		{name: "dead receiver", recv: deadRcv("A", false), msg: stateInfo("ab", "A", false), sent: false},
		{name: "push off", recv: rcv("A", false), msg: stateInfo("ab", "A", false), cfg: cfgOf(0, 1), sent: false},
	})
}

func TestRuleOrgRestricted(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "alive of own non-external peer, own org", recv: rcv("A", false), msg: alive("A", false), sent: true, strip: false},
		{name: "alive of own non-external peer, other org", selfExt: true, recv: rcv("B", true), msg: alive("A", false), sent: false},
		{name: "org-only alive of own external peer, own org", selfExt: true, recv: rcv("A", true), msg: orgOnly(alive("A", true)), sent: true},
		{name: "org-only alive of own external peer, other org", selfExt: true, recv: rcv("B", true), msg: orgOnly(alive("A", true)), sent: false},
		{name: "org-only alive of a foreign peer, own org external: stripped", selfExt: true, recv: rcv("A", true), msg: orgOnly(alive("B", true)), sent: true, strip: true},
		{name: "org-only alive of a foreign peer, own org not external", selfExt: true, recv: rcv("A", false), msg: orgOnly(alive("B", true)), sent: false},
		{name: "org-only alive of unknown origin org", selfExt: true, recv: rcv("A", true), msg: orgOnly(alive("", true)), sent: false},
		{name: "org-only alive of a foreign peer, its org", selfExt: true, recv: rcv("B", true), msg: orgOnly(alive("B", true)), sent: false},
		{name: "org-only StateInfo, own org", recv: rcv("A", false), msg: orgOnly(stateInfo("ab", "A", false)), sent: true},
		{name: "came from the receiver", recv: rcv("A", false), msg: from(alive("A", false), "r"), sent: false},
		{name: "dead receiver", recv: deadRcv("A", false), msg: alive("A", false), sent: false},
	})
}

func TestRuleAlive(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "own external origin, own org non-external", recv: rcv("A", false), msg: alive("A", true), sent: true, strip: false},
		{name: "own external origin, other org, both external: stripped", selfExt: true, recv: rcv("B", true), msg: alive("A", true), sent: true, strip: true},
		{name: "own external origin, other org, receiver not external", selfExt: true, recv: rcv("B", false), msg: alive("A", true), sent: false},
		{name: "own external origin, other org, self not external", selfExt: false, recv: rcv("B", true), msg: alive("A", true), sent: false},
		{name: "foreign origin, own org external: stripped", selfExt: true, recv: rcv("A", true), msg: alive("B", true), sent: true, strip: true},
		{name: "foreign origin, own org external, self not external", selfExt: false, recv: rcv("A", true), msg: alive("B", true), sent: true, strip: true},
		{name: "foreign origin, own org not external", selfExt: true, recv: rcv("A", false), msg: alive("B", true), sent: false},
		{name: "foreign origin, its org external: not stripped", selfExt: true, recv: rcv("B", true), msg: alive("B", true), sent: true, strip: false},
		{name: "foreign origin, its org not external", selfExt: true, recv: rcv("B", false), msg: alive("B", true), sent: false},
		{name: "foreign origin, its org, self not external", selfExt: false, recv: rcv("B", true), msg: alive("B", true), sent: false},
		{name: "foreign origin, third org", selfExt: true, recv: rcv("C", true), msg: alive("B", true), sent: false},
		{name: "foreign non-external origin, its org (a member we should not know)", selfExt: true, recv: rcv("B", true), msg: alive("B", false), sent: false},
		{name: "unknown origin org", selfExt: true, recv: rcv("A", true), msg: alive("", true), sent: false},
		{name: "came from the receiver", recv: rcv("A", false), msg: from(alive("A", true), "r"), sent: false},
		{name: "dead receiver", recv: deadRcv("A", false), msg: alive("A", true), sent: false},
	})
}

func TestUnknownKindsAreDropped(t *testing.T) {
	runRouteCases(t, []routeCase{
		{name: "zero kind", recv: rcv("A", true, "ab"), msg: withKind(block("ab"), 0), sent: false},
		{name: "zero kind, org-only", recv: rcv("A", true, "ab"), msg: orgOnly(withKind(alive("A", false), 0)), sent: false},
		{name: "kind beyond the last", selfExt: true, recv: rcv("A", true, "ab"), msg: withKind(alive("A", true), KindAlive+1), sent: false},
	})
}

// orgPeers returns n alive peers of org named org+"1".."n", holding StateInfo for channels.
func orgPeers(org string, n int, external bool, channels ...string) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = member(fmt.Sprintf("%s%d", org, i+1), org, external, channels...)
	}
	return out
}

// recipients maps each payload to the sorted IDs of the peers it is sent to.
func recipients(sends []Send[int]) map[int][]string {
	out := map[int][]string{}
	for _, s := range sends {
		for _, o := range s.Messages {
			out[o.Payload] = append(out[o.Payload], string(s.To))
		}
	}
	for _, r := range out {
		slices.Sort(r)
	}
	return out
}

func TestForwardedBlockKeepsFullFanOut(t *testing.T) {
	// Fabric samples first and then drops the sender, so a forwarded block reaches 2 peers a third
	// of the time with 3 eligible peers besides the sender. Here it always reaches 3.
	v := View{Self: member("self", "A", false, "ab"), Members: orgPeers("A", 4, false, "ab"), ChannelOrgs: tableChannels}
	for seed := range uint64(200) {
		got := recipients(Plan(DefaultConfig(), []Message[int]{{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 0}}, v, newRNG(seed)))[0]
		if !slices.Equal(got, []string{"A2", "A3", "A4"}) {
			t.Fatalf("seed %d: block from A1 went to %v, want [A2 A3 A4]", seed, got)
		}
	}
}

func TestBlocksOfAChannelShareOneSample(t *testing.T) {
	v := View{
		Self:        member("self", "A", false, "ab", "ad"),
		Members:     orgPeers("A", 20, false, "ab", "ad"),
		ChannelOrgs: map[string][]string{"ab": {"A", "B"}, "ad": {"A", "D"}},
	}
	batch := []Message[int]{
		{Kind: KindBlock, Channel: "ab", Payload: 0},
		{Kind: KindBlock, Channel: "ad", Payload: 1},
		{Kind: KindBlock, Channel: "ab", From: "A7", Payload: 2},
		{Kind: KindBlock, Channel: "ab", From: "A7", Payload: 3},
		{Kind: KindBlock, Channel: "ad", Payload: 4},
	}
	differ := false
	for seed := range uint64(50) {
		r := recipients(Plan(DefaultConfig(), batch, v, newRNG(seed)))
		for p := range batch {
			if len(r[p]) != 3 || (batch[p].From == "A7" && slices.Contains(r[p], "A7")) {
				t.Fatalf("seed %d: block %d went to %v", seed, p, r[p])
			}
		}
		if !slices.Equal(r[0], r[2]) || !slices.Equal(r[0], r[3]) {
			t.Fatalf("seed %d: blocks of ab went to %v, %v, %v; want one sample", seed, r[0], r[2], r[3])
		}
		if slices.Contains(r[0], "A7") {
			t.Fatalf("seed %d: the shared sample %v contains A7, the sender of blocks 2 and 3", seed, r[0])
		}
		if !slices.Equal(r[1], r[4]) {
			t.Fatalf("seed %d: blocks of ad went to %v and %v; want one sample", seed, r[1], r[4])
		}
		differ = differ || !slices.Equal(r[0], r[1])
	}
	if !differ {
		t.Error("channels ab and ad always got the same sample; want one sample per channel")
	}
}

func TestSharedSampleTopsUpFromOtherSenders(t *testing.T) {
	// Three eligible peers and k = 3: setting all senders aside leaves only A3, so each block is
	// topped up from the senders that are not its own, and still reaches every peer but its sender.
	v := View{Self: member("self", "A", false, "ab"), Members: orgPeers("A", 3, false, "ab"), ChannelOrgs: tableChannels}
	batch := []Message[int]{
		{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 0},
		{Kind: KindBlock, Channel: "ab", From: "A2", Payload: 1},
		{Kind: KindBlock, Channel: "ab", Payload: 2},
		{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 3},
		{Kind: KindAlive, OriginOrg: "A", From: "A2", Payload: 4},                // org-restricted group, same rule
		{Kind: KindAlive, OriginOrg: "A", From: "A3", Payload: 5, OrgOnly: true}, // org-restricted group
	}
	want := map[int][]string{
		0: {"A2", "A3"},
		1: {"A1", "A3"},
		2: {"A1", "A2", "A3"},
		3: {"A2", "A3"},
		4: {"A1", "A3"},
		5: {"A1", "A2"},
	}
	for seed := range uint64(50) {
		got := recipients(Plan(DefaultConfig(), batch, v, newRNG(seed)))
		for p, w := range want {
			if !slices.Equal(got[p], w) {
				t.Fatalf("seed %d: message %d went to %v, want %v", seed, p, got[p], w)
			}
		}
	}
}

func TestCrossOrgSamplePerOrg(t *testing.T) {
	// Self is external in A; channel abc has orgs A, B, C. B has 3 external eligible peers and one
	// that is not external; C has 2 external peers without StateInfo and 2 with.
	members := slices.Concat(
		orgPeers("A", 5, false, "abc"),
		orgPeers("B", 3, true, "abc"),
		[]Member{member("Bint", "B", false, "abc")},
		[]Member{member("Cx1", "C", true), member("Cx2", "C", true)},
		[]Member{member("C1", "C", true, "abc"), member("C2", "C", true, "abc")},
		orgPeers("D", 3, true, "abc"), // D is not in the channel
	)
	v := View{Self: member("self", "A", true, "abc"), Members: members, ChannelOrgs: map[string][]string{"abc": {"A", "B", "C"}}}
	batch := []Message[int]{
		{Kind: KindBlock, Channel: "abc", CrossOrg: true, Payload: 0},
		{Kind: KindBlock, Channel: "abc", Payload: 1},
		{Kind: KindBlock, Channel: "abc", CrossOrg: true, From: "B2", Payload: 2},
	}
	for seed := range uint64(50) {
		r := recipients(Plan(Config{PropagatePeerNum: 3, CrossOrgPeerNum: 1}, batch, v, newRNG(seed)))
		byOrg := func(p int) map[byte][]string {
			out := map[byte][]string{}
			for _, id := range r[p] {
				out[id[0]] = append(out[id[0]], id)
			}
			return out
		}
		b0, b1, b2 := byOrg(0), byOrg(1), byOrg(2)
		if len(b0['A']) != 3 || len(b0['B']) != 1 || len(b0['C']) != 1 || len(b0['D']) != 0 {
			t.Fatalf("seed %d: cross-org block went to %v, want 3 of A and 1 each of B and C", seed, r[0])
		}
		if len(b1['A']) != 3 || len(r[1]) != 3 {
			t.Fatalf("seed %d: own-org block went to %v, want 3 of A only", seed, r[1])
		}
		if !slices.Equal(b0['A'], b1['A']) || !slices.Equal(b0['A'], b2['A']) {
			t.Fatalf("seed %d: own-org samples differ: %v %v %v", seed, b0['A'], b1['A'], b2['A'])
		}
		if !slices.Equal(b0['B'], b2['B']) || !slices.Equal(b0['C'], b2['C']) || b0['B'][0] == "B2" {
			t.Fatalf("seed %d: cross-org samples %v and %v, want one per org, never the sender B2", seed, r[0], r[2])
		}
		for _, id := range r[0] {
			if id == "Bint" || id == "Cx1" || id == "Cx2" {
				t.Fatalf("seed %d: cross-org block went to %s, which is not external and eligible", seed, id)
			}
		}
	}
}

func TestSendsAreMergedAndOrdered(t *testing.T) {
	// Every message has an audience of exactly the same two peers, so every peer gets every message.
	self := member("self", "A", true, "ab")
	v := View{Self: self, Members: []Member{member("z", "A", true, "ab"), self, member("m", "A", true, "ab")}, ChannelOrgs: tableChannels}
	batch := []Message[int]{
		{Kind: KindAlive, OriginOrg: "A", OriginExternal: true, Payload: 0},
		{Kind: KindBlock, Channel: "ab", Payload: 1},
		{Kind: KindStateInfo, Channel: "ab", OriginOrg: "A", Payload: 2},
		{Kind: KindAlive, OriginOrg: "A", Payload: 3}, // org-restricted
		{Kind: KindAlive, OriginOrg: "B", OriginExternal: true, Payload: 4},
		{Kind: 0, Payload: 5}, // dropped
		{Kind: KindBlock, Channel: "ab", Payload: 6},
	}
	want := []Send[int]{
		{To: "m", Messages: []Outbound[int]{{Payload: 0}, {Payload: 1}, {Payload: 2}, {Payload: 3}, {Payload: 4, StripSecret: true}, {Payload: 6}}},
		{To: "z", Messages: []Outbound[int]{{Payload: 0}, {Payload: 1}, {Payload: 2}, {Payload: 3}, {Payload: 4, StripSecret: true}, {Payload: 6}}},
	}
	got := Plan(DefaultConfig(), batch, v, newRNG(3))
	if !slices.EqualFunc(got, want, func(a, b Send[int]) bool { return a.To == b.To && slices.Equal(a.Messages, b.Messages) }) {
		t.Fatalf("Plan =\n%v\nwant\n%v", showSends(got), showSends(want))
	}
	// Each Send's Messages is clipped, so appending to one cannot overwrite the next.
	_ = append(got[0].Messages, Outbound[int]{Payload: 99})
	if got[1].Messages[0].Payload != 0 {
		t.Errorf("appending to the first Send changed the second: %+v", got[1].Messages)
	}
}

// TestPlanAllReachesTheWholeAudience: a heartbeat marked All goes to every peer that may learn of
// its subject, and to no other, whatever PropagatePeerNum says.
func TestPlanAllReachesTheWholeAudience(t *testing.T) {
	for _, selfExt := range []bool{false, true} {
		self := member("self", "A", selfExt, "ab")
		members := append(orgPeers("A", 6, false, "ab"), orgPeers("B", 4, true, "ab")...)
		members = append(members, orgPeers("C", 3, true, "bc")...)
		v := View{Self: self, Members: members, ChannelOrgs: tableChannels}
		batch := []Message[int]{{Kind: KindAlive, Origin: "self", OriginOrg: "A", OriginExternal: selfExt, OrgOnly: !selfExt, All: true}}
		got := map[peer.ID]bool{}
		for _, s := range Plan(Config{PropagatePeerNum: 2}, batch, v, newRNG(1)) {
			got[s.To] = true
		}
		about := subject(&batch[0])
		for _, m := range members {
			if want := v.MayLearn(&m, &about); got[m.ID] != want {
				t.Errorf("self external=%v: %s (org %s) got the heartbeat: %v, may learn of it: %v", selfExt, m.ID, m.Org, got[m.ID], want)
			}
		}
		if want := 6; selfExt {
			want = 10
			if len(got) != want {
				t.Errorf("external self: %d receivers, want %d (its org and B's externals)", len(got), want)
			}
		} else if len(got) != want {
			t.Errorf("internal self: %d receivers, want %d (its org)", len(got), want)
		}
	}
}

func TestPlanNothingToSend(t *testing.T) {
	self := member("self", "A", true, "ab")
	full := View{Self: self, Members: orgPeers("A", 5, true, "ab"), ChannelOrgs: tableChannels}
	tests := []struct {
		name  string
		cfg   Config
		batch []Message[int]
		v     View
	}{
		{"nil batch", DefaultConfig(), nil, full},
		{"empty view", DefaultConfig(), []Message[int]{block("ab"), alive("A", true)}, View{Self: self}},
		{"only self in view", DefaultConfig(), []Message[int]{block("ab"), alive("A", true)}, View{Self: self, Members: []Member{self}, ChannelOrgs: tableChannels}},
		{"push off", Config{}, []Message[int]{block("ab"), crossBlock("ab"), alive("A", true), stateInfo("ab", "A", true), orgOnly(alive("A", true))}, full},
		{"negative fan-out", Config{PropagatePeerNum: -3, CrossOrgPeerNum: -1}, []Message[int]{block("ab"), alive("A", true)}, full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plan(tt.cfg, tt.batch, tt.v, newRNG(1)); got != nil {
				t.Errorf("Plan = %v, want nil", showSends(got))
			}
		})
	}
}

func TestPlanIsDeterministicAndLeavesInputsAlone(t *testing.T) {
	v := benchView(4, 25, 3)
	batch := benchBatch(v, 5, 5)
	members := slices.Clone(v.Members)
	msgs := slices.Clone(batch)
	a := Plan(DefaultConfig(), batch, v, newRNG(11))
	b := Plan(DefaultConfig(), batch, v, newRNG(11))
	if len(a) == 0 || showSends(a) != showSends(b) {
		t.Fatalf("same seed gave different plans:\n%v\n%v", showSends(a), showSends(b))
	}
	if !slices.EqualFunc(members, v.Members, func(x, y Member) bool { return x.ID == y.ID }) {
		t.Error("Plan reordered the view's members")
	}
	if !slices.Equal(msgs, batch) {
		t.Error("Plan modified the batch")
	}
}

func TestSharedSampleTopUpIsPerSender(t *testing.T) {
	// k = 1 and every eligible peer is a sender: the common sample is empty, and each block gets
	// one peer from the senders other than its own; blocks of the same sender get the same one.
	v := View{Self: member("self", "A", false, "ab"), Members: orgPeers("A", 3, false, "ab"), ChannelOrgs: tableChannels}
	batch := []Message[int]{
		{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 0},
		{Kind: KindBlock, Channel: "ab", From: "A2", Payload: 1},
		{Kind: KindBlock, Channel: "ab", From: "A3", Payload: 2},
		{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 3},
		{Kind: KindBlock, Channel: "ab", From: "A1", Payload: 4},
	}
	for seed := range uint64(100) {
		r := recipients(Plan(Config{PropagatePeerNum: 1}, batch, v, newRNG(seed)))
		for p, m := range batch {
			if len(r[p]) != 1 || r[p][0] == string(m.From) {
				t.Fatalf("seed %d: block %d from %s went to %v, want one peer other than its sender", seed, p, string(m.From), r[p])
			}
		}
		if !slices.Equal(r[0], r[3]) || !slices.Equal(r[0], r[4]) {
			t.Fatalf("seed %d: blocks from A1 went to %v, %v, %v; want one top-up per sender", seed, r[0], r[3], r[4])
		}
	}
}

func TestCrossOrgOrgListedTwice(t *testing.T) {
	// A config that lists an org twice must not double that org's cross-org fan-out.
	v := View{
		Self:        member("self", "A", true, "ab"),
		Members:     orgPeers("B", 5, true, "ab"),
		ChannelOrgs: map[string][]string{"ab": {"A", "B", "B"}},
	}
	for seed := range uint64(50) {
		r := recipients(Plan(DefaultConfig(), []Message[int]{crossBlock("ab")}, v, newRNG(seed)))
		if len(r[0]) != 1 {
			t.Fatalf("seed %d: cross-org block went to %v, want 1 peer of B", seed, r[0])
		}
	}
}

// showSends renders a plan with raw peer IDs (peer.ID's String would base58-encode them).
func showSends(sends []Send[int]) string {
	var b strings.Builder
	for _, s := range sends {
		fmt.Fprintf(&b, "%s:%v ", string(s.To), s.Messages)
	}
	return b.String()
}

func TestPeerListedTwiceGetsOneSend(t *testing.T) {
	// The view should not list a peer twice, but if it does the peer still gets one Send, with each
	// message once and in batch order.
	a := member("a", "A", true, "ab")
	v := View{
		Self:        member("self", "A", true, "ab"),
		Members:     []Member{a, member("b", "A", true, "ab"), a, member("c", "A", true, "ab"), a},
		ChannelOrgs: tableChannels,
	}
	batch := []Message[int]{block("ab"), alive("A", true), stateInfo("ab", "A", false), orgOnly(alive("A", true))}
	for i := range batch {
		batch[i].Payload = i
	}
	sawA := false
	for seed := range uint64(100) {
		sends := Plan(DefaultConfig(), batch, v, newRNG(seed))
		for i, s := range sends {
			if i > 0 && sends[i-1].To >= s.To {
				t.Fatalf("seed %d: sends %v not one per peer in ID order", seed, showSends(sends))
			}
			for j := 1; j < len(s.Messages); j++ {
				if s.Messages[j-1].Payload >= s.Messages[j].Payload {
					t.Fatalf("seed %d: messages to %s repeated or out of order: %v", seed, string(s.To), s.Messages)
				}
			}
			sawA = sawA || s.To == "a"
		}
	}
	if !sawA {
		t.Error("the duplicated peer never received anything")
	}
}
