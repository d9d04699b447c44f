package treesim

import (
	"flag"
	"testing"
	"time"
)

var (
	report = flag.Bool("sim.report", false, "make TestReport print its results line (it always runs; the other flags size it)")
	orgs   = flag.Int("sim.orgs", 5, "orgs")
	perOrg = flag.Int("sim.peers", 10, "peers per org")
	ext    = flag.Int("sim.external", 2, "external peers per org")
	blocks = flag.Int("sim.blocks", 100, "blocks per channel")
	warmup = flag.Int("sim.warmup", 40, "warm-up blocks per channel")
	loss   = flag.Float64("sim.loss", 0, "frame loss probability")
	crash  = flag.Float64("sim.crash", 0, "fraction of peers that crash mid-run")
	churn  = flag.Int("sim.churn", 0, "churn events")
	seed   = flag.Uint64("sim.seed", 1, "seed")
	cap_   = flag.Int("sim.maxeager", -1, "tree.Config.MaxEager (-1: the default)")
	size   = flag.Int("sim.bytes", 0, "payload bytes, for -sim.egress")
	egress = flag.Float64("sim.egress", 0, "egress limit per peer in Mbit/s (0: none)")
	every  = flag.Duration("sim.interval", 0, "time between a channel's blocks (0: the profile's)")
)

// TestReport is the simulator's entry point for figures at any size:
//
//	go test ./routing/tree/treesim -run TestReport -v -sim.report -sim.orgs 100 -sim.peers 10
//
// With the default flags it runs profile S and requires what any fault-free
// run must show: every frame within the audience and no block missed.
func TestReport(t *testing.T) {
	cfg := ProfileS()
	cfg.Seed, cfg.Orgs, cfg.PeersPerOrg, cfg.ExternalPerOrg = *seed, *orgs, *perOrg, *ext
	cfg.Blocks, cfg.Warmup, cfg.Loss, cfg.CrashFraction, cfg.Churn = *blocks, *warmup, *loss, *crash, *churn
	cfg.PayloadBytes, cfg.EgressMbps = *size, *egress
	if *cap_ >= 0 {
		cfg.Tree.MaxEager = *cap_
	}
	if *every > 0 {
		cfg.Interval = *every
	}
	cfg.CrashAt = time.Duration(*blocks/2) * cfg.Interval
	start := time.Now()
	r := Run(cfg)
	if *report {
		t.Logf("%v (wall %v)", r, time.Since(start).Round(time.Millisecond))
	}
	if r.Violations != 0 {
		t.Errorf("%d frames outside the audience", r.Violations)
	}
	if *loss == 0 && *crash == 0 && *churn == 0 && r.Misses != 0 {
		t.Errorf("%d (block, live member) pairs missed in a fault-free run", r.Misses)
	}
}
