package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fabgossip/fabgossip/internal/shape"
	"github.com/fabgossip/fabgossip/node/peerconfig"
)

// ProcessOptions describe a testnet of peer processes. Start from
// DefaultProcessOptions.
type ProcessOptions struct {
	// Orgs, PeersPerOrg and External (per org, the first peers) shape the
	// network; Channels is the number of channels, laid out by
	// DefaultChannels.
	Orgs, PeersPerOrg, External, Channels int
	// BlockSize is the data size of every block; Blocks the number of blocks
	// published on each channel, at Rate blocks per second per channel.
	BlockSize, Blocks int
	Rate              float64
	// QUIC makes the peers listen on QUIC instead of TCP.
	QUIC bool
	// Dir is where the network is generated (it must not hold one); empty
	// means a temporary directory, removed at the end.
	Dir string
	// Binary is the fabgossip executable to run peers with (`Binary peer
	// ...`); empty means this program (os.Executable).
	Binary string
	// StartTimeout bounds the start of every peer and the convergence of
	// their views; DeliveryTimeout bounds, after the last publish, the wait
	// for every eligible peer to deliver every block.
	StartTimeout, DeliveryTimeout time.Duration
	// LogLevel is the peers' log level (their logs are peer.log in their
	// directories).
	LogLevel string
	// Out receives the progress and the report (default io.Discard); with
	// Live the progress is one line rewritten in place.
	Out  io.Writer
	Live bool
	// Keep leaves the network running after the report, printing each
	// peer's admin URL, until ctx ends.
	Keep bool
	// Prometheus, with Keep, is a file to write a Prometheus scrape config
	// for every peer's admin /metrics to (ScrapeConfig), once every peer is
	// up and again after a restart. Empty: none.
	Prometheus string
	// Command is recorded in the report.
	Command []string
	// Seed makes the block data reproducible.
	Seed uint64
	// WAN, when set, shapes every peer like a host on a wide-area network
	// (wan.go): per-link latency, an egress limit, loss of push frames. The
	// report then gives each channel's floor and T_full over it.
	WAN *WANOptions
	// Restarts is how often one peer that publishes nothing is killed with
	// SIGKILL mid-stream and started again from its config and data
	// directory (0: never). The stream is cut in 2*Restarts+1 equal parts;
	// the peer is killed at the end of every odd part and restarted at the
	// end of every even one (with 1: killed after a third of the blocks,
	// restarted after two thirds). The peer must still deliver every block,
	// and deliver none twice across a restart.
	Restarts int
}

// DefaultProcessOptions is the default testnet: 3 orgs of 4 peers (2
// external each), 2 channels, 200 blocks of 4 KiB per channel at 20 blocks
// per second, on TCP.
func DefaultProcessOptions() ProcessOptions {
	return ProcessOptions{
		Orgs: 3, PeersPerOrg: 4, External: 2, Channels: 2,
		BlockSize: 4 << 10, Blocks: 200, Rate: 20,
		StartTimeout: 60 * time.Second, DeliveryTimeout: 30 * time.Second,
		LogLevel: "info",
		Seed:     1,
	}
}

