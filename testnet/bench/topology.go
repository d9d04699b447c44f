package bench

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

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

// Latency profile (headline): one-way, drawn once per link within ±20%.
const (
	IntraOrgLatency = 2 * time.Millisecond
	InterOrgLatency = 25 * time.Millisecond
	LatencyJitter   = 0.20
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

// latencies is the one-way latency of every link, symmetric, drawn once per
// link from the seed. Index n (one past the last peer) is the outsider host,
// which is treated as another org.
type latencies struct {
	n int
	d []time.Duration // (n+1)×(n+1)
}

func newLatencies(l *layout, seed uint64) *latencies {
	n := l.peers()
	lat := &latencies{n: n, d: make([]time.Duration, (n+1)*(n+1))}
	rng := rand.New(rand.NewPCG(seed, 0x6c6174)) // "lat"
	for i := 0; i <= n; i++ {
		for j := i + 1; j <= n; j++ {
			base := InterOrgLatency
			if j < n && l.org[i] == l.org[j] {
				base = IntraOrgLatency
			}
			f := 1 + LatencyJitter*(2*rng.Float64()-1)
			d := time.Duration(float64(base) * f)
			lat.d[i*(n+1)+j], lat.d[j*(n+1)+i] = d, d
		}
	}
	return lat
}

// between returns the one-way latency of the link i–j (n is the outsider).
func (lat *latencies) between(i, j int) time.Duration { return lat.d[i*(lat.n+1)+j] }

// floor returns, for channel c, the shortest-path latency from its
// publisher to its farthest member through relays that may carry the block:
// members only, and, when crossOnlyExternal, an org boundary crossed only
// between two external peers (fabgossip's rule). Without the restriction it
// is the floor for any member-only relay scheme.
func (l *layout) floor(lat *latencies, c int, crossOnlyExternal bool) time.Duration {
	ch := l.channels[c]
	dist := make(map[int]time.Duration, len(ch.members))
	for _, m := range ch.members {
		dist[m] = time.Duration(math.MaxInt64)
	}
	dist[ch.publisher] = 0
	pq := &distHeap{{ch.publisher, 0}}
	done := map[int]bool{}
	for pq.Len() > 0 {
		cur := heap.Pop(pq).(distItem)
		if done[cur.peer] {
			continue
		}
		done[cur.peer] = true
		for _, v := range ch.members {
			if done[v] {
				continue
			}
			if crossOnlyExternal && l.org[v] != l.org[cur.peer] && !(l.external[v] && l.external[cur.peer]) {
				continue
			}
			if d := cur.d + lat.between(cur.peer, v); d < dist[v] {
				dist[v] = d
				heap.Push(pq, distItem{v, d})
			}
		}
	}
	var worst time.Duration
	for _, d := range dist {
		worst = max(worst, d)
	}
	return worst
}

type distItem struct {
	peer int
	d    time.Duration
}

type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
