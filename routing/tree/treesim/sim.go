package treesim

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fabgossip/fabgossip/routing"
	"github.com/fabgossip/fabgossip/routing/tree"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Channel is one simulated channel: its name and member orgs (indices). Its publisher is peer 0
// of its first org, which is external.
type Channel struct {
	Name string
	Orgs []int
}

// Config describes one run. Zero fields take the values of [ProfileS], except the fault fields,
// whose zero means no fault.
type Config struct {
	Seed           uint64
	Orgs           int
	PeersPerOrg    int
	ExternalPerOrg int
	// Channels defaults to [ProfileChannels] of Orgs.
	Channels []Channel
	// Blocks is how many blocks each channel's publisher publishes, one per Interval.
	Blocks   int
	Interval time.Duration
	// Warmup is how many first blocks of each channel the steady-state figures leave out.
	Warmup int
	// IntraLatency and InterLatency are one-way link latencies inside and across orgs; each link's
	// is drawn once within ±Jitter of it.
	IntraLatency time.Duration
	InterLatency time.Duration
	Jitter       float64
	// Flush is the emitter's period: IHAVEs wait for the next multiple of it and go batched, one
	// frame per peer. Payloads, GRAFTs and PRUNEs go at once.
	Flush time.Duration
	// Drain is how long the run continues after the last publish.
	Drain time.Duration
	// PayloadDelay models a loaded peer: each payload frame waits, on top of the link's latency,
	// a delay drawn uniformly up to it (queued behind other frames, or behind the CPU), while
	// the small IHAVE, GRAFT and PRUNE frames do not. Zero: none.
	PayloadDelay time.Duration
	// PayloadBytes and EgressMbps model a bandwidth-bound peer: each payload frame of
	// PayloadBytes leaves its sender through one egress queue of EgressMbps, after the payloads
	// queued before it, then takes the link's latency; control frames are small and skip the
	// queue. Floors then add one transfer time (floor + size ÷ bandwidth). Zero: no limit.
	PayloadBytes int
	EgressMbps   float64

	// Loss is the probability that a frame (of any kind) is lost; ControlLoss adds a loss
	// probability for GRAFT and PRUNE frames only. Both apply to frames sent before FaultsUntil
	// (zero: the whole run).
	Loss        float64
	ControlLoss float64
	FaultsUntil time.Duration
	// SendFail is the probability that a payload send fails at the sender (a full queue) and is
	// reported with SendFailed.
	SendFail float64
	// CrashFraction of the peers that are not publishers crash at CrashAt; the others learn it
	// (the view marks them dead) Detect later.
	CrashFraction float64
	CrashAt       time.Duration
	Detect        time.Duration
	// Churn peers, at random times while blocks are published, go down for Downtime and come
	// back with a new machine and their ledger (a restart from disk).
	Churn    int
	Downtime time.Duration
	// FloodNumbers is how many invented block numbers one peer (org 0, peer 1) announces at
	// FloodAt on every tree and every link, FloodFrame numbers per IHAVE, plus as many invented
	// roots as FloodRoots.
	FloodNumbers int
	FloodFrame   int
	FloodRoots   int
	FloodAt      time.Duration

	Tree tree.Config
}

// ProfileS is fabgossip's benchmark profile S: 5 orgs × 10 peers, 2 external per org; ch0 on
// all orgs, ch1 on orgs 0–2, ch2 on orgs 3–4.
func ProfileS() Config {
	return Config{
		Seed: 1, Orgs: 5, PeersPerOrg: 10, ExternalPerOrg: 2,
		Blocks: 100, Interval: 50 * time.Millisecond, Warmup: 40,
		IntraLatency: 2 * time.Millisecond, InterLatency: 25 * time.Millisecond, Jitter: 0.2,
		Flush: 10 * time.Millisecond, Drain: 3 * time.Second,
		Detect: 500 * time.Millisecond, Downtime: time.Second, FloodFrame: 4096,
		Tree: tree.DefaultConfig(),
	}
}

