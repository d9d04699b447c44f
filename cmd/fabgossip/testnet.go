package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fabgossip/fabgossip/testnet"
)

func runTestnet(ctx context.Context, e *env, args []string) error {
	const name = "testnet"
	d := testnet.DefaultProcessOptions()
	fs := newFlagSet(name)
	orgs := fs.Int("orgs", d.Orgs, "number of orgs")
	peers := fs.Int("peers", d.PeersPerOrg, "peers per org")
	external := fs.Int("external", d.External, "external peers per org")
	channels := fs.Int("channels", d.Channels, "number of channels (chK has the first orgs-K orgs and is published by its K-th org)")
	blockSize := fs.Int("block-size", d.BlockSize, "bytes of data per block")
	count := fs.Int("count", d.Blocks, "blocks published per channel")
	rate := fs.Float64("rate", d.Rate, "blocks per second per channel")
	quic := fs.Bool("quic", false, "run the peers over QUIC instead of TCP")
	keep := fs.Bool("keep", false, "after the report, keep the network running and print each peer's admin URL until Ctrl-C")
	prom := fs.String("prometheus", "", "with --keep, write a Prometheus scrape config for every peer's admin /metrics to this file once the peers are up")
	dir := fs.String("dir", "", "generate the network here and keep the files (default: a temporary directory, removed on exit)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	timeout := fs.Duration("timeout", d.DeliveryTimeout, "after the last publish, how long to wait for every eligible peer to deliver every block")
	startTimeout := fs.Duration("start-timeout", d.StartTimeout, "how long peers have to start and see each other")
	logLevel := fs.String("log-level", d.LogLevel, "the peers' log level (logs are peer.log in each peer's directory)")
	wanDefault := testnet.DefaultWANOptions()
	wan := fs.Bool("wan", false, "shape every peer like a host on a WAN, inside its process: one-way latency 2ms inside an org and 25ms between orgs (±20% per link, from the seed), an egress limit per peer (--wan-egress-mbps) and push frame loss (--wan-loss); the report adds each channel's floor and latency ÷ floor")
	wanEgress := fs.Float64("wan-egress-mbps", wanDefault.EgressMbps, "with --wan, every peer's egress limit in Mbit/s (0: none); setting it implies --wan")
	wanLoss := fs.Float64("wan-loss", wanDefault.Loss, "with --wan, the probability that a peer drops a push frame it receives (pull and hello are never dropped); setting it implies --wan")
	restart := fs.Bool("restart", false, "kill (SIGKILL) a peer that publishes nothing after a third of the blocks and restart it from its data directory after two thirds; it must still deliver every block, none twice")
	h := help{
		usage: "fabgossip testnet [flags]",
		description: "Starts a network of real peer processes on loopback, publishes blocks on every\n" +
			"channel through the publishers' admin APIs, and reports per channel: eligible\n" +
			"peers, coverage, leaks (blocks that reached non-members), publish-to-last-delivery\n" +
			"latency, and bytes sent per delivered byte. Exits 0 only with 100% coverage and\n" +
			"0 leaks. Every process is stopped and temporary files removed on exit, Ctrl-C\n" +
			"included. Each peer keeps its blocks in data/ in its directory.\n" +
			"\n" +
			"With --restart one peer is crashed mid-run and restarted: while it is down the\n" +
			"testnet opens its store to check it holds every block the peer delivered, and\n" +
			"after the restart the peer must resume there and deliver every block, none\n" +
			"twice. The report says which peer, when, and how fast it caught up.\n" +
			"\n" +
			"With --wan every peer process shapes its own gossip streams (the kernel needs\n" +
			"no netem): the benchmark's per-link latency, an egress limit per peer and,\n" +
			"with --wan-loss, random loss of whole push frames. The report puts each\n" +
			"channel's publish-to-last-delivery latency (T_full) next to its floor, the\n" +
			"shortest path from the publisher through eligible relays.",
		example: "fabgossip testnet\n" +
			"fabgossip testnet --orgs 2 --peers 3 --external 1 --count 50 --json report.json\n" +
			"fabgossip testnet --quic --keep\n" +
			"fabgossip testnet --keep --prometheus prometheus.yml   # then: prometheus --config.file prometheus.yml\n" +
			"fabgossip testnet --restart\n" +
			"fabgossip testnet --wan --orgs 5 --peers 4\n" +
			"fabgossip testnet --wan --orgs 5 --peers 4 --wan-loss 0.05",
	}
	if err := parseFlags(e, name, fs, h, args, false); err != nil {
		return err
	}
	o := d
	o.Orgs, o.PeersPerOrg, o.External, o.Channels = *orgs, *peers, *external, *channels
	o.BlockSize, o.Blocks, o.Rate = *blockSize, *count, *rate
	o.QUIC, o.Keep, o.Dir, o.Prometheus = *quic, *keep, *dir, *prom
	o.DeliveryTimeout, o.StartTimeout, o.LogLevel = *timeout, *startTimeout, *logLevel
	if *restart {
		o.Restarts = 1
	}
	if *wan || flagSet(fs, "wan-egress-mbps") || flagSet(fs, "wan-loss") {
		o.WAN = &testnet.WANOptions{EgressMbps: *wanEgress, Loss: *wanLoss}
	}
	o.Out, o.Live = e.stdout, isTerminal(e.stdout)
	o.Command = append([]string{"fabgossip", name}, args...)
	if err := o.Validate(); err != nil {
		return &usageError{cmd: name, err: err}
	}
	start := time.Now()
	rep, err := testnet.RunProcesses(ctx, o)
	if rep != nil && *jsonPath != "" {
		if werr := rep.WriteJSON(*jsonPath); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %.1fs; every peer stopped", time.Since(start).Seconds())
		}
		return err
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal), where
// the progress line can be rewritten in place.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
