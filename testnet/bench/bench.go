package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/node"
	"github.com/fabgossip/fabgossip/testnet"
)

// The systems under test (BENCHMARK.md, "Systems under test").
const (
	// SystemFabgossip is fabgossip as the benchmark recommends running it
	// (FabgossipConfig): Fabric's values with a 500 ms pull, so push's
	// stragglers are repaired in well under a second without the 500 ms
	// alive and StateInfo traffic of node.LocalConfig().
	SystemFabgossip = "fabgossip"
	// SystemFabgossipLocal is fabgossip with the testnet preset
	// (LocalConfigBench: node.LocalConfig(), everything every 500 ms). It is
	// not in the default set: with 50 peers in one process its control
	// plane saturates the CPU.
	SystemFabgossipLocal = "fabgossip-local"
	// SystemFabricStock is fabgossip with node.DefaultConfig(), Fabric's
	// shipped values: fan-out 3, forward once, 10 ms / 10-message emitter,
	// pull every 4 s from 3 peers, StateInfo every 4 s.
	SystemFabricStock = "fabric-stock"
	// SystemGossipSub is go-libp2p-pubsub's GossipSub with default
	// parameters, one topic per channel.
	SystemGossipSub = "gossipsub"
	// SystemGossipSubNoSign is SystemGossipSub in its fairest form:
	// StrictNoSign, no author, a message ID over the data, and
	// application-level signatures (gossipsub_nosign.go). Not in the default
	// set: it costs a second GossipSub run per configuration.
	SystemGossipSubNoSign = "gossipsub-nosign"
	// SystemDirect is the publisher sending every block to every member.
	SystemDirect = "direct"
)

// AllSystems lists every system, in report order.
func AllSystems() []string {
	return []string{SystemFabgossip, SystemFabgossipLocal, SystemFabricStock, SystemGossipSub, SystemGossipSubNoSign, SystemDirect}
}

// DefaultSystems are the systems of BENCHMARK.md, run unless Options say
// otherwise.
func DefaultSystems() []string {
	return []string{SystemFabgossip, SystemFabricStock, SystemGossipSub, SystemDirect}
}

// maxBlockSize is the largest block the bench publishes: node's
// MaxBlockBytes (blocks over ChunkThreshold travel as chunks); GossipSub's
// and direct delivery's message caps are raised to fit each run's blocks.
const maxBlockSize = 64 << 20

// FabricMaxBlockCountToStore is Fabric's in-memory block window per channel
// since v2.2 (FAB-16435 lowered it from 100 to 10 because of memory with many
// channels). Every fabgossip row of the benchmark uses it: node holds about
// twice a block's size per stored block (the envelope and the decoded
// message), so node.DefaultConfig()'s 100 would need about 2.5 GB for S at
// 128 KiB and more than the machine has for L or 1 MiB blocks.
const FabricMaxBlockCountToStore = 10

// FabgossipConfig is SystemFabgossip's configuration: node.DefaultConfig()
// (the dissemination tree, its repair by digest and graft, pull on a gap and
// every PullInterval) with Fabric's block window.
func FabgossipConfig() node.Config {
	c := node.DefaultConfig()
	c.MaxBlockCountToStore = FabricMaxBlockCountToStore
	return c
}

// LocalConfigBench is SystemFabgossipLocal's configuration:
// node.LocalConfig() with Fabric's block window.
func LocalConfigBench() node.Config {
	c := node.LocalConfig()
	c.MaxBlockCountToStore = FabricMaxBlockCountToStore
	return c
}

// FabricStockConfig is SystemFabricStock's configuration: node.DefaultConfig()
// with Fabric's random push (Dissemination fabric) and Fabric's block window:
// Fabric as it ships.
func FabricStockConfig() node.Config {
	c := node.DefaultConfig()
	c.Dissemination = node.DisseminationFabric
	c.MaxBlockCountToStore = FabricMaxBlockCountToStore
	// Fabric's pull serves every block it holds at once: its push leaves
	// its misses to pull alone.
	c.PullGrace = 0
	// Fabric's membership: heartbeats to PropagatePeerNum peers, forwarded
	// once, and the discovery sync every PullInterval.
	c.DirectAlive = false
	c.MembershipSyncInterval = c.PullInterval
	return c
}

