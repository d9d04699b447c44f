// Package bench is the dissemination benchmark of BENCHMARK.md: fabgossip
// against Fabric-stock, GossipSub and direct delivery, on the same topology,
// link latencies, blocks and clock, one system after the other in this
// process.
//
//	Run(ctx, Options{Scale: "S"}, os.Stderr)
//	  for each block size, seed, system:
//	    build on a mocknet (latency per link from the seed), or on
//	    loopback TCP hosts (Options.Network), every host egress-limited
//	    if Options.EgressMbps ─► warm up
//	    idle window (control traffic) ─► publish Blocks per channel at Rate
//	    ─► settle (all delivered, or 10 s) ─► close ─► metrics
//	  ─► *Report: Short() (a row per system and size, and the Gaps to
//	      BENCHMARK.md's Targets), Markdown() (everything), PlotSVG()
//	      (the CDF of per-block T_full), JSON
//
// Every system reports to one recorder: publish times, each member's first
// receipt of each block and whether push brought it, payload copies sent and
// received, leaks, and framed bytes per peer (length prefix included, the
// layer every system writes to its libp2p streams). fabgossip reports through
// node.Tracer and transport.Tracer, GossipSub through a pubsub.RawTracer and
// its subscriptions, direct through its own stream handler.
//
// Systems:
//   - fabgossip: node.DefaultConfig() with a 500 ms pull (FabgossipConfig);
//   - fabric-stock: node.DefaultConfig(), Fabric's values (FabricStockConfig);
//   - fabgossip-local, not run by default: node.LocalConfig(), the testnet
//     preset (LocalConfigBench); all three are the same code, with Fabric's
//     10-block window;
//   - gossipsub: go-libp2p-pubsub v0.19.0 defaults, one topic per channel,
//     members plus one curious non-member per channel subscribe, flood
//     publish off, a topic graph of degree about 20;
//   - gossipsub-nosign, not run by default: the same with StrictNoSign, no
//     author, a message ID over the data, and each block signed by its
//     publisher and checked by a topic validator (gossipsub_nosign.go);
//   - direct: the publisher writes each block to every member.
//
// With Options.CrashFraction, a run crashes that fraction of the peers once
// every channel has published half of its blocks (crash.go): the crashed
// peers leave E(b), and Result.Crash measures the repair.
//
// The topology of a scale (ScaleTopology) has ExternalPerOrg external peers
// per org; each channel's first org publishes from its first (external)
// peer. The floor of a channel is the shortest path from its publisher to
// its farthest member through members, crossing orgs only between external
// peers (fabgossip's rule), computed from the run's link latencies.
package bench