// Validate reports every option out of range, naming it and its value.
func (o ProcessOptions) Validate() error {
	var errs []error
	bad := func(name string, v any, want string) {
		errs = append(errs, fmt.Errorf("%s = %v: want %s", name, v, want))
	}
	if o.Orgs < 1 {
		bad("orgs", o.Orgs, "at least 1")
	}
	if o.PeersPerOrg < 1 {
		bad("peers", o.PeersPerOrg, "at least 1 per org")
	}
	if o.External < 0 || o.External > o.PeersPerOrg {
		bad("external", o.External, fmt.Sprintf("0 to peers per org (%d)", o.PeersPerOrg))
	}
	if o.Orgs > 1 && o.External == 0 {
		bad("external", o.External, "at least 1 when there are several orgs, or no block can cross between them")
	}
	if o.Channels < 1 {
		bad("channels", o.Channels, "at least 1")
	}
	if o.BlockSize < 1 || o.BlockSize > 64<<20 {
		bad("block-size", o.BlockSize, "1 to 64 MiB (67108864); above 1 MiB blocks travel in chunks")
	}
	if o.Blocks < 1 {
		bad("count", o.Blocks, "at least 1")
	}
	if o.Rate <= 0 {
		bad("rate", o.Rate, "a positive number of blocks per second")
	}
	if o.StartTimeout <= 0 || o.DeliveryTimeout <= 0 {
		bad("timeout", o.DeliveryTimeout, "a positive duration")
	}
	if o.Prometheus != "" && !o.Keep {
		bad("prometheus", o.Prometheus, "keep as well: without it the peers stop right after the report")
	}
	if o.Restarts < 0 {
		bad("restarts", o.Restarts, "0 or more")
	}
	if o.WAN != nil {
		o.WAN.validate(bad)
	}
	if o.Restarts > 0 && o.Blocks < 2*o.Restarts+1 {
		bad("count", o.Blocks, fmt.Sprintf("at least %d to kill and restart a peer %d time(s) mid-stream", 2*o.Restarts+1, o.Restarts))
	}
	if o.Restarts > 0 && o.Orgs >= 1 && o.PeersPerOrg >= 1 && o.Channels >= 1 {
		orgs := OrgNames(o.Orgs)
		if _, _, ok := restartCandidate(orgs, o.PeersPerOrg, DefaultChannels(orgs, o.Channels)); !ok {
			bad("peers", o.PeersPerOrg, "a peer that publishes nothing, to restart: more peers per org or fewer channels")
		}
	}
	return errors.Join(errs...)
}

// ErrFailed is returned by RunProcesses, with the report, when a channel has
// coverage below 100% or leaks, or a restarted peer did not resume where its
// store left off.
var ErrFailed = errors.New("testnet failed: coverage below 100%, leaks, or a restart that did not resume from its store")

// RunProcesses generates a network, starts every peer as an OS process on
// loopback, waits until every peer sees the peers of its channels, publishes
// o.Blocks blocks on each channel through its publisher's admin API, waits
// until every eligible peer has delivered every block or the deadline
// passes, and reports per channel. With o.Restarts, one peer that
// publishes nothing is killed and restarted meanwhile (process_restart.go).
// Every peer keeps its blocks in the data directory of its generated config
// (data/ in its directory). It stops every process and removes the
// temporary directory before it returns, also when ctx is cancelled. The
// error is ErrFailed (with the report) when the network did not deliver, and
// another error when the testnet could not run.
func RunProcesses(ctx context.Context, o ProcessOptions) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	bin, dir, cleanup, err := workspace(o.Binary, o.Dir, "fabgossip-testnet-")
	if err != nil {
		return nil, err
	}
	defer cleanup()

	r := &run{o: o, bin: bin, dir: dir, start: time.Now(), victim: -1}
	if err := r.generate(); err != nil {
		return nil, err
	}
	procCtx, cancelProcs := context.WithCancel(context.Background())
	r.procCtx = procCtx
	defer func() { stopAll(cancelProcs, r.procs) }()
	// A cancelled ctx stops the processes at once, even mid-wait.
	stop := context.AfterFunc(ctx, cancelProcs)
	defer stop()

	fmt.Fprintf(o.Out, "testnet: %d orgs x %d peers (%d external each), %d channels, %d blocks of %d B per channel at %g/s over %s, in %s\n",
		o.Orgs, o.PeersPerOrg, o.External, o.Channels, o.Blocks, o.BlockSize, o.Rate, r.transport(), dir)
	if w := r.wanText(); w != "" {
		fmt.Fprintf(o.Out, "testnet: WAN profile: %s\n", w)
	}
	if r.victim >= 0 {
		fmt.Fprintf(o.Out, "testnet: %s will be killed (SIGKILL) and restarted %d time(s), first killed after %d blocks per channel and restarted after %d\n",
			r.peers[r.victim].Name, o.Restarts, restartStepAt(0, o.Restarts, o.Blocks), restartStepAt(1, o.Restarts, o.Blocks))
	}
	if err := r.startPeers(ctx); err != nil {
		return nil, err
	}
	if err := r.waitConverged(ctx); err != nil {
		return nil, err
	}
	if err := r.writeScrapeConfig(); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "testnet: %d peers up and connected after %.1fs; publishing\n", len(r.procs), time.Since(r.start).Seconds())
	if err := r.disseminate(ctx); err != nil {
		return nil, err
	}
	rep, err := r.report(ctx)
	if err != nil {
		return nil, err
	}
	rep.WriteTable(o.Out)
	if o.Keep && ctx.Err() == nil {
		r.printAdminURLs()
		select {
		case <-ctx.Done():
		case p := <-r.exits:
			fmt.Fprintf(o.Out, "testnet: %v\n", p.exitError())
		}
	}
	fmt.Fprintln(o.Out, "testnet: stopping peers")
	if !rep.Passed {
		return rep, ErrFailed
	}
	return rep, nil
}