// Options say what to run. Zero fields take the scale's defaults (Defaults).
type Options struct {
	// Scale is "S", "L" or "quick".
	Scale string
	// BlockSizes are the block data sizes to run, in bytes.
	BlockSizes []int
	// Blocks is the number of blocks published on each channel per
	// (system, size, seed).
	Blocks int
	// Rate is blocks per second on each channel.
	Rate float64
	// Seeds seed keys, link latencies, block data and peer selection; one
	// run per seed.
	Seeds []uint64
	// Systems are the systems to run (default DefaultSystems).
	Systems []string
	// Idle is the quiet window before the first publish in which idle
	// control traffic is measured.
	Idle time.Duration
	// Settle bounds the wait after the last publish for stragglers (at most
	// 10 s counts for cov_final).
	Settle time.Duration
	// WarmupTimeout bounds the wait for membership (fabgossip) or topic
	// peers (GossipSub) to converge before the idle window.
	WarmupTimeout time.Duration
	// ExternalPerOrg overrides how many peers of every org are external
	// (default ExternalPerOrg). With 1, every org has a single door, as
	// Fabric's orgs have a single leader that the orderer feeds.
	ExternalPerOrg int
	// Command is the command line recorded in the report.
	Command string
	// Network is NetworkPipe (the default: a mocknet, the latency profile
	// applied per stream on the reading side), NetworkMock (the same
	// latencies on the mocknet's links, one write per one-way latency) or NetworkTCP (real libp2p hosts on loopback TCP, no
	// emulated latency, S-sized: L is refused), for every system alike.
	Network string
	// EgressMbps, if positive, limits every host of every system to that
	// many Mbit/s of egress: one token bucket per host for every byte
	// written to the streams it opens or accepts (100 for BENCHMARK.md's
	// optional limit). 0 is off.
	EgressMbps float64
	// CrashFraction, if positive, crashes round(CrashFraction × peers)
	// peers (never a publisher, a curious non-member or an org's last
	// external peer) once every channel has published half of its blocks
	// (crash.go). 0 is off.
	CrashFraction float64
	// Loss, if positive, drops that fraction of the frames every host
	// receives on its system's payload protocols, at random with a seeded
	// generator per host (loss.go, shape.Loss): 0.2 for the tree issue's
	// fault. 0 is off.
	Loss float64

	// topology overrides the scale's topology (tests).
	topology *testnet.Topology
}

// Defaults returns the options of a scale. S and L: 16 KiB, 128 KiB and
// 1 MiB blocks, 100 blocks per channel (at least 300 per configuration) at 2
// blocks/s per channel, seeds 1–3, a 10 s idle window, and 90 s (L: 180 s)
// for membership to converge. quick: 16 KiB, 10 blocks per channel at 5/s,
// seed 1, a 2 s idle window, for CI.
func Defaults(scale string) (Options, error) {
	if _, err := ScaleTopology(scale); err != nil {
		return Options{}, err
	}
	o := Options{
		Scale:         scale,
		BlockSizes:    []int{16 << 10, 128 << 10, 1 << 20},
		Blocks:        100,
		Rate:          2,
		Seeds:         []uint64{1, 2, 3},
		Systems:       DefaultSystems(),
		Idle:          10 * time.Second,
		Settle:        10 * time.Second,
		WarmupTimeout: 90 * time.Second,
	}
	if scale == ScaleL {
		o.WarmupTimeout = 180 * time.Second
	}
	if scale == ScaleQuick {
		o.BlockSizes = []int{16 << 10}
		o.Blocks = 10
		o.Rate = 5
		o.Seeds = []uint64{1}
		o.Idle = 2 * time.Second
		o.WarmupTimeout = 30 * time.Second
	}
	return o, nil
}

// withDefaults fills o's zero fields from its scale's defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Scale == "" {
		o.Scale = ScaleS
	}
	d, err := Defaults(o.Scale)
	if err != nil {
		return o, err
	}
	if len(o.BlockSizes) == 0 {
		o.BlockSizes = d.BlockSizes
	}
	if o.Blocks <= 0 {
		o.Blocks = d.Blocks
	}
	if o.Rate <= 0 {
		o.Rate = d.Rate
	}
	if len(o.Seeds) == 0 {
		o.Seeds = d.Seeds
	}
	if len(o.Systems) == 0 {
		o.Systems = d.Systems
	}
	if o.Idle <= 0 {
		o.Idle = d.Idle
	}
	if o.Settle <= 0 {
		o.Settle = d.Settle
	}
	if o.WarmupTimeout <= 0 {
		o.WarmupTimeout = d.WarmupTimeout
	}
	for _, s := range o.Systems {
		if !slices.Contains(AllSystems(), s) {
			return o, fmt.Errorf("bench: unknown system %q (want one of %s)", s, strings.Join(AllSystems(), ", "))
		}
	}
	for _, n := range o.BlockSizes {
		if n < headerSize || n > maxBlockSize {
			return o, fmt.Errorf("bench: block size %d out of range [%d, %d]", n, headerSize, maxBlockSize)
		}
	}
	if err := checkNetwork(&o); err != nil {
		return o, err
	}
	return o, nil
}

