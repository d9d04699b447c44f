package treesim

import (
	"flag"
	"testing"
	"time"
)

var (
	report = flag.Bool("sim.report", false, "run TestReport: simulate and print one results line")
	orgs   = flag.Int("sim.orgs", 5, "orgs")
	perOrg = flag.Int("sim.peers", 10, "peers per org")
	ext    = flag.Int("sim.external", 2, "external peers per org")
	blocks = flag.Int("sim.blocks", 100, "blocks per channel")
	warmup = flag.Int("sim.warmup", 40, "warm-up blocks per channel")
	loss   = flag.Float64("sim.loss", 0, "frame loss probability")
	crash  = flag.Float64("sim.crash", 0, "fraction of peers that crash mid-run")
	churn  = flag.Int("sim.churn", 0, "churn events")
	seed   = flag.Uint64("sim.seed", 1, "seed")
)

// TestReport is the simulator's entry point for figures at any size:
//
//	go test ./routing/tree/treesim -run TestReport -v -sim.report -sim.orgs 100 -sim.peers 10
func TestReport(t *testing.T) {
	if !*report {
		t.Skip("pass -sim.report")
	}
	cfg := ProfileS()
	cfg.Seed, cfg.Orgs, cfg.PeersPerOrg, cfg.ExternalPerOrg = *seed, *orgs, *perOrg, *ext
	cfg.Blocks, cfg.Warmup, cfg.Loss, cfg.CrashFraction, cfg.Churn = *blocks, *warmup, *loss, *crash, *churn
	cfg.CrashAt = time.Duration(*blocks/2) * cfg.Interval
	start := time.Now()
	r := Run(cfg)
	t.Logf("%v (wall %v)", r, time.Since(start).Round(time.Millisecond))
}