// ProfileChannels is profile S's channel layout for any number of orgs: ch0 on all orgs, ch1 on
// the first three fifths, ch2 on the rest.
func ProfileChannels(orgs int) []Channel {
	split := max(1, orgs*3/5)
	all, first, rest := []int{}, []int{}, []int{}
	for o := range orgs {
		all = append(all, o)
		if o < split {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	chs := []Channel{{"ch0", all}, {"ch1", first}}
	if len(rest) > 0 {
		chs = append(chs, Channel{"ch2", rest})
	}
	return chs
}

func (c *Config) defaults() {
	d := ProfileS()
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Orgs, d.Orgs)
	setInt(&c.PeersPerOrg, d.PeersPerOrg)
	setInt(&c.ExternalPerOrg, d.ExternalPerOrg)
	setInt(&c.Blocks, d.Blocks)
	setInt(&c.FloodFrame, d.FloodFrame)
	setDur(&c.Interval, d.Interval)
	setDur(&c.IntraLatency, d.IntraLatency)
	setDur(&c.InterLatency, d.InterLatency)
	setDur(&c.Flush, d.Flush)
	setDur(&c.Drain, d.Drain)
	setDur(&c.Detect, d.Detect)
	setDur(&c.Downtime, d.Downtime)
	if c.Channels == nil {
		c.Channels = ProfileChannels(c.Orgs)
	}
	if c.Tree == (tree.Config{}) {
		c.Tree = d.Tree
	}
}

// Result holds a run's counts and figures.
type Result struct {
	Peers, Blocks int
	// Deliveries counts first arrivals at peers other than the publisher; Misses counts (block,
	// peer) pairs where a peer that was up from the block's publish to the end, and that the
	// publisher still reaches over live candidate links, lacks it.
	Deliveries, Misses int
	// Unreachable counts (channel, up member) pairs cut off from the publisher by crashes.
	Unreachable  int
	PayloadSends int
	// RMR is PayloadSends / Deliveries − 1 (Plumtree's relative message redundancy).
	RMR                        float64
	Grafts, Prunes, Duplicates int
	IHaveFrames, IHaveNumbers  int
	Lost                       int
	MaxDepth                   int
	TFullP50, TFullP99, TFloor time.Duration // TFloor: the slowest channel's floor
	RatioP50, RatioP99         float64       // T_full ÷ the channel's floor
	SteadyBlocks               int           // blocks after the warm-up
	SteadyExcess               int           // Σ over steady blocks of payload sends − (members − 1)
	SteadyGrafts               int           // grafts for steady blocks
	SteadyRMR                  float64       // SteadyExcess ÷ Σ over steady blocks of (members − 1)
	PublisherCopies            float64       // payload sends by the publisher into its own org per steady block (doors not counted)
	MaxState                   tree.Stats    // the largest of each count over peers and samples
	MsgsPerPeerSec             float64       // frames sent per peer per virtual second
	Violations                 int           // frames to a peer outside the audience or the sender's candidates
	DoubleDeliveries           int           // blocks handed to an application twice
	Asymmetric                 int           // eager relations held at one end only, at the end
	Duration                   time.Duration // virtual time of the run
}

// String is the one-line summary printed by the report entry point.
func (r Result) String() string {
	return fmt.Sprintf("peers=%d blocks=%d deliveries=%d misses=%d unreachable=%d RMR=%.3f sends=%d grafts=%d prunes=%d dups=%d "+
		"ihave_frames=%d lost=%d depth=%d T_full_p50=%v T_full_p99=%v floor=%v ratio_p50=%.2f ratio_p99=%.2f "+
		"steady_blocks=%d steady_excess=%d steady_RMR=%.4f steady_grafts=%d publisher_copies=%.1f state{trees=%d missing=%d announcers=%d timers=%d} "+
		"msgs/peer/s=%.1f violations=%d double=%d asymmetric=%d",
		r.Peers, r.Blocks, r.Deliveries, r.Misses, r.Unreachable, r.RMR, r.PayloadSends, r.Grafts, r.Prunes, r.Duplicates,
		r.IHaveFrames, r.Lost, r.MaxDepth, r.TFullP50.Round(time.Millisecond/10), r.TFullP99.Round(time.Millisecond/10),
		r.TFloor.Round(time.Millisecond/10), r.RatioP50, r.RatioP99,
		r.SteadyBlocks, r.SteadyExcess, r.SteadyRMR, r.SteadyGrafts, r.PublisherCopies, r.MaxState.Trees, r.MaxState.Missing, r.MaxState.Announcers,
		r.MaxState.Timers, r.MsgsPerPeerSec, r.Violations, r.DoubleDeliveries, r.Asymmetric)
}

type frameKind uint8

const (
	framePayload frameKind = iota
	frameIHave
	frameGraft
	framePrune
)

// frame is what travels on a link. An IHAVE frame carries every announcement of one flush to
// one peer, as the emitter batches them.
type frame struct {
	kind     frameKind
	id       tree.ID
	num      uint64
	hops     int
	nums     []uint64
	announce []tree.Announce
	full     bool // a PRUNE marked full
}

type eventKind uint8

const (
	evDeliver eventKind = iota
	evTick
	evFlush
	evPublish
	evCrash
	evView
	evDown
	evUp
	evFlood
	evSample
)

type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	node int
	from int
	ch   int
	num  uint64
	f    *frame
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	return q[i].at < q[j].at || (q[i].at == q[j].at && q[i].seq < q[j].seq)
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

type node struct {
	idx      int
	id       peer.ID
	org      int
	external bool
	m        *tree.Machine
	up       bool
	upSince  time.Duration
	hops     [][]int16 // the ledger: per channel, per block, hops of the first arrival, -1 if not held
	// handed counts, per channel and block, how often the application was handed the block; it
	// survives restarts, as the application's own store does.
	handed   [][]uint8
	pending  []tree.Announce
	flushAt  time.Duration // scheduled flush, -1 if none
	tickAt   time.Time     // scheduled tick, zero if none
	cands    []map[peer.ID]bool
	channels []bool
	// egressFree is when the node's egress queue has sent every payload handed to it.
	egressFree time.Duration
}

type blockStat struct {
	published  time.Duration
	members    int // eligible live members at publish, publisher included
	sends      int
	rootSends  int // sends by the publisher into its own org
	grafts     int
	lastAt     time.Duration
	deliveries int
}

type sim struct {
	cfg     Config
	rng     *rand.Rand
	epoch   time.Time
	now     time.Duration
	seq     uint64
	q       eventQueue
	nodes   []*node
	byID    map[peer.ID]int
	view    routing.View
	chIdx   map[string]int
	pubs    []int
	blocks  [][]blockStat
	floors  []time.Duration
	crashed []bool
	res     Result
	frames  int
}

// Run simulates cfg and returns its figures. It is deterministic in cfg.
func Run(cfg Config) Result {
	cfg.defaults()
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), epoch: time.Unix(1_000_000, 0), byID: map[peer.ID]int{}, chIdx: map[string]int{}}
	s.build()
	s.schedule()
	for len(s.q) > 0 {
		e := heap.Pop(&s.q).(event)
		s.now = e.at
		s.handle(e)
	}
	s.finish()
	return s.res
}

