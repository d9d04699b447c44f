package bench

import (
	"fmt"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/node/identity"
	"github.com/fabgossip/fabgossip/testnet"
)

// Scales of the benchmark (BENCHMARK.md, "Topology and workload").
const (
	ScaleS     = "S"
	ScaleL     = "L"
	ScaleQuick = "quick"
)

// ExternalPerOrg is how many peers of every org are external (reachable by
// other orgs). The benchmark uses two, so a block can enter an org by more
// than one door.
const ExternalPerOrg = 2

// Latency profile (headline): one-way, drawn once per link within ±20%
// (shape's profile, which the process testnet's --wan uses too).
const (
	IntraOrgLatency = shape.IntraOrgLatency
	InterOrgLatency = shape.InterOrgLatency
	LatencyJitter   = shape.LatencyJitter
)

// ScaleTopology returns the network of a scale: S is 5 orgs × 10 peers with
// ch0 (all), ch1 (orgs 0–2), ch2 (orgs 3–4); L is 10 × 20 with ch0 (all), ch1
// (orgs 0–4), ch2 (orgs 5–9), ch3 (orgs 0 and 9); quick is S's channels on 5
// orgs × 4 peers. Each channel's first org publishes.
func ScaleTopology(scale string) (testnet.Topology, error) {
	switch scale {
	case ScaleS:
		return makeTopology(5, 10, [][]int{{0, 1, 2, 3, 4}, {0, 1, 2}, {3, 4}}), nil
	case ScaleL:
		return makeTopology(10, 20, [][]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}, {0, 9}}), nil
	case ScaleQuick:
		return makeTopology(5, 4, [][]int{{0, 1, 2, 3, 4}, {0, 1, 2}, {3, 4}}), nil
	}
	return testnet.Topology{}, fmt.Errorf("bench: unknown scale %q (want S, L or quick)", scale)
}

// makeTopology builds orgs × peers with ExternalPerOrg external peers per org
// and one channel per entry of chans (its member org indices; the first one
// publishes).
func makeTopology(orgs, peers int, chans [][]int) testnet.Topology {
	t := testnet.Topology{Network: "bench"}
	for i := range orgs {
		t.Orgs = append(t.Orgs, testnet.OrgSpec{Name: fmt.Sprintf("org%d", i), Peers: peers, External: min(ExternalPerOrg, peers)})
	}
	for c, members := range chans {
		ch := identity.Channel{Name: fmt.Sprintf("ch%d", c)}
		for _, o := range members {
			ch.Orgs = append(ch.Orgs, t.Orgs[o].Name)
		}
		ch.Publishers = []string{ch.Orgs[0]}
		t.Channels = append(t.Channels, ch)
	}
	return t
}

// layout is the flattened topology: which org each peer index is in, which
// peers are external, each channel's members and publisher. Peers are
// numbered as testnet numbers them: org by org, external ones first.
type layout struct {
	topo     testnet.Topology
	org      []int  // peer → org index
	external []bool // peer → external
	channels []chanLayout
}

type chanLayout struct {
	name      string
	orgs      []int // member org indices
	members   []int // member peer indices, ascending
	publisher int   // peer index: the first (external) peer of the first org
	// curious is the non-member that tries to receive the channel: a peer of
	// the first org outside it, or -1 when every org is a member (then an
	// outsider host with no org plays the part).
	curious int
}

func newLayout(t testnet.Topology) (*layout, error) {
	l := &layout{topo: t}
	orgIndex := map[string]int{}
	first := make([]int, len(t.Orgs))
	for o, spec := range t.Orgs {
		if spec.Peers <= 0 {
			return nil, fmt.Errorf("bench: org %s has no peers", spec.Name)
		}
		orgIndex[spec.Name] = o
		first[o] = len(l.org)
		for k := range spec.Peers {
			l.org = append(l.org, o)
			l.external = append(l.external, k < spec.External)
		}
	}
	for _, ch := range t.Channels {
		cl := chanLayout{name: ch.Name, curious: -1}
		for _, name := range ch.Orgs {
			o, ok := orgIndex[name]
			if !ok {
				return nil, fmt.Errorf("bench: channel %s names unknown org %s", ch.Name, name)
			}
			cl.orgs = append(cl.orgs, o)
		}
		if len(cl.orgs) == 0 {
			return nil, fmt.Errorf("bench: channel %s has no orgs", ch.Name)
		}
		for p, o := range l.org {
			if slices.Contains(cl.orgs, o) {
				cl.members = append(cl.members, p)
			}
		}
		cl.publisher = first[cl.orgs[0]]
		for o := range t.Orgs {
			if !slices.Contains(cl.orgs, o) {
				cl.curious = first[o] + t.Orgs[o].Peers - 1 // a non-external peer
				break
			}
		}
		l.channels = append(l.channels, cl)
	}
	return l, nil
}

func (l *layout) peers() int { return len(l.org) }

// memberships is the number of (peer, channel) pairs with the peer a member.
func (l *layout) memberships() int {
	n := 0
	for _, c := range l.channels {
		n += len(c.members)
	}
	return n
}

// newLatencies draws the one-way latency of every link of l from seed
// (shape.NewLatencies with the benchmark's profile). Index l.peers(), one
// past the last peer, is the outsider host, in no org.
func newLatencies(l *layout, seed uint64) *shape.Latencies {
	return shape.NewLatencies(append(slices.Clone(l.org), -1), shape.DefaultProfile(), seed)
}

// outsiderIndex is the outsider's index in lat: the last.
func outsiderIndex(lat *shape.Latencies) int { return lat.Len() - 1 }

// floor returns, for channel c, the shortest-path latency from its
// publisher to its farthest member through relays that may carry the block:
// members only, and, when crossOnlyExternal, an org boundary crossed only
// between two external peers (fabgossip's rule). Without the restriction it
// is the floor for any member-only relay scheme.
func (l *layout) floor(lat *shape.Latencies, c int, crossOnlyExternal bool) time.Duration {
	ch := l.channels[c]
	var hop func(a, b int) bool
	if crossOnlyExternal {
		hop = func(a, b int) bool { return l.org[a] == l.org[b] || (l.external[a] && l.external[b]) }
	}
	return shape.Floor(lat, ch.publisher, ch.members, hop)
}
