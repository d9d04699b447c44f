package tree

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/libp2p/go-libp2p/core/peer"
)

// benchView is profile S: 5 orgs × 10 peers, the first two of each org external, one channel on
// all orgs. Self is org0's first peer.
func benchView() routing.View {
	v := routing.View{ChannelOrgs: map[string][]string{"ch0": {"org0", "org1", "org2", "org3", "org4"}}}
	for o := range 5 {
		for p := range 10 {
			v.Members = append(v.Members, routing.Member{
				ID: peer.ID(fmt.Sprintf("org%d-p%02d", o, p)), Org: fmt.Sprintf("org%d", o), External: p < 2,
				Channels: map[string]bool{"ch0": true}, Alive: true,
			})
		}
	}
	v.Self = v.Members[0]
	return v
}

// BenchmarkPayload measures one fresh payload on a 50-peer view: forward to the eager links,
// announce to the lazy ones, and drain Ready, as the node does per block.
func BenchmarkPayload(b *testing.B) {
	m, err := New(DefaultConfig(), "org0-p00", rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		b.Fatal(err)
	}
	m.SetView(benchView())
	id := ID{Channel: "ch0", Root: "org0-p05"}
	now := time.Unix(1_000_000, 0)
	b.ReportAllocs()
	var num uint64
	for b.Loop() {
		num++
		m.Payload("org0-p03", id, num, true, now)
		m.Payload("org0-p04", id, num, false, now)
		m.Ready()
	}
}