// workspace resolves a run's binary (bin, or this process's own) and
// directory (dir, or a new temporary one named after prefix, which cleanup
// removes; cleanup does nothing for a given dir).
func workspace(bin, dir, prefix string) (string, string, func(), error) {
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return "", "", nil, fmt.Errorf("finding the fabgossip binary: %w", err)
		}
	}
	if dir != "" {
		return bin, dir, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", nil, err
	}
	return bin, tmp, func() { _ = os.RemoveAll(tmp) }, nil
}

// run is the state of one RunProcesses.
type run struct {
	o        ProcessOptions
	bin, dir string
	start    time.Time
	peers    []peerconfig.GeneratedPeer
	channels []ChannelTopology
	procs    []*process      // by peer index; a restarted peer's current process
	procCtx  context.Context // ends every process
	exits    chan *process   // every process that exited without being killed on purpose

	// The restart scenario (process_restart.go): victim is the index of the
	// peer killed and restarted (-1: none), restartSteps the kills and
	// restarts done. lifeStart is, per channel, the victim's height when its
	// current process started; fromStore, once restarted, makes the harness
	// read its blocks from its ledger rather than its delivery log, which
	// restarts empty. lostMetrics sums the victim's counters of its killed
	// processes, from their last scrape.
	victim          int
	restartSteps    int
	restarts        []*restartRecord
	restartProblems []string
	lifeStart       []uint64
	fromStore       bool
	lostMetrics     peerMetrics

	// lat is the WAN profile's link latencies (by peer index), as every
	// peer draws them from the shaping plan; nil without a WAN profile.
	lat *shape.Latencies

	mu        sync.Mutex
	published []map[uint64]sighting   // per channel: block number -> publish time and hash
	delivered [][]map[uint64]sighting // per channel, per process: block number -> delivery time and hash
	next      [][]uint64              // per channel, per process: next block number to read
}

// sighting is a block as a peer published or delivered it: when (Unix ns; 0
// when the peer delivered it but no longer knows when: a restarted peer's
// blocks from before its crash that the harness had not yet seen) and its
// hash (hex).
type sighting struct {
	at   int64
	hash string
}

func (r *run) transport() string {
	if r.o.QUIC {
		return "QUIC"
	}
	return "TCP"
}

