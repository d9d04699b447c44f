package routing

import (
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"pgregory.net/rapid"
)

var (
	propOrgs     = []string{"A", "B", "C", "D"}
	propChannels = []string{"c1", "c2", "c3"}
)

// genView draws a view of up to 25 members over up to four orgs. Channels c1..c3 get random org
// sets (possibly none); members may hold StateInfo for c4, which is in no config, or for channels
// their org is not in. Self is sometimes listed among the members.
func genView(t *rapid.T) View {
	orgs := propOrgs[:rapid.IntRange(1, len(propOrgs)).Draw(t, "orgs")]
	v := View{ChannelOrgs: map[string][]string{}}
	for _, ch := range propChannels {
		if set := rapid.SliceOfDistinct(rapid.SampledFrom(orgs), rapid.ID[string]).Draw(t, "orgs of "+ch); len(set) > 0 {
			v.ChannelOrgs[ch] = set
		}
	}
	genMember := func(id string) Member {
		m := Member{
			ID:       peer.ID(id),
			Org:      rapid.SampledFrom(orgs).Draw(t, id+".org"),
			External: rapid.Bool().Draw(t, id+".external"),
			Alive:    rapid.IntRange(0, 4).Draw(t, id+".alive") > 0,
			Channels: map[string]bool{},
		}
		for _, ch := range append(propChannels, "c4") {
			m.Channels[ch] = rapid.Bool().Draw(t, id+".in."+ch)
		}
		return m
	}
	v.Self = genMember("self")
	v.Self.Alive = true
	for i := range rapid.IntRange(0, 25).Draw(t, "members") {
		v.Members = append(v.Members, genMember(fmt.Sprintf("p%02d", i)))
	}
	if rapid.Bool().Draw(t, "self listed") {
		at := rapid.IntRange(0, len(v.Members)).Draw(t, "self at")
		v.Members = slices.Insert(v.Members, at, v.Self)
	}
	return v
}

// genBatch draws up to 12 messages of every kind (and two kinds that do not exist), with random
// channels (including one no config knows), origins, senders and flags. Payload is the index.
func genBatch(t *rapid.T, v View) []Message[int] {
	ids := []peer.ID{"", v.Self.ID, "stranger"}
	for _, m := range v.Members {
		ids = append(ids, m.ID)
	}
	n := rapid.IntRange(0, 12).Draw(t, "batch size")
	batch := make([]Message[int], n)
	for i := range batch {
		batch[i] = Message[int]{
			Kind:           rapid.SampledFrom([]Kind{0, KindBlock, KindStateInfo, KindAlive, KindAlive + 1}).Draw(t, "kind"),
			Channel:        rapid.SampledFrom(append(propChannels, "c4")).Draw(t, "channel"),
			Origin:         rapid.SampledFrom(ids).Draw(t, "origin"),
			OriginOrg:      rapid.SampledFrom(append(propOrgs, "")).Draw(t, "origin org"),
			OriginExternal: rapid.Bool().Draw(t, "origin external"),
			From:           genFrom(t, ids),
			OrgOnly:        rapid.IntRange(0, 3).Draw(t, "org only") == 0,
			CrossOrg:       rapid.Bool().Draw(t, "cross org"),
			All:            rapid.Bool().Draw(t, "all"),
			Payload:        i,
		}
	}
	return batch
}

// genFrom draws a sender, mostly from a few peers so that batches often carry several messages
// from the same senders and shared samples must work around them.
func genFrom(t *rapid.T, ids []peer.ID) peer.ID {
	if rapid.IntRange(0, 3).Draw(t, "few senders") > 0 {
		ids = ids[:min(len(ids), 6)]
	}
	return rapid.SampledFrom(ids).Draw(t, "from")
}

// part is a set of peers of which a message must reach exactly min(n, len(peers)).
type part struct {
	peers map[peer.ID]bool
	n     int
}

