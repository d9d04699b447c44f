package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/fabgossip/fabgossip/testnet/bench"
)

func runBench(ctx context.Context, e *env, args []string) error {
	const name = "bench"
	fs := newFlagSet(name)
	scale := fs.String("scale", bench.ScaleS, "S (50 peers), L (200 peers) or quick (a reduced S for CI)")
	quick := fs.Bool("quick", false, "the reduced S for CI (same as --scale quick)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	sizes := fs.String("sizes", "", "block sizes in bytes, comma-separated (default: the scale's)")
	blocks := fs.Int("blocks", 0, "blocks per channel (default: the scale's)")
	rate := fs.Float64("rate", 0, "blocks per second per channel (default: the scale's)")
	seeds := fs.String("seeds", "", "seeds, comma-separated (default: the scale's)")
	systems := fs.String("systems", "", "systems, comma-separated: "+strings.Join(bench.AllSystems(), ", ")+" (default: "+strings.Join(bench.DefaultSystems(), ", ")+")")
	idle := fs.Duration("idle", 0, "idle window before publishing, for idle control traffic (default: the scale's)")
	external := fs.Int("external", 0, "external peers per org (default 2)")
	crash := fs.Float64("crash", 0, "crash this fraction of the peers (e.g. 0.1) once every channel has published half of its blocks: never a publisher, a curious non-member or an org's last external peer (0 is off)")
	network := fs.String("network", bench.NetworkMock, "mock (a mocknet with the latency profile) or tcp (real libp2p hosts on loopback TCP, no emulated latency; S or quick only)")
	render := fs.String("render", "", "print the markdown of a report saved with --json, without running anything")
	egressMbps := fs.Float64("egress-mbps", 0, "limit every host's egress to this many Mbit/s, one token bucket per host (e.g. 100; 0 is off)")
	h := help{
		usage: "fabgossip bench [flags]",
		description: "Runs the dissemination benchmark of BENCHMARK.md on in-process peers (mocknet,\n" +
			"2 ms inside an org, 25 ms between orgs): fabgossip, Fabric-stock, GossipSub and\n" +
			"direct delivery on the same topology and blocks. Prints a markdown table; exits\n" +
			"non-zero if a system's run failed, or fabgossip leaked or missed a block.\n" +
			"--network tcp runs every host on real loopback TCP instead (no emulated latency);\n" +
			"--egress-mbps gives every host one egress token bucket.",
		example: "fabgossip bench --quick\n" +
			"fabgossip bench --scale S --sizes 131072 --seeds 1 --blocks 100 --json S.json\n" +
			"fabgossip bench --quick --network tcp --egress-mbps 100\n" +
			"fabgossip bench --quick --crash 0.1\n" +
			"fabgossip bench --render S.json\n" +
			"fabgossip bench --scale L --json L.json",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	if *render != "" {
		f, err := os.Open(*render)
		if err != nil {
			return err
		}
		defer f.Close()
		rep, err := bench.ReadReport(f)
		if err != nil {
			return fmt.Errorf("%s: %w", *render, err)
		}
		fmt.Fprint(e.stdout, rep.Markdown())
		return nil
	}
	o := bench.Options{Scale: *scale, Blocks: *blocks, Rate: *rate, Idle: *idle, ExternalPerOrg: *external,
		Command: "fabgossip bench " + strings.Join(args, " ")}
	o.Network, o.EgressMbps = *network, *egressMbps
	o.CrashFraction = *crash
	if *quick {
		o.Scale = bench.ScaleQuick
	}
	for _, s := range splitList(*sizes) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return usagef(name, "--sizes: %q is not a block size in bytes", s)
		}
		o.BlockSizes = append(o.BlockSizes, n)
	}
	for _, s := range splitList(*seeds) {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return usagef(name, "--seeds: %q is not a seed", s)
		}
		o.Seeds = append(o.Seeds, n)
	}
	o.Systems = splitList(*systems)

	rep, err := bench.Run(ctx, o, e.stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, rep.Markdown())
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return rep.Check()
}