// generate writes the network, with every peer on loopback, OS-chosen
// ports, the local gossip preset and its admin API on a free port.
func (r *run) generate() error {
	orgs := OrgNames(r.o.Orgs)
	chans := DefaultChannels(orgs, r.o.Channels)
	layout := peerconfig.Layout{Network: "testnet", Channels: chans}
	for _, org := range orgs {
		layout.Orgs = append(layout.Orgs, peerconfig.OrgLayout{Name: org, Peers: r.o.PeersPerOrg, External: r.o.External})
	}
	listen := "/ip4/127.0.0.1/tcp/0"
	if r.o.QUIC {
		listen = "/ip4/127.0.0.1/udp/0/quic-v1"
	}
	layout.Peer = func(_ peerconfig.GeneratedPeer, c *peerconfig.Config) {
		c.Listen = []string{listen}
		c.Admin.Address = "127.0.0.1:0"
		c.Gossip.Preset = peerconfig.PresetLocal
		if r.o.WAN != nil {
			c.Testnet.Shaping = shapingPath()
		}
	}
	peers, err := peerconfig.WriteLayout(r.dir, layout)
	if err != nil {
		return err
	}
	r.peers = peers
	if r.o.WAN != nil {
		if err := r.writeShaping(); err != nil {
			return err
		}
	}
	r.exits = make(chan *process, len(peers)+r.o.Restarts)
	for k, c := range chans {
		r.channels = append(r.channels, ChannelTopology{Name: c.Name, Orgs: c.Orgs, Publisher: r.peerAt(c.Publishers[0], publisherK(k, r.o.PeersPerOrg)).Name})
	}
	r.lifeStart = make([]uint64, len(chans))
	r.lostMetrics = newPeerMetrics()
	if r.o.Restarts > 0 {
		org, k, ok := restartCandidate(orgs, r.o.PeersPerOrg, chans)
		if !ok {
			return errors.New("testnet: every peer publishes; none to restart")
		}
		r.victim = r.peerAt(org, k).Index
	}
	return nil
}

// publisherK is the position in its org of channel k's publishing peer: the
// first peer of the org for even k, the last for odd k, so that both an
// external publisher and (with enough peers) an internal one are exercised.
func publisherK(k, peersPerOrg int) int {
	if k%2 == 1 {
		return peersPerOrg - 1
	}
	return 0
}

// peerAt returns peer k of org.
func (r *run) peerAt(org string, k int) peerconfig.GeneratedPeer {
	for _, g := range r.peers {
		if g.Org == org && g.K == k {
			return g
		}
	}
	panic(fmt.Sprintf("testnet: no peer %d in org %s", k, org)) // generate makes every org's peers
}