// oracle states each message's audience from the routing rules, written out longhand and
// independently of the package's filters and planner: the parts of the audience and how many
// peers of each part the message must reach. The audience is the union of the parts.
func oracle(cfg Config, v View, msg Message[int]) []part {
	inChannel := func(org, ch string) bool {
		for _, o := range v.ChannelOrgs[ch] {
			if o == org {
				return true
			}
		}
		return false
	}
	// who collects the members a message may go to at all, and that pass keep.
	who := func(keep func(m Member) bool) map[peer.ID]bool {
		out := map[peer.ID]bool{}
		for _, m := range v.Members {
			if m.Alive && m.ID != "" && m.ID != v.Self.ID && m.ID != msg.From && m.ID != msg.Origin && keep(m) {
				out[m.ID] = true
			}
		}
		return out
	}
	me := v.Self
	shares := func(a, b string) bool {
		for _, ch := range propChannels {
			if inChannel(a, ch) && inChannel(b, ch) {
				return true
			}
		}
		return false
	}
	mayTalk := func(m Member) bool { return m.Org == me.Org || (me.External && m.External && shares(me.Org, m.Org)) }
	known := msg.Kind == KindBlock || msg.Kind == KindStateInfo || msg.Kind == KindAlive
	orgRestricted := (msg.Kind == KindStateInfo && msg.OrgOnly && msg.OriginOrg == me.Org) ||
		(msg.Kind == KindAlive && msg.OriginOrg == me.Org && (msg.OrgOnly || !msg.OriginExternal))

	k := cfg.PropagatePeerNum
	if msg.Kind == KindAlive && msg.All {
		k = len(v.Members) // the whole audience, no sample
	}
	switch {
	case !known:
		return nil
	case msg.Kind == KindBlock:
		parts := []part{{who(func(m Member) bool {
			return m.Org == me.Org && inChannel(me.Org, msg.Channel) && m.Channels[msg.Channel]
		}), cfg.PropagatePeerNum}}
		if msg.CrossOrg && !msg.OrgOnly && me.External && inChannel(me.Org, msg.Channel) {
			for _, org := range propOrgs {
				if org != me.Org && inChannel(org, msg.Channel) {
					parts = append(parts, part{who(func(m Member) bool {
						return m.Org == org && m.External && m.Channels[msg.Channel]
					}), cfg.CrossOrgPeerNum})
				}
			}
		}
		return parts
	case msg.Kind == KindStateInfo && !inChannel(me.Org, msg.Channel):
		return nil // we hold no StateInfo of a channel our org is not in, and tell no one of one
	case orgRestricted:
		return []part{{who(func(m Member) bool { return m.Org == me.Org }), k}}
	case msg.Kind == KindStateInfo && msg.OriginOrg != me.Org:
		return []part{{who(func(m Member) bool {
			return m.External && (m.Org == me.Org || (m.Org == msg.OriginOrg && !msg.OrgOnly && msg.OriginExternal)) && inChannel(m.Org, msg.Channel) && mayTalk(m)
		}), cfg.PropagatePeerNum}}
	case msg.Kind == KindStateInfo && !msg.OriginExternal:
		return []part{{who(func(m Member) bool { return m.Org == me.Org && inChannel(me.Org, msg.Channel) }), cfg.PropagatePeerNum}}
	case msg.Kind == KindStateInfo:
		return []part{{who(func(m Member) bool { return inChannel(m.Org, msg.Channel) && mayTalk(m) }), cfg.PropagatePeerNum}}
	case msg.OriginOrg == "":
		return nil
	case msg.OriginOrg == me.Org:
		return []part{{who(mayTalk), k}}
	default: // foreign alive
		return []part{{who(func(m Member) bool {
			return m.External && (m.Org == me.Org || (m.Org == msg.OriginOrg && !msg.OrgOnly && msg.OriginExternal)) && mayTalk(m)
		}), k}}
	}
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := genView(t)
		batch := genBatch(t, v)
		cfg := Config{PropagatePeerNum: rapid.IntRange(0, 4).Draw(t, "k"), CrossOrgPeerNum: rapid.IntRange(0, 3).Draw(t, "kc")}
		sends := Plan(cfg, batch, v, newRNG(rapid.Uint64().Draw(t, "seed")))

		byID := map[peer.ID]Member{}
		for _, m := range v.Members {
			byID[m.ID] = m
		}
		got := map[int]map[peer.ID]bool{} // message → recipients
		for si, s := range sends {
			if si > 0 && sends[si-1].To >= s.To {
				t.Fatalf("sends not strictly ordered by peer: %s then %s (one Send per peer)", string(sends[si-1].To), string(s.To))
			}
			if len(s.Messages) == 0 {
				t.Fatalf("empty Send to %s", string(s.To))
			}
			to, ok := byID[s.To]
			switch {
			case !ok:
				t.Fatalf("send to %s, which is not a member", string(s.To))
			case s.To == v.Self.ID:
				t.Fatalf("send to self")
			case !to.Alive:
				t.Fatalf("send to dead member %s", string(s.To))
			}
			for oi, o := range s.Messages {
				if oi > 0 && s.Messages[oi-1].Payload >= o.Payload {
					t.Fatalf("messages to %s not in strict batch order", string(s.To))
				}
				msg := batch[o.Payload]
				checkInvariants(t, v, msg, to)
				if want := msg.Kind == KindAlive && to.Org != msg.OriginOrg; o.StripSecret != want {
					t.Fatalf("message %d to %s: StripSecret = %v, want %v", o.Payload, string(s.To), o.StripSecret, want)
				}
				if got[o.Payload] == nil {
					got[o.Payload] = map[peer.ID]bool{}
				}
				got[o.Payload][s.To] = true
			}
		}

		for i, msg := range batch {
			parts := oracle(cfg, v, msg)
			audience := map[peer.ID]bool{}
			for _, p := range parts {
				n := 0
				for id := range p.peers {
					audience[id] = true
					if got[i][id] {
						n++
					}
				}
				if want := min(max(p.n, 0), len(p.peers)); n != want {
					t.Fatalf("message %d (%s) reached %d peers of audience part %v, want %d", i, showMsg(msg), n, keys(p.peers), want)
				}
			}
			for id := range got[i] {
				if !audience[id] {
					t.Fatalf("message %d (%s) sent to %s, outside its audience %v", i, showMsg(msg), string(id), keys(audience))
				}
			}
		}
		checkSharedSamples(t, cfg, v, batch, got)
	})
}