func (s *sim) build() {
	cfg := s.cfg
	s.view.ChannelOrgs = map[string][]string{}
	for i, ch := range cfg.Channels {
		s.chIdx[ch.Name] = i
		for _, o := range ch.Orgs {
			s.view.ChannelOrgs[ch.Name] = append(s.view.ChannelOrgs[ch.Name], orgName(o))
		}
		s.pubs = append(s.pubs, ch.Orgs[0]*cfg.PeersPerOrg)
	}
	for o := range cfg.Orgs {
		for p := range cfg.PeersPerOrg {
			n := &node{idx: len(s.nodes), id: peer.ID(fmt.Sprintf("o%03d-p%04d", o, p)), org: o, external: p < cfg.ExternalPerOrg, up: true, flushAt: -1}
			n.channels = make([]bool, len(cfg.Channels))
			chans := map[string]bool{}
			for c, ch := range cfg.Channels {
				if slices.Contains(ch.Orgs, o) {
					n.channels[c] = true
					chans[ch.Name] = true
				}
			}
			n.hops = make([][]int16, len(cfg.Channels))
			n.handed = make([][]uint8, len(cfg.Channels))
			for c := range cfg.Channels {
				n.hops[c] = slices.Repeat([]int16{-1}, cfg.Blocks)
				n.handed[c] = make([]uint8, cfg.Blocks)
			}
			s.byID[n.id] = n.idx
			s.nodes = append(s.nodes, n)
			s.view.Members = append(s.view.Members, routing.Member{ID: n.id, Org: orgName(o), External: n.external, Channels: chans, Alive: true})
		}
	}
	s.crashed = make([]bool, len(s.nodes))
	s.blocks = make([][]blockStat, len(cfg.Channels))
	for c := range cfg.Channels {
		s.blocks[c] = make([]blockStat, cfg.Blocks)
	}
	for _, n := range s.nodes {
		s.start(n)
	}
	s.floors = make([]time.Duration, len(cfg.Channels))
	for c := range cfg.Channels {
		s.floors[c] = s.floor(c)
		s.res.TFloor = max(s.res.TFloor, s.floors[c])
	}
	s.res.Peers = len(s.nodes)
}

