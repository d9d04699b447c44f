package shape

import (
	"math"
	"math/rand/v2"
	"time"
)

// The benchmark's latency profile (BENCHMARK.md, "Topology and workload"):
// one-way, drawn once per link within ±LatencyJitter.
const (
	IntraOrgLatency = 2 * time.Millisecond
	InterOrgLatency = 25 * time.Millisecond
	LatencyJitter   = 0.20
)

// Profile is a latency profile: the one-way latency of a link inside an org
// and between orgs, each link's drawn once within ±Jitter (a fraction).
type Profile struct {
	IntraOrg, InterOrg time.Duration
	Jitter             float64
}

// DefaultProfile is the benchmark's profile: 2 ms inside an org, 25 ms
// between orgs, ±20%.
func DefaultProfile() Profile {
	return Profile{IntraOrg: IntraOrgLatency, InterOrg: InterOrgLatency, Jitter: LatencyJitter}
}

// Latencies is the one-way latency of every link of a network of n hosts,
// symmetric (the same both ways) and 0 from a host to itself.
type Latencies struct {
	n int
	d []time.Duration // n×n
}

// NewLatencies draws the latency of every link between hosts 0..len(org)-1
// from seed: p.IntraOrg between two hosts of the same org (org[i] ≥ 0 is
// host i's org), p.InterOrg otherwise (a host with org[i] < 0 is in no org:
// every link of it is inter-org), each times a factor drawn uniformly from
// [1-p.Jitter, 1+p.Jitter]. The links are drawn in the order (0,1), (0,2),
// ..., (1,2), ..., so the same seed and orgs give the same latencies.
func NewLatencies(org []int, p Profile, seed uint64) *Latencies {
	n := len(org)
	lat := NewZeroLatencies(n)
	rng := rand.New(rand.NewPCG(seed, 0x6c6174)) // "lat"
	for i := range n {
		for j := i + 1; j < n; j++ {
			base := p.InterOrg
			if org[i] >= 0 && org[i] == org[j] {
				base = p.IntraOrg
			}
			f := 1 + p.Jitter*(2*rng.Float64()-1)
			lat.Set(i, j, time.Duration(float64(base)*f))
		}
	}
	return lat
}

// NewZeroLatencies is n hosts with no latency on any link (loopback).
func NewZeroLatencies(n int) *Latencies {
	return &Latencies{n: n, d: make([]time.Duration, n*n)}
}

// Len is the number of hosts.
func (l *Latencies) Len() int { return l.n }

// Between returns the one-way latency of the link i–j.
func (l *Latencies) Between(i, j int) time.Duration { return l.d[i*l.n+j] }

// Set sets the latency of the link i–j, both ways.
func (l *Latencies) Set(i, j int, d time.Duration) {
	l.d[i*l.n+j], l.d[j*l.n+i] = d, d
}

// Floor returns the shortest-path latency from host from to the farthest of
// members (which should include from), relaying only through members and
// taking the hop a→b only where hop(a, b) allows it (nil: every hop): the
// least T_full any dissemination restricted to those relays can reach, with
// no time spent in the hosts. A member that cannot be reached makes it
// math.MaxInt64. Dijkstra by linear scan: members are a channel's peers,
// hundreds at most.
func Floor(lat *Latencies, from int, members []int, hop func(a, b int) bool) time.Duration {
	const unreached = time.Duration(math.MaxInt64)
	dist := make(map[int]time.Duration, len(members))
	for _, m := range members {
		dist[m] = unreached
	}
	dist[from] = 0
	done := make(map[int]bool, len(members))
	for {
		cur, best := -1, unreached
		for _, m := range members {
			if !done[m] && dist[m] < best {
				cur, best = m, dist[m]
			}
		}
		if cur < 0 {
			break
		}
		done[cur] = true
		for _, v := range members {
			if done[v] || (hop != nil && !hop(cur, v)) {
				continue
			}
			dist[v] = min(dist[v], best+lat.Between(cur, v))
		}
	}
	var worst time.Duration
	for _, d := range dist {
		worst = max(worst, d)
	}
	return worst
}