// checkInvariants restates the confidentiality rules that must hold for any single delivery,
// whatever the samples: the floor under the oracle.
func checkInvariants(t *rapid.T, v View, msg Message[int], to Member) {
	fail := func(why string) { t.Fatalf("%s: message %s sent to %s", why, showMsg(msg), showMember(to)) }
	me := v.Self
	switch {
	case msg.Kind != KindBlock && msg.Kind != KindStateInfo && msg.Kind != KindAlive:
		fail("unknown kind routed")
	case to.ID == msg.From:
		fail("sent back to its sender")
	case to.ID == msg.Origin:
		fail("sent back to its origin")
	case to.Org != me.Org && !(me.External && to.External):
		fail("crossed an org boundary between peers that are not both external")
	case msg.OrgOnly && to.Org != me.Org:
		fail("org-only message left the org")
	case msg.Kind == KindBlock && (!to.Channels[msg.Channel] || !slices.Contains(v.ChannelOrgs[msg.Channel], to.Org)):
		fail("block sent to a peer not eligible for its channel")
	case msg.Kind == KindBlock && to.Org != me.Org && (!msg.CrossOrg || !to.External):
		fail("block handed to another org without CrossOrg, or to a non-external peer")
	case msg.Kind == KindStateInfo && to.Org != me.Org && !slices.Contains(v.ChannelOrgs[msg.Channel], to.Org):
		fail("StateInfo went to an org outside the channel")
	case msg.Kind == KindStateInfo && msg.OriginOrg == me.Org && !msg.OriginExternal && to.Org != me.Org:
		fail("StateInfo of a non-external originator left the org")
	case msg.Kind == KindStateInfo && msg.OriginOrg != me.Org && (!to.External || (to.Org != me.Org && to.Org != msg.OriginOrg)):
		fail("a foreign StateInfo went to a non-external peer or to a third org")
	case msg.Kind == KindAlive && msg.OriginOrg == me.Org && !msg.OriginExternal && to.Org != me.Org:
		fail("alive of a non-external peer left its org")
	case msg.Kind == KindAlive && msg.OriginOrg != me.Org && (!to.External || (to.Org != me.Org && to.Org != msg.OriginOrg)):
		fail("foreign alive sent to a non-external peer or to a third org")
	}
}

