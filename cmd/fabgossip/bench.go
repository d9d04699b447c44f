package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
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
	network := fs.String("network", bench.NetworkPipe, "pipe (a mocknet, the latency profile applied per stream on the reading side: a pipe, as testnet --wan), mock (the same latencies on the mocknet's links: a stream's writes go one per one-way latency, the default before 2026-12-07) or tcp (real libp2p hosts on loopback TCP, no emulated latency; S or quick only)")
	render := fs.String("render", "", "print the report saved with --json to this file, without running anything")
	verbose := fs.Bool("verbose", false, "print the whole report: per-seed and per-channel tables and the notes (the JSON always has everything)")
	plot := fs.String("plot", "", "also write an SVG plot of the T_full distribution per system to this file (with --render: of the saved report)")
	egressMbps := fs.Float64("egress-mbps", 0, "limit every host's egress to this many Mbit/s, one token bucket per host (e.g. 100; 0 is off)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at the end of the run: allocations by site over the run (alloc_space) and what is still held (inuse_space)")
	lossRate := fs.Float64("loss", 0, "drop this fraction of the frames every host receives on its system's payload protocols, at random (e.g. 0.2; fabgossip push, GossipSub RPCs, direct; not pull or hello; 0 is off)")
	h := help{
		usage: "fabgossip bench [flags]",
		description: "Runs the dissemination benchmark of BENCHMARK.md on in-process peers (mocknet,\n" +
			"2 ms inside an org, 25 ms between orgs): fabgossip, Fabric-stock, GossipSub and\n" +
			"direct delivery on the same topology and blocks. Prints a short markdown table\n" +
			"and fabgossip's gap to BENCHMARK.md's targets (--verbose: everything); exits\n" +
			"non-zero if a system's run failed, or fabgossip leaked or missed a block.\n" +
			"Progress goes to stderr.\n" +
			"--network tcp runs every host on real loopback TCP instead (no emulated latency);\n" +
			"--network mock puts the latencies on the mocknet's links (one write per latency);\n" +
			"--egress-mbps gives every host one egress token bucket; --loss drops frames at random.",
		example: "fabgossip bench --quick\n" +
			"fabgossip bench --scale S --sizes 131072 --seeds 1 --blocks 100 --json S.json\n" +
			"fabgossip bench --quick --network tcp --egress-mbps 100\n" +
			"fabgossip bench --quick --crash 0.1\n" +
			"fabgossip bench --quick --loss 0.2\n" +
			"fabgossip bench --render S.json --verbose\n" +
			"fabgossip bench --render S.json --plot S.svg\n" +
			"fabgossip bench --scale L --json L.json\n" +
			"fabgossip bench --scale L --sizes 16384 --seeds 1 --systems fabgossip --cpuprofile L.cpu --memprofile L.mem",
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
		return writeBenchReport(e, rep, *verbose, *plot)
	}
	o := bench.Options{Scale: *scale, Blocks: *blocks, Rate: *rate, Idle: *idle, ExternalPerOrg: *external,
		Command: "fabgossip bench " + strings.Join(args, " ")}
	o.Network, o.EgressMbps = *network, *egressMbps
	o.CrashFraction, o.Loss = *crash, *lossRate
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

	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	rep, err := bench.Run(ctx, o, e.stderr)
	if perr := stopProfiles(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	// The JSON first: a plot that fails must not lose a long run.
	if *jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := writeBenchReport(e, rep, *verbose, *plot); err != nil {
		return err
	}
	return rep.Check()
}

// writeBenchReport prints rep, short or whole, and writes its plot if asked.
func writeBenchReport(e *env, rep *bench.Report, verbose bool, plotPath string) error {
	if verbose {
		fmt.Fprint(e.stdout, rep.Markdown())
	} else {
		fmt.Fprint(e.stdout, rep.Short())
	}
	if plotPath == "" {
		return nil
	}
	f, err := os.Create(plotPath)
	if err != nil {
		return err
	}
	if err := rep.PlotSVG(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", plotPath, err)
	}
	return f.Close()
}

// startProfiles starts a CPU profile to cpuPath and, at stop, writes a heap
// profile to memPath (each only if its path is set). stop ends both and
// reports the first error.
func startProfiles(cpuPath, memPath string) (stop func() error, err error) {
	var cpu *os.File
	if cpuPath != "" {
		if cpu, err = os.Create(cpuPath); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			_ = cpu.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	if memPath != "" {
		// Probe the path now rather than lose it after a long run.
		f, err := os.Create(memPath)
		if err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				_ = cpu.Close()
			}
			return nil, err
		}
		_ = f.Close()
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if memPath != "" {
			f, err := os.Create(memPath)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			runtime.GC() // inuse_space as of the end of the run
			errs = append(errs, pprof.WriteHeapProfile(f), f.Close())
		}
		return errors.Join(errs...)
	}, nil
}