// Run runs every system of o on every block size and seed, one after the
// other in this process, and reports. Progress lines go to progress (may be
// nil). A system that fails gets a Result with Error set; Run itself fails
// only on bad options or a cancelled ctx.
func Run(ctx context.Context, o Options, progress io.Writer) (*Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	topo := testnet.Topology{}
	if o.topology != nil {
		topo = *o.topology
	} else if topo, err = ScaleTopology(o.Scale); err != nil {
		return nil, err
	}
	if o.ExternalPerOrg > 0 {
		for i := range topo.Orgs {
			topo.Orgs[i].External = min(o.ExternalPerOrg, topo.Orgs[i].Peers)
		}
	}
	l, err := newLayout(topo)
	if err != nil {
		return nil, err
	}
	if o.CrashFraction != 0 {
		if _, err := crashVictims(l, o.CrashFraction, 0); err != nil {
			return nil, err
		}
	}
	rep := &Report{
		Command:  o.Command,
		Started:  time.Now().UTC(),
		Machine:  machine(),
		Topology: summary(o.Scale, l),
		Workload: Workload{
			BlockSizes: o.BlockSizes, BlocksPerChan: o.Blocks, RatePerChan: o.Rate, Seeds: o.Seeds,
			IdleSeconds: o.Idle.Seconds(), Systems: o.Systems,
			Network: o.Network, EgressMbps: o.EgressMbps, Loss: o.Loss,
			CrashFraction: o.CrashFraction,
		},
		Notes: notes(),
	}
	switch o.Network {
	case NetworkTCP:
		rep.Topology.Latency = tcpLatency
	case NetworkPipe:
		rep.Topology.Latency += pipeLatency
	}
	total := len(o.BlockSizes) * len(o.Seeds) * len(o.Systems)
	for _, size := range o.BlockSizes {
		for _, seed := range o.Seeds {
			for _, sys := range o.Systems {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				progressStart(progress, len(rep.Results)+1, total, sys, size, seed, time.Since(rep.Started))
				res := runOne(ctx, o, l, sys, size, seed, progress)
				if res.Error != "" {
					fmt.Fprintf(progress, "bench: %s failed: %s\n", sys, res.Error)
				} else {
					fmt.Fprintf(progress, "bench: %s: cov_push %.4f P_full_push %.3f cov_final %.4f T_full p50 %.0f ms p99 %.0f ms A_wire %.2f leaks %d CPU %.0f%%\n",
						sys, res.CovPush, res.PFullPush, res.CovFinal, res.TFullP50Ms, res.TFullP99Ms, res.AWire, res.Leaks, 100*res.CPUUtilisation)
					if res.Crash != nil {
						fmt.Fprintf(progress, "bench: %s: %s\n", sys, res.Crash)
					}
				}
				rep.Results = append(rep.Results, res)
			}
		}
	}
	rep.Machine.LoadAvgEnd = loadavg()
	rep.Duration = time.Since(rep.Started).Seconds()
	return rep, nil
}

func summary(scale string, l *layout) TopologySummary {
	t := TopologySummary{
		Scale: scale, Orgs: len(l.topo.Orgs), ExternalPerOrg: l.topo.Orgs[0].External,
		Latency: fmt.Sprintf("one-way latency %v inside an org, %v between orgs, ±%.0f%% drawn once per link from the seed",
			IntraOrgLatency, InterOrgLatency, 100*LatencyJitter),
	}
	for _, o := range l.topo.Orgs {
		t.PeersPerOrg = append(t.PeersPerOrg, o.Peers)
	}
	for i, c := range l.channels {
		cur := "an outsider host with no org (every org is a member)"
		if c.curious >= 0 {
			cur = fmt.Sprintf("peer %d of %s", c.curious, l.topo.Orgs[l.org[c.curious]].Name)
		}
		t.Channels = append(t.Channels, ChanInfo{Name: c.name, Orgs: l.topo.Channels[i].Orgs, Members: len(c.members), Publisher: c.publisher, Curious: cur})
	}
	return t
}