// checkSharedSamples checks what rules 1, 2 and 4 promise beyond each message's own count: a group
// (the blocks of one channel, per receiving org; the org-restricted messages) shares one sample of
// min(k, |audience without all of the group's senders|) peers, which every message of the group
// reaches; and when that sample is full (k peers), the group's messages reach exactly those peers.
func checkSharedSamples(t *rapid.T, cfg Config, v View, batch []Message[int], got map[int]map[peer.ID]bool) {
	type group struct {
		name    string
		k       int
		members []int
		pool    map[peer.ID]bool // the audience before any sender is excluded
	}
	var groups []group
	sendable := func(keep func(Member) bool) map[peer.ID]bool {
		out := map[peer.ID]bool{}
		for _, m := range v.Members {
			if m.Alive && m.ID != "" && m.ID != v.Self.ID && keep(m) {
				out[m.ID] = true
			}
		}
		return out
	}
	me := v.Self
	var orgGroup []int
	for i, m := range batch {
		if (m.Kind == KindStateInfo && m.OrgOnly && m.OriginOrg == me.Org && v.OrgInChannel(me.Org, m.Channel)) || (m.Kind == KindAlive && m.OriginOrg == me.Org && (m.OrgOnly || !m.OriginExternal) && !m.All) {
			orgGroup = append(orgGroup, i)
		}
	}
	groups = append(groups, group{"org-restricted", cfg.PropagatePeerNum, orgGroup, sendable(func(m Member) bool { return m.Org == me.Org })})
	for _, ch := range append(propChannels, "c4") {
		var blocks, cross []int
		for i, m := range batch {
			if m.Kind == KindBlock && m.Channel == ch {
				blocks = append(blocks, i)
				if m.CrossOrg && !m.OrgOnly {
					cross = append(cross, i)
				}
			}
		}
		if slices.Contains(v.ChannelOrgs[ch], me.Org) {
			groups = append(groups, group{"blocks of " + ch, cfg.PropagatePeerNum, blocks,
				sendable(func(m Member) bool { return m.Org == me.Org && m.Channels[ch] })})
		}
		for _, org := range v.ChannelOrgs[ch] {
			if org != me.Org && me.External && slices.Contains(v.ChannelOrgs[ch], me.Org) {
				groups = append(groups, group{"cross-org blocks of " + ch + " to " + org, cfg.CrossOrgPeerNum, cross,
					sendable(func(m Member) bool { return m.Org == org && m.External && m.Channels[ch] })})
			}
		}
	}
	for _, g := range groups {
		if len(g.members) == 0 || g.k <= 0 {
			continue
		}
		clean := map[peer.ID]bool{} // the pool without every sender of the group
		for id := range g.pool {
			clean[id] = true
		}
		for _, i := range g.members {
			delete(clean, batch[i].From)
			delete(clean, batch[i].Origin)
		}
		common := map[peer.ID]bool{}
		for id := range clean {
			common[id] = true
		}
		for _, i := range g.members {
			for id := range common {
				if !got[i][id] {
					delete(common, id)
				}
			}
		}
		want := min(g.k, len(clean))
		if len(common) != want {
			t.Fatalf("%s: the group's messages share %d peers of %v, want a common sample of %d", g.name, len(common), keys(clean), want)
		}
		if want == g.k {
			for _, i := range g.members {
				for id := range got[i] {
					if g.pool[id] && !common[id] {
						t.Fatalf("%s: message %d also went to %s although the common sample was full", g.name, i, string(id))
					}
				}
			}
		}
	}
}

// keys lists a peer set as sorted raw IDs (peer.ID's String would base58-encode them).
func keys(m map[peer.ID]bool) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, string(id))
	}
	slices.Sort(out)
	return out
}

func showMember(m Member) string {
	return fmt.Sprintf("{%s org=%s external=%v alive=%v channels=%v}", string(m.ID), m.Org, m.External, m.Alive, m.Channels)
}

func showMsg(m Message[int]) string {
	return fmt.Sprintf("{%v ch=%s origin=%s/%s external=%v from=%s orgOnly=%v crossOrg=%v}",
		m.Kind, m.Channel, string(m.Origin), m.OriginOrg, m.OriginExternal, string(m.From), m.OrgOnly, m.CrossOrg)
}
