package routing

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestAudienceProperties checks every audience predicate against the rules written out longhand,
// over random networks: orgs, channels, external flags, liveness and StateInfo drawn at random. A
// predicate weakened in any way (a clause dropped, a comparison widened) admits a pair the rules
// refuse, and this test names it.
func TestAudienceProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := genView(t)
		me := v.Self
		in := func(org, ch string) bool { return slices.Contains(v.ChannelOrgs[ch], org) }
		share := func(a, b string) bool {
			for ch := range v.ChannelOrgs {
				if in(a, ch) && in(b, ch) {
					return true
				}
			}
			return false
		}
		talk := func(m Member) bool {
			if m.ID == me.ID || m.ID == "" {
				return false
			}
			return m.Org == me.Org || me.External && m.External && share(me.Org, m.Org)
		}
		learn := func(to, about Member) bool {
			switch {
			case !talk(to):
				return false
			case to.Org == me.Org && about.Org == me.Org:
				return true
			case to.Org == me.Org:
				return to.External // only external peers know foreign peers
			default:
				return about.External && (about.Org == me.Org || about.Org == to.Org)
			}
		}
		subjects := append([]Member{me}, v.Members...)
		for _, m := range v.Members {
			if got, want := v.MayTalk(&m), talk(m); got != want {
				t.Fatalf("MayTalk(%s of %s, external %v) = %v, want %v", m.ID, m.Org, m.External, got, want)
			}
			for _, ch := range append(propChannels, "c4") {
				wantPeer := m.Alive && m.Channels[ch] && in(m.Org, ch) && in(me.Org, ch) && talk(m)
				if got := v.BlockPeer(&m, ch); got != wantPeer {
					t.Fatalf("BlockPeer(%s, %s) = %v, want %v", m.ID, ch, got, wantPeer)
				}
				wantSender := m.Alive && in(m.Org, ch) && in(me.Org, ch) && talk(m)
				if got := v.BlockSender(&m, ch); got != wantSender {
					t.Fatalf("BlockSender(%s, %s) = %v, want %v", m.ID, ch, got, wantSender)
				}
			}
			for _, s := range subjects {
				if got, want := v.MayLearn(&m, &s), learn(m, s); got != want {
					t.Fatalf("MayLearn(to %s of %s ext %v, about %s of %s ext %v) = %v, want %v",
						m.ID, m.Org, m.External, s.ID, s.Org, s.External, got, want)
				}
				for _, ch := range propChannels {
					if got, want := v.MayLearnStateInfo(&m, &s, ch), in(m.Org, ch) && learn(m, s); got != want {
						t.Fatalf("MayLearnStateInfo(to %s, about %s, %s) = %v, want %v", m.ID, s.ID, ch, got, want)
					}
				}
			}
		}
	})
}

// TestPlanObeysAudience checks the planner against the predicates: every message of every send is
// addressed to a peer its kind's predicate admits. With the planner's own rule tests and the
// property test against the longhand oracle, this ties routing's two halves together.
func TestPlanObeysAudience(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := genView(t)
		batch := genBatch(t, v)
		cfg := Config{PropagatePeerNum: rapid.IntRange(0, 6).Draw(t, "k"), CrossOrgPeerNum: rapid.IntRange(0, 3).Draw(t, "kc")}
		byID := map[string]Member{}
		for _, m := range v.Members {
			byID[string(m.ID)] = m
		}
		for _, s := range Plan(cfg, batch, v, newRNG(rapid.Uint64().Draw(t, "seed"))) {
			to := byID[string(s.To)]
			for _, out := range s.Messages {
				msg := batch[out.Payload]
				about := subject(&msg)
				var ok bool
				switch msg.Kind {
				case KindBlock:
					ok = v.BlockPeer(&to, msg.Channel)
				case KindStateInfo:
					ok = v.MayLearnStateInfo(&to, &about, msg.Channel)
				case KindAlive:
					ok = v.MayLearn(&to, &about)
				}
				if !ok {
					t.Fatalf("%v sent to %s (org %s, external %v), outside its audience", msg.Kind, to.ID, to.Org, to.External)
				}
			}
		}
	})
}