func notes() []string {
	return []string{
		"Latency is publish call → a member's first receipt of the block (fabgossip: BlockAccepted, after signature and certificate checks, and for a chunked block BlockCompleted, when its last chunk checks out; GossipSub: Subscription.Next after validation; direct: frame read), on one in-process clock. A block 'counts as push' if its first receipt came by push (GossipSub and direct: always).",
		"Bytes are counted at the same layer for every system: length-prefixed frames written to libp2p streams (fabgossip: transport FrameSent on push and pull, hello reported apart; GossipSub: RawTracer SendRPCCompleted, uvarint + protobuf RPC as comm.go writes it; direct: its own uvarint-framed writes). Mocknet adds no muxer, security or TCP overhead for any of them; over loopback TCP (--network tcp) that overhead is real but not counted, for any of them.",
		"fabgossip and fabgossip-local push along the dissemination tree (node.DisseminationTree, the default: an eager tree per channel and publisher with lazy IHAVE digests, GRAFT and PRUNE, Plumtree), then pull; fabgossip = node.DefaultConfig() with pull every 500 ms, fabgossip-local = node.LocalConfig() (pull, StateInfo and alive every 500 ms, the testnet preset). fabric-stock is the same code with Fabric's push (node.DisseminationFabric: fan-out 3, forward once, sender and origin set aside before sampling, then pull; a block accepted by pull is forwarded by push too) and Fabric's timings (pull and StateInfo 4 s, alive 5 s). Fabric's own sampling flaw (sample first, then drop the sender, so fan-out falls to 2) is not reproducible by configuration; fabric-stock is therefore slightly better than Fabric.",
		"Every fabgossip row keeps Fabric's in-memory block window of 10 blocks per channel (MaxBlockCountToStore; Fabric's value since v2.2), not node.DefaultConfig()'s 100: a node holds about a block's size per stored block (its envelope; the decoded block aliases it), so 100 would need gigabytes for 50–200 in-process peers.",
		"Blocks cross orgs in fabgossip only between external peers. With the tree, each pair of orgs of a channel is linked by Doors=2 external↔external links (pairs chosen alike at both ends), which start eager and are pruned to the first-arrival tree like every other link. With fabric-stock, the publisher (external) hands each block to CrossOrgPeerNum=1 external peer of each other org, and the publisher org's other external peer does the same when it first accepts the block, so an org can get a block through up to two doors. Fabric hands each block to one leader per org (the orderer), so its per-org push coverage starts from one door.",
		"GossipSub: go-libp2p-pubsub v0.19.0, DefaultGossipSubParams, signing on (StrictSign, Ed25519 keys), flood publish off (the v0.19 default), WithMaxMessageSize raised to the block size plus 64 KiB when that is over its 1 MiB default. Each topic participant dials up to 10 random other participants of the topic (about 20 topic connections per peer), so the graph is degree ≈ 20 and not a full mesh. Only members subscribe, plus one curious non-member per channel; its deliveries are the leaks.",
		"Direct: the publisher writes every block to a long-lived stream per member (one hop, no signature), one writer goroutine per member; mocknet has no bandwidth limit, so its fan-out is free here unless --egress-mbps limits every host.",
		"Network modes, for every system alike (the header and each row's config say which a run used): the default (pipe) is a mocknet with the latency profile applied on each stream's reading side, so a stream is a pipe of that latency; --network mock puts the latency on the mocknet's links instead, which carry a stream's writes one per one-way latency (the default before 2026-12-07); --network tcp puts every host (the outsiders too) on real libp2p loopback TCP (127.0.0.1, TLS or Noise, yamux, no resource limits), with no emulated latency, so floors are 0 and ×floor is n/a; L over TCP is refused. --egress-mbps N gives every host one token bucket of N Mbit/s (16 KiB burst) for all the bytes written to the streams it opens or accepts; libp2p's own streams (identify, ping) are not limited.",
		"gossipsub-nosign (not in the default set, as it costs a second GossipSub run per configuration: --systems ...,gossipsub-nosign) is GossipSub's fairest form: the same parameters, hosts, dials and topics, with StrictNoSign and WithNoAuthor, so a message carries no From, Seqno, signature or key, and a message ID that is SHA-256 of the data (the default ID, From ‖ Seqno, would be empty for every message). The publisher appends a 64-byte Ed25519 signature by its host key over the block data, and every subscriber (the curious one too) runs an inline topic validator that checks that the block's header names the topic's channel and the signature against the channel publisher's public key (from its peer ID), as fabgossip verifies blocks; a message that fails is rejected, neither delivered nor forwarded. Its bytes are counted as gossipsub's (SendRPCCompleted), the signature included.",
		"Crash fault (--crash F, off by default): once every channel has published half of its blocks, round(F × peers) peers crash, chosen with the run's seed and spread over the orgs round-robin, never a channel's publisher or curious non-member, nor an org's last live external peer (that org would be cut off by design, which measures the topology, not repair). A crash has no goodbye: the host's mocknet links go first (nothing can dial it again), then the host closes, so the other peers see every open stream reset (over loopback TCP the closing host ends its connections, with no message from the system); a fabgossip node closes after its host, so its emitter's final drain sends nothing; a crashed GossipSub router stays in memory, cut off. E(b) = the members of b's channel alive at b's publish: the crashed peers are left out of E(b) for every block of the run, those published before the crash included (whether a peer that dies with the block in flight got it measures the crash instant, not the system), so cov_push, cov_final, T_full and the rest are over live peers. The crash table is over the blocks published after the crash began: live_cov_2s is the fraction of (block, live member) pairs delivered within 2 s, P_full within 2 s the fraction of blocks that every live member had within 2 s (the target). RMR, duplicates and A_wire still count the copies and bytes sent to crashed peers before the crash, so they read slightly high in a crash run.",
		"All peers run in one process: CPU seconds and heap are for the whole simulated network; a run above 70% of the cores is flagged (⚠) because its latencies then measure the scheduler. The load column is the machine's 1-minute load average at the start and end of the publish window: on a shared box, a load above the core count means other processes took CPU from every peer, and that row's latencies are inflated.",
	}
}

