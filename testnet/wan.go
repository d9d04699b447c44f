package testnet

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/internal/shape"
)

// The WAN profile of a process testnet (ProcessOptions.WAN): the kernel of a
// shared test machine has no netem, so every peer process shapes its own
// gossip streams (internal/shape, switched on by the testnet section of the
// peer config the testnet generates): one-way latency per link as the
// benchmark draws it (2 ms inside an org, 25 ms between orgs, ±20% per link,
// from the run's seed), a per-peer egress limit, and random loss of push
// frames on receipt. The report puts T_full next to its floor.

// shapingFile is the shaping plan's name in the network directory; every
// peer config names it as ../../shapingFile (peer configs are
// <org>/peer<k>/peer.yaml).
const shapingFile = "shaping.json"

// WANOptions shape every peer of a process testnet like a host on a
// wide-area network. The latency profile is the benchmark's
// (shape.DefaultProfile), drawn from ProcessOptions.Seed.
type WANOptions struct {
	// EgressMbps is every peer's egress limit: one token bucket of this many
	// Mbit/s for all the bytes its gossip streams write (0: none). The
	// default, 100, is the benchmark's optional egress profile: a 4 KiB
	// block takes 0.3 ms of line time per copy, so at the testnet's default
	// sizes it barely shows, and a publisher's fan-out is no longer free.
	EgressMbps float64
	// Loss is the probability that a peer drops a frame it receives on the
	// push stream (blocks, StateInfo, alive, the tree's digests and grafts),
	// whole; pull and hello are not dropped, so pull repairs (0: none).
	Loss float64
}

// DefaultWANOptions is the latency profile with 100 Mbit/s of egress per
// peer and no loss.
func DefaultWANOptions() WANOptions { return WANOptions{EgressMbps: 100} }

// validate reports the WAN options out of range through bad.
func (w WANOptions) validate(bad func(name string, v any, want string)) {
	if w.EgressMbps < 0 {
		bad("wan-egress-mbps", w.EgressMbps, "0 (no limit) or more")
	}
	if w.Loss < 0 || w.Loss >= 1 {
		bad("wan-loss", w.Loss, "a probability in [0, 1)")
	}
}

// shapingPath is where a peer config finds the shaping plan, relative to
// its directory.
func shapingPath() string { return filepath.Join("..", "..", shapingFile) }

// writeShaping writes the shaping plan of the generated peers and keeps the
// latencies every peer will draw from it, for the floors.
func (r *run) writeShaping() error {
	p := r.o.WAN
	prof := shape.DefaultProfile()
	plan := &shape.Plan{
		Seed:            r.o.Seed,
		IntraOrgLatency: shape.Duration(prof.IntraOrg),
		InterOrgLatency: shape.Duration(prof.InterOrg),
		Jitter:          prof.Jitter,
		EgressMbps:      p.EgressMbps,
		Loss:            p.Loss,
	}
	for _, g := range r.peers {
		plan.Peers = append(plan.Peers, shape.PlanPeer{ID: g.ID, Org: g.Org})
	}
	if err := shape.WritePlan(filepath.Join(r.dir, shapingFile), plan); err != nil {
		return fmt.Errorf("testnet: shaping plan: %w", err)
	}
	r.lat = plan.Latencies()
	return nil
}

// wanText describes the WAN profile for the report ("" without one).
func (r *run) wanText() string {
	if r.o.WAN == nil {
		return ""
	}
	prof := shape.DefaultProfile()
	egress := "no egress limit"
	if m := r.o.WAN.EgressMbps; m > 0 {
		egress = fmt.Sprintf("egress limit %g Mbit/s per peer", m)
	}
	return fmt.Sprintf("one-way latency %v inside an org, %v between orgs (±%.0f%% per link, seed %d), %s, %g%% of push frames dropped on receipt, inside every peer process",
		prof.IntraOrg, prof.InterOrg, 100*prof.Jitter, r.o.Seed, egress, 100*r.o.WAN.Loss)
}

// floor is channel k's floor under the WAN profile: the shortest-path
// latency from its publisher to its farthest member, through members only
// and across orgs only between external peers (fabgossip's rule); 0 without
// a WAN profile (loopback, taken as no latency).
func (r *run) floor(k int) time.Duration {
	if r.lat == nil {
		return 0
	}
	ch := r.channels[k]
	var members []int
	from := -1
	for _, g := range r.peers {
		if slices.Contains(ch.Orgs, g.Org) {
			members = append(members, g.Index)
		}
		if g.Name == ch.Publisher {
			from = g.Index
		}
	}
	hop := func(a, b int) bool {
		pa, pb := r.peers[a], r.peers[b]
		return pa.Org == pb.Org || (pa.External && pb.External)
	}
	return shape.Floor(r.lat, from, members, hop)
}