// startPeers starts the first peer of each org one after the other (each
// external one bootstrapping from the external first peers before it), then
// every other peer at once, bootstrapping from its org's first peer.
func (r *run) startPeers(ctx context.Context) error {
	deadline := time.Now().Add(r.o.StartTimeout)
	anchors := map[string]*process{}
	var externalAnchors []*process
	for _, g := range r.peers {
		if g.K != 0 {
			continue
		}
		var boot []string
		if g.External {
			for _, a := range externalAnchors {
				boot = append(boot, a.bootstrapAddrs()...)
			}
		}
		p, err := r.startProcess(g, boot)
		if err != nil {
			return err
		}
		if err := p.waitReady(ctx, deadline); err != nil {
			return err
		}
		anchors[g.Org] = p
		if g.External {
			externalAnchors = append(externalAnchors, p)
		}
	}
	var rest []*process
	for _, g := range r.peers {
		if g.K == 0 {
			continue
		}
		p, err := r.startProcess(g, anchors[g.Org].bootstrapAddrs())
		if err != nil {
			return err
		}
		rest = append(rest, p)
	}
	var g errgroup.Group
	for _, p := range rest {
		g.Go(func() error { return p.waitReady(ctx, deadline) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Order processes as the peers were generated, for the report.
	slices.SortFunc(r.procs, func(a, b *process) int { return a.peer.Index - b.peer.Index })
	return nil
}

// startProcess starts peer g and adds it to r.procs.
func (r *run) startProcess(g peerconfig.GeneratedPeer, bootstrap []string) (*process, error) {
	p, err := r.launch(g, bootstrap)
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	return p, nil
}

// launch starts peer g and reports its exit on r.exits, unless it was
// killed on purpose.
func (r *run) launch(g peerconfig.GeneratedPeer, bootstrap []string) (*process, error) {
	p, err := startProcess(r.procCtx, r.bin, g, bootstrap, r.o.LogLevel)
	if err != nil {
		return nil, err
	}
	go func() {
		<-p.done
		if !p.killed.Load() {
			r.exits <- p // buffered for every process: never blocks
		}
	}()
	return p, nil
}

// expectedPeers is how many eligible peers p should see in channel ch: the
// other members of its org, and if p is external, the external peers of the
// channel's other orgs (a non-external peer is invisible across orgs).
func (r *run) expectedPeers(p peerconfig.GeneratedPeer, ch ChannelTopology) int {
	n := 0
	for _, q := range r.peers {
		if q.Index == p.Index || !slices.Contains(ch.Orgs, q.Org) {
			continue
		}
		if q.Org == p.Org || (p.External && q.External) {
			n++
		}
	}
	return n
}

// waitConverged polls every peer's status until each sees every peer it
// should in each of its channels.
func (r *run) waitConverged(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.StartTimeout)
	defer cancel()
	t := time.NewTicker(4 * pollInterval)
	defer t.Stop()
	for {
		var lagging []string
		for _, p := range r.procs {
			if p.exited() {
				return p.exitError()
			}
			st, err := p.client.Status(ctx)
			if err != nil {
				lagging = append(lagging, fmt.Sprintf("%s (%v)", p.peer.Name, err))
				continue
			}
			for _, ch := range r.channels {
				if !slices.Contains(ch.Orgs, p.peer.Org) {
					continue
				}
				want := r.expectedPeers(p.peer, ch)
				for _, cs := range st.Channels {
					if cs.Name == ch.Name && cs.Peers < want {
						lagging = append(lagging, fmt.Sprintf("%s sees %d/%d peers of %s", p.peer.Name, cs.Peers, want, ch.Name))
					}
				}
			}
		}
		if len(lagging) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("peers did not see each other within %v: %s", r.o.StartTimeout, strings.Join(lagging, "; "))
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// disseminate publishes on every channel at the configured rate while
// collecting deliveries, and returns once every eligible peer delivered
// every block or the delivery deadline passed.
func (r *run) disseminate(ctx context.Context) error {
	r.published = make([]map[uint64]sighting, len(r.channels))
	r.delivered = make([][]map[uint64]sighting, len(r.channels))
	r.next = make([][]uint64, len(r.channels))
	for k := range r.channels {
		r.published[k] = map[uint64]sighting{}
		r.delivered[k] = make([]map[uint64]sighting, len(r.procs))
		r.next[k] = make([]uint64, len(r.procs))
		for i := range r.procs {
			r.delivered[k][i] = map[uint64]sighting{}
		}
	}

	pubs := make([]*process, len(r.channels))
	for k, ch := range r.channels {
		for _, p := range r.procs {
			if p.peer.Name == ch.Publisher {
				pubs[k] = p
			}
		}
	}
	pubCtx, cancelPub := context.WithCancel(ctx)
	defer cancelPub()
	pubDone := make(chan error, 1)
	go func() { pubDone <- r.publishAll(pubCtx, pubs) }()

	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	var deadline <-chan time.Time
	lastPrint := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-r.exits:
			return p.exitError()
		case err := <-pubDone:
			if err != nil {
				return err
			}
			deadline = time.After(r.o.DeliveryTimeout)
			pubDone = nil
		case <-deadline:
			if r.restartsPending() {
				return fmt.Errorf("delivery deadline passed before %s was restarted", r.peers[r.victim].Name)
			}
			r.pollDeliveries(ctx)
			r.printProgress(true)
			return r.finishRestarts(ctx)
		case <-poll.C:
			r.pollDeliveries(ctx)
			if err := r.stepRestarts(ctx); err != nil {
				return err
			}
			if pubDone == nil && !r.restartsPending() && r.complete() {
				r.printProgress(true)
				return r.finishRestarts(ctx)
			}
		case <-progress.C:
			if r.o.Live || time.Since(lastPrint) >= 5*time.Second {
				r.printProgress(false)
				lastPrint = time.Now()
			}
		}
	}
}