// sut is a system under test, built, connected and warmed up.
type sut interface {
	// publish publishes data as block num of channel c from the channel's
	// publisher.
	publish(ctx context.Context, c int, num uint64, data []byte) error
	// describe says what the system runs with, and how leaks are probed.
	describe() (config, leakProbe string)
	// crash makes peers stop abruptly, with no goodbye (crash.go).
	crash(peers []int) error
	close() error
}

// runEnv is what a system needs to build itself.
type runEnv struct {
	l        *layout
	lat      *shape.Latencies
	rec      *recorder
	size     int
	seed     uint64
	blocks   int
	warmup   time.Duration
	progress io.Writer
	// network, egressMbps and loss are Options.Network, Options.EgressMbps
	// and Options.Loss.
	network    string
	egressMbps float64
	loss       float64
}

func build(ctx context.Context, sys string, env *runEnv) (sut, error) {
	switch sys {
	case SystemFabgossip:
		return newFabgossip(ctx, env, FabgossipConfig(), "bench.FabgossipConfig() (node.DefaultConfig(), block window 10)")
	case SystemFabgossipLocal:
		return newFabgossip(ctx, env, LocalConfigBench(), "bench.LocalConfigBench() (node.LocalConfig(), block window 10)")
	case SystemFabricStock:
		return newFabgossip(ctx, env, FabricStockConfig(), "bench.FabricStockConfig() (node.DefaultConfig(), block window 10: Fabric's values)")
	case SystemGossipSub:
		return newGossipSub(ctx, env, false)
	case SystemGossipSubNoSign:
		return newGossipSub(ctx, env, true)
	case SystemDirect:
		return newDirect(ctx, env)
	}
	return nil, fmt.Errorf("bench: unknown system %q", sys)
}