func orgName(o int) string { return fmt.Sprintf("org%d", o) }

// start gives n a new machine on the current view.
func (s *sim) start(n *node) {
	m, err := tree.New(s.cfg.Tree, n.id, rand.New(rand.NewPCG(s.rng.Uint64(), uint64(n.idx))))
	if err != nil {
		panic(err)
	}
	n.m = m
	n.tickAt = time.Time{}
	s.setView(n)
}

func (s *sim) selfView(n *node) routing.View {
	v := s.view
	v.Self = s.view.Members[n.idx]
	return v
}

func (s *sim) setView(n *node) {
	v := s.selfView(n)
	n.m.SetView(v)
	n.cands = make([]map[peer.ID]bool, len(s.cfg.Channels))
	for c, ch := range s.cfg.Channels {
		cs := tree.Candidates(v, ch.Name, s.cfg.Tree.Doors)
		n.cands[c] = make(map[peer.ID]bool, len(cs))
		for _, x := range cs {
			n.cands[c][x.ID] = true
			n.m.ObserveRTT(x.ID, 2*s.latency(n.idx, s.byID[x.ID]))
		}
	}
}

// latency is the link's one-way latency, drawn once per unordered pair from the seed.
func (s *sim) latency(a, b int) time.Duration {
	base := s.cfg.IntraLatency
	if s.nodes[a].org != s.nodes[b].org {
		base = s.cfg.InterLatency
	}
	lo, hi := min(a, b), max(a, b)
	u := float64(splitmix(s.cfg.Seed^uint64(lo)<<32^uint64(hi))>>11) / (1 << 53)
	return time.Duration(float64(base) * (1 + s.cfg.Jitter*(2*u-1)))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// floor is the slowest eligible member's shortest path from the publisher over candidate links:
// the time a perfect tree needs.
func (s *sim) floor(c int) time.Duration {
	dist := make([]time.Duration, len(s.nodes))
	for i := range dist {
		dist[i] = math.MaxInt64
	}
	pub := s.pubs[c]
	dist[pub] = 0
	done := make([]bool, len(s.nodes))
	// Dijkstra by linear scan over a candidate graph with O(org size) links per node; fine for the
	// sizes simulated, since it runs once per channel.
	h := &distHeap{{pub, 0}}
	for h.Len() > 0 {
		x := heap.Pop(h).(distItem)
		if done[x.n] {
			continue
		}
		done[x.n] = true
		for p := range s.nodes[x.n].cands[c] {
			j := s.byID[p]
			if d := x.d + s.latency(x.n, j); d < dist[j] {
				dist[j] = d
				heap.Push(h, distItem{j, d})
			}
		}
	}
	var worst time.Duration
	for i, n := range s.nodes {
		if n.channels[c] && dist[i] != math.MaxInt64 {
			worst = max(worst, dist[i])
		}
	}
	return worst + s.transfer()
}

// transfer is how long one payload takes to leave a sender's egress queue, 0 without a limit.
func (s *sim) transfer() time.Duration {
	if s.cfg.PayloadBytes <= 0 || s.cfg.EgressMbps <= 0 {
		return 0
	}
	return time.Duration(float64(s.cfg.PayloadBytes*8) / (s.cfg.EgressMbps * 1e6) * float64(time.Second))
}

type distItem struct {
	n int
	d time.Duration
}
type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (s *sim) push(e event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *sim) schedule() {
	cfg := s.cfg
	for c := range cfg.Channels {
		// Channels publish staggered within the interval, so their blocks do not all start at once.
		off := time.Duration(c) * cfg.Interval / time.Duration(len(cfg.Channels))
		for b := range cfg.Blocks {
			s.push(event{at: off + time.Duration(b)*cfg.Interval, kind: evPublish, ch: c, num: uint64(b)})
		}
	}
	end := time.Duration(cfg.Blocks) * cfg.Interval
	if cfg.CrashFraction > 0 {
		s.push(event{at: cfg.CrashAt, kind: evCrash})
	}
	for range cfg.Churn {
		at := time.Duration(s.rng.Int64N(int64(max(end-cfg.Downtime-cfg.Detect, 1))))
		s.push(event{at: at, kind: evDown})
	}
	if cfg.FloodNumbers > 0 {
		s.push(event{at: cfg.FloodAt, kind: evFlood})
	}
	for at := time.Duration(0); at < end+cfg.Drain; at += 100 * time.Millisecond {
		s.push(event{at: at, kind: evSample})
	}
}
