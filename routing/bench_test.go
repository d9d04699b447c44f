package routing

import (
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// benchView builds orgs × perOrg members over the given number of channels: channel c has org0
// (self's org) and every org j with j%channels == c; every member of a channel's org holds
// StateInfo for it; every fourth member is external and one in fifty is dead. Self is org0's first
// member, external.
func benchView(orgs, perOrg, channels int) View {
	v := View{ChannelOrgs: map[string][]string{}}
	for c := range channels {
		name := fmt.Sprintf("ch%d", c)
		v.ChannelOrgs[name] = []string{"org0"}
		for j := 1; j < orgs; j++ {
			if j%channels == c {
				v.ChannelOrgs[name] = append(v.ChannelOrgs[name], fmt.Sprintf("org%d", j))
			}
		}
	}
	for o := range orgs {
		org := fmt.Sprintf("org%d", o)
		for i := range perOrg {
			m := Member{ID: peer.ID(fmt.Sprintf("%s-p%03d", org, i)), Org: org, External: i%4 == 0, Alive: i%50 != 49, Channels: map[string]bool{}}
			for ch, cos := range v.ChannelOrgs {
				if slices.Contains(cos, org) {
					m.Channels[ch] = true
				}
			}
			v.Members = append(v.Members, m)
		}
	}
	v.Self = v.Members[0]
	return v
}

// benchBatch builds blocks round-robin over the view's channels, the first half published by self
// (CrossOrg, as self is external), the rest forwarded by peers of self's org, every other one
// first accepted here (CrossOrg); and StateInfo about members across orgs, half of them external,
// forwarded by various peers.
func benchBatch(v View, blocks, stateInfos int) []Message[int] {
	var batch []Message[int]
	for i := range blocks {
		m := Message[int]{Kind: KindBlock, Channel: fmt.Sprintf("ch%d", i%len(v.ChannelOrgs)), Origin: v.Self.ID, OriginOrg: v.Self.Org, CrossOrg: true, Payload: len(batch)}
		if i >= blocks/2 {
			m.From, m.CrossOrg = v.Members[1+i].ID, i%2 == 0
		}
		batch = append(batch, m)
	}
	for i := range stateInfos {
		o := v.Members[(i*37)%len(v.Members)]
		batch = append(batch, Message[int]{Kind: KindStateInfo, Channel: fmt.Sprintf("ch%d", i%len(v.ChannelOrgs)), Origin: o.ID, OriginOrg: o.Org, OriginExternal: i%2 == 0, From: v.Members[(i*53)%len(v.Members)].ID, Payload: len(batch)})
	}
	return batch
}

// BenchmarkPlan plans a batch of 10 blocks and 10 StateInfo over 1,000 members (10 orgs × 100, 3
// channels): the work done on every emitter flush.
func BenchmarkPlan(b *testing.B) {
	v := benchView(10, 100, 3)
	batch := benchBatch(v, 10, 10)
	cfg := DefaultConfig()
	rng := newRNG(1)
	b.ReportAllocs()
	for b.Loop() {
		if len(Plan(cfg, batch, v, rng)) == 0 {
			b.Fatal("empty plan")
		}
	}
}

func BenchmarkSelectPeers(b *testing.B) {
	v := benchView(10, 100, 3)
	f := And(SameOrg(v.Self.Org), Eligible(v, "ch0"))
	rng := newRNG(1)
	b.ReportAllocs()
	for b.Loop() {
		if len(v.SelectPeers(3, f, rng)) != 3 {
			b.Fatal("short sample")
		}
	}
}