// runOne runs one system on one size and seed: build and warm up, idle
// window, publish, settle, close, then compute the metrics.
func runOne(ctx context.Context, o Options, l *layout, sys string, size int, seed uint64, progress io.Writer) (res Result) {
	res = Result{System: sys, BlockSize: size, Seed: seed}
	runtime.GC()
	debug.FreeOSMemory()
	heap := startHeapSampler()
	defer func() {
		// Drop everything of this run before the next one starts.
		heap.stop()
		runtime.GC()
		debug.FreeOSMemory()
	}()

	env := &runEnv{l: l, lat: newLatencies(l, seed), rec: newRecorder(l), size: size, seed: seed, blocks: o.Blocks, warmup: o.WarmupTimeout, progress: progress}
	env.setNetwork(o)
	floors := make([]time.Duration, len(l.channels))
	for c := range l.channels {
		floors[c] = l.floor(env.lat, c, true)
	}
	t0 := time.Now()
	s, err := build(ctx, sys, env)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.WarmupSeconds = time.Since(t0).Seconds()
	closed := false
	closeSUT := func() error {
		if closed {
			return nil
		}
		closed = true
		return s.close()
	}
	defer func() { _ = closeSUT() }()
	res.Config, res.LeakProbe = s.describe()
	res.Config += "; network: " + networkText(o.Network, o.EgressMbps, o.Loss)
	if f, ok := s.(*fabgossipSUT); ok {
		res.WarmupMissing = f.warmupMissing
	}

	var w window
	w.idle = o.Idle
	w.idleFrom = env.rec.snapshot()
	if err := sleep(ctx, o.Idle); err != nil {
		res.Error = err.Error()
		return res
	}
	w.pubFrom = env.rec.snapshot()
	cpu0, pub0 := cpuTime(), time.Now()
	res.LoadAvg[0] = load1()
	if err := publishAll(ctx, s, env, o); err != nil {
		res.Error = err.Error()
		return res
	}
	w.pubOnlyDur, w.pubOnlyCPU = time.Since(pub0), cpuTime()-cpu0
	// Settle: until every member has every block, or 10 s after the last
	// publish (cov_final's deadline), whichever is first.
	deadline := time.Now().Add(o.Settle)
	for !env.rec.complete() && time.Now().Before(deadline) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	w.pubDur = time.Since(pub0)
	w.cpu = cpuTime() - cpu0
	w.pubTo = env.rec.snapshot()
	res.LoadAvg[1] = load1()
	if err := closeSUT(); err != nil {
		fmt.Fprintf(progress, "bench: %s: close: %v\n", sys, err)
	}
	w.peakHeap = heap.stop()
	env.rec.result(&res, w, floors)
	return res
}

// publishAll publishes o.Blocks blocks on every channel at o.Rate per
// channel, the channels staggered evenly, and waits for the last publish.
func publishAll(ctx context.Context, s sut, env *runEnv, o Options) error {
	nch := len(env.l.channels)
	period := time.Duration(float64(time.Second) / o.Rate)
	base := make([]byte, env.size)
	seedBytes := rand.NewChaCha8([32]byte{byte(env.seed), byte(env.seed >> 8), byte(env.seed >> 16), byte(env.seed >> 24), 'b', 'l', 'k'})
	_, _ = seedBytes.Read(base)
	var wg sync.WaitGroup
	errs := make([]error, nch)
	cr, err := startCrasher(ctx, s, env, o)
	if err != nil {
		return err
	}
	for c := range nch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(period * time.Duration(c) / time.Duration(nch))
			defer t.Stop()
			for num := range uint64(o.Blocks) {
				select {
				case <-ctx.Done():
					errs[c] = ctx.Err()
					return
				case <-t.C:
				}
				t.Reset(period)
				data := make([]byte, env.size)
				copy(data, base)
				putHeader(data, c, num)
				env.rec.published(c, num, env.size)
				if err := s.publish(ctx, c, num, data); err != nil {
					errs[c] = fmt.Errorf("publish %s block %d: %w", env.l.channels[c].name, num, err)
					return
				}
				cr.published(num)
			}
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, cr.stop())...)
}

// headerSize is the benchmark header at the start of every block's data:
// channel index and block number, so systems without either (GossipSub,
// direct) can report arrivals.
const headerSize = 10

func putHeader(data []byte, c int, num uint64) {
	binary.BigEndian.PutUint16(data, uint16(c))
	binary.BigEndian.PutUint64(data[2:], num)
}

func readHeader(data []byte) (c int, num uint64, ok bool) {
	if len(data) < headerSize {
		return 0, 0, false
	}
	return int(binary.BigEndian.Uint16(data)), binary.BigEndian.Uint64(data[2:]), true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// heapSampler records the largest live heap seen every 100 ms.
type heapSampler struct {
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	peak     uint64
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if s[0].Value.Kind() == metrics.KindUint64 {
				h.mu.Lock()
				h.peak = max(h.peak, s[0].Value.Uint64())
				h.mu.Unlock()
			}
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// stop ends sampling (idempotent) and returns the peak.
func (h *heapSampler) stop() uint64 {
	h.stopOnce.Do(func() { close(h.done) })
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}
