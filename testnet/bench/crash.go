package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// The crash fault of BENCHMARK.md ("10% of peers crash mid-run"): with
// Options.CrashFraction set, once every channel has published half of its
// blocks, round(fraction × peers) peers stop without a goodbye, and the run
// goes on with the others. E(b), the peers expected to receive block b, is
// the members of b's channel alive at b's publish; the crashed peers are left
// out of E(b) for every block of the run, including those published before
// the crash, since whether a peer that dies while the block is in flight got
// it measures the crash instant, not the system.

// crashLiveDeadline is the crash target's deadline: 100% of live peers
// within 2 s of the publish.
const crashLiveDeadline = 2 * time.Second

// CrashResult is what a run with a crash fault measured about it. The
// Result's other metrics hold too, over E(b) without the crashed peers.
type CrashResult struct {
	Fraction float64 `json:"crash_fraction"`
	// CrashedPeers are the peer indices that crashed.
	CrashedPeers []int `json:"crashed_peers"`
	// CrashAtSeconds is when the crash began, after the run's first
	// publish; CrashTookMs is how long the crash call took.
	CrashAtSeconds float64 `json:"crash_at_seconds"`
	CrashTookMs    float64 `json:"crash_took_ms"`
	// PostCrashBlocks are the blocks published after the crash began, and
	// PostCrashPairs their (block, live member) pairs, publisher aside: what
	// the post_crash metrics are over.
	PostCrashBlocks int `json:"post_crash_blocks"`
	PostCrashPairs  int `json:"post_crash_pairs"`
	// LiveCov2s is the fraction of those pairs delivered within 2 s of the
	// publish, and PostCrashPFull2s the fraction of those blocks that every
	// live member had within 2 s (the target: 100% of live peers in 2 s).
	LiveCov2s        float64 `json:"live_cov_2s"`
	PostCrashPFull2s float64 `json:"post_crash_p_full_2s"`
	// PostCrashCovFinal is the fraction of the pairs delivered within 10 s.
	PostCrashCovFinal float64 `json:"post_crash_cov_final"`
	// T_full over the post-crash blocks that reached every live member
	// within 10 s.
	PostCrashTFullP50Ms float64 `json:"post_crash_t_full_p50_ms"`
	PostCrashTFullP99Ms float64 `json:"post_crash_t_full_p99_ms"`
	PostCrashTFullMaxMs float64 `json:"post_crash_t_full_max_ms"`
}

func (c *CrashResult) String() string {
	return fmt.Sprintf("crashed peers %v at %.2f s (took %.0f ms): after it, live_cov_2s %.4f P_full within 2 s %.3f cov_final %.4f T_full p50 %.0f ms p99 %.0f ms over %d blocks",
		c.CrashedPeers, c.CrashAtSeconds, c.CrashTookMs, c.LiveCov2s, c.PostCrashPFull2s, c.PostCrashCovFinal, c.PostCrashTFullP50Ms, c.PostCrashTFullP99Ms, c.PostCrashBlocks)
}

// crashCount is how many peers a crash fraction f crashes: round(f × peers).
func crashCount(l *layout, f float64) (int, error) {
	if f <= 0 || f >= 1 || math.IsNaN(f) {
		return 0, fmt.Errorf("bench: crash fraction %v out of range (0, 1)", f)
	}
	n := int(math.Round(f * float64(l.peers())))
	if n == 0 {
		return 0, fmt.Errorf("bench: crash fraction %v of %d peers crashes none", f, l.peers())
	}
	return n, nil
}

// crashVictims chooses the peers a crash fraction f crashes, with seed:
// round(f × peers) of them, spread over the orgs (round-robin over the orgs
// in a seeded order, a seeded random eligible peer of each in turn, so the
// orgs' counts differ by at most one unless an org runs out). Never
// eligible: a channel's publisher (blocks must keep coming), a channel's
// curious non-member (the leak probe), and an org's last live external peer
// (an org with every door down is cut off by design, in fabgossip and Fabric
// alike: that would measure the topology, not repair). Ascending.
func crashVictims(l *layout, f float64, seed uint64) ([]int, error) {
	n, err := crashCount(l, f)
	if err != nil {
		return nil, err
	}
	protected := map[int]bool{}
	for _, ch := range l.channels {
		protected[ch.publisher] = true
		if ch.curious >= 0 {
			protected[ch.curious] = true
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x6372617368)) // "crash"
	cands := make([][]int, len(l.topo.Orgs))
	externals := make([]int, len(l.topo.Orgs)) // live external peers per org
	for p, o := range l.org {
		if l.external[p] {
			externals[o]++
		}
		if !protected[p] {
			cands[o] = append(cands[o], p)
		}
	}
	order := rng.Perm(len(cands))
	for _, c := range cands {
		rng.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
	}
	var out []int
	for len(out) < n {
		took := false
		for _, o := range order {
			for len(out) < n && len(cands[o]) > 0 {
				p := cands[o][0]
				cands[o] = cands[o][1:]
				if l.external[p] {
					if externals[o] <= 1 {
						continue // the org's last door
					}
					externals[o]--
				}
				out = append(out, p)
				took = true
				break
			}
		}
		if !took {
			return nil, fmt.Errorf("bench: crash fraction %v wants %d peers, but only %d may crash (publishers, curious non-members and each org's last external peer may not)", f, n, len(out))
		}
	}
	slices.Sort(out)
	return out, nil
}

// crasher crashes the run's victims once every channel has published half
// of its blocks. publishAll calls published after each publish and stop when
// publishing is over; the crash runs on the crasher's own goroutine, so no
// channel's publishing waits for it.
type crasher struct {
	s        sut
	rec      *recorder
	fraction float64
	peers    []int
	half     uint64
	left     atomic.Int64 // channels that have not published their half yet
	due      chan struct{}
	stopCh   chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	err      error // written by the goroutine, read after wg.Wait
}

// startCrasher returns nil (a no-op crasher) without a crash fault.
func startCrasher(ctx context.Context, s sut, env *runEnv, o Options) (*crasher, error) {
	if o.CrashFraction <= 0 {
		return nil, nil
	}
	peers, err := crashVictims(env.l, o.CrashFraction, env.seed)
	if err != nil {
		return nil, err
	}
	c := &crasher{s: s, rec: env.rec, fraction: o.CrashFraction, peers: peers, half: uint64(max(1, o.Blocks/2)), due: make(chan struct{}), stopCh: make(chan struct{})}
	c.left.Store(int64(len(env.l.channels)))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-c.due:
		case <-ctx.Done():
			return
		case <-c.stopCh:
			select {
			case <-c.due: // publishing ended right after the half-way point
			default:
				return
			}
		}
		c.rec.crashBegin(c.fraction, c.peers)
		if err := c.s.crash(c.peers); err != nil {
			c.err = fmt.Errorf("crash peers %v: %w", c.peers, err)
		}
		c.rec.crashEnd()
	}()
	return c, nil
}

// published is called after block num of a channel was published.
func (c *crasher) published(num uint64) {
	if c == nil || num+1 != c.half {
		return
	}
	if c.left.Add(-1) == 0 {
		close(c.due)
	}
}

// stop waits for the crash, if it is due, and returns its error. Without a
// due crash (publishing failed early) it ends the goroutine.
func (c *crasher) stop() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() { close(c.stopCh) })
	c.wg.Wait()
	return c.err
}

// crashRec is the recorder's record of the crash; the recorder's mu guards
// it.
type crashRec struct {
	fraction   float64
	peers      map[int]bool
	list       []int
	begin, end time.Duration
	ended      bool
}

func (r *recorder) crashBegin(fraction float64, peers []int) {
	at := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crash.fraction = fraction
	r.crash.peers = make(map[int]bool, len(peers))
	for _, p := range peers {
		r.crash.peers[p] = true
	}
	r.crash.list = slices.Clone(peers)
	r.crash.begin = at
}

func (r *recorder) crashEnd() {
	at := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crash.end, r.crash.ended = at, true
}

// expects reports whether peer p of channel ch is in E(b) for ch's blocks:
// a member, not the publisher, not crashed. r.mu is held.
func (r *recorder) expects(ch, p int) bool {
	return p != r.l.channels[ch].publisher && !r.crash.peers[p]
}

// missing reports whether a peer of E(b) lacks block b of channel ch. r.mu
// is held.
func (r *recorder) missing(ch int, b *blockRec) bool {
	if len(r.crash.peers) == 0 {
		return len(b.arrival) < len(r.l.channels[ch].members)-1
	}
	for _, p := range r.l.channels[ch].members {
		if _, ok := b.arrival[p]; !ok && r.expects(ch, p) {
			return true
		}
	}
	return false
}

// crashResult computes the post-crash metrics, nil without a crash. r.mu is
// held.
func (r *recorder) crashResult() *CrashResult {
	if r.crash.peers == nil {
		return nil
	}
	const settle = 10 * time.Second // cov_final deadline
	first := time.Duration(-1)
	for _, b := range r.blocks {
		if first < 0 || b.t0 < first {
			first = b.t0
		}
	}
	c := &CrashResult{Fraction: r.crash.fraction, CrashedPeers: slices.Clone(r.crash.list), CrashAtSeconds: (r.crash.begin - max(first, 0)).Seconds()}
	if r.crash.ended {
		c.CrashTookMs = float64(r.crash.end-r.crash.begin) / float64(time.Millisecond)
	}
	var in2s, final, full2s int
	var tFull []float64
	for id, b := range r.blocks {
		if b.t0 < r.crash.begin {
			continue
		}
		c.PostCrashBlocks++
		all2s, all := true, true
		var worst time.Duration
		for _, p := range r.l.channels[id.ch].members {
			if !r.expects(id.ch, p) {
				continue
			}
			c.PostCrashPairs++
			a, ok := b.arrival[p]
			lat := a.at - b.t0
			if !ok || lat > settle {
				all, all2s = false, false
				continue
			}
			final++
			worst = max(worst, lat)
			if lat <= crashLiveDeadline {
				in2s++
			} else {
				all2s = false
			}
		}
		if all2s {
			full2s++
		}
		if all {
			tFull = append(tFull, float64(worst)/float64(time.Millisecond))
		}
	}
	c.LiveCov2s = frac(in2s, c.PostCrashPairs)
	c.PostCrashCovFinal = frac(final, c.PostCrashPairs)
	c.PostCrashPFull2s = frac(full2s, c.PostCrashBlocks)
	slices.Sort(tFull)
	c.PostCrashTFullP50Ms = quantile(tFull, 0.50)
	c.PostCrashTFullP99Ms = quantile(tFull, 0.99)
	c.PostCrashTFullMaxMs = quantile(tFull, 1)
	return c
}

// crashHost makes h vanish as a crashed process does, with no goodbye:
// first its mocknet links go (mn may be nil: real hosts have none), so
// nothing can dial it again, not even a dialer racing the crash; then the
// host closes, which closes its connections, so the other side sees every
// open stream reset rather than ended.
func crashHost(mn mocknet.Mocknet, h host.Host) error {
	var errs []error
	if mn != nil {
		for _, p := range mn.Peers() {
			if p != h.ID() && len(mn.LinksBetweenPeers(h.ID(), p)) > 0 {
				errs = append(errs, mn.UnlinkPeers(h.ID(), p))
			}
		}
	}
	errs = append(errs, h.Close())
	return errors.Join(errs...)
}

// crash crashes fabgossip peers: host first, then node. Closing the node
// first would not be a crash: node.Close drains the emitter, sending what it
// still buffers; with the host gone first, those sends fail as they would
// after a crash, and the node's close only ends its goroutines.
func (s *fabgossipSUT) crash(peers []int) error {
	var errs []error
	for _, i := range peers {
		errs = append(errs, crashHost(s.c.Mocknet, s.c.Peers[i].Host), s.c.Stop(i))
	}
	return errors.Join(errs...)
}

// crash crashes GossipSub peers by closing their hosts. Their routers stay
// in memory until the run closes, cut off: a closed host has no connection
// and can open none.
func (s *gossipSubSUT) crash(peers []int) error {
	var errs []error
	for _, i := range peers {
		errs = append(errs, crashHost(s.mn, s.hosts[i]))
	}
	return errors.Join(errs...)
}

// crash crashes direct members by closing their hosts: the publisher's
// writer to a dead member fails its next write (the stream is reset with the
// connection), drains its queue and never blocks the publish loop, which
// only ever enqueues without waiting.
func (s *directSUT) crash(peers []int) error {
	var errs []error
	for _, i := range peers {
		errs = append(errs, crashHost(s.mn, s.hosts[i]))
	}
	return errors.Join(errs...)
}

// hostList is a system's hosts by peer index (the outsider last, if any),
// kept for crash.
type hostList []host.Host

// crashMarkdown is the crash table of a report, "" when no run crashed
// peers: the main table keeps its columns either way.
func crashMarkdown(results []Result) string {
	var b strings.Builder
	for _, x := range results {
		if x.Error != "" || x.Crash == nil {
			continue
		}
		c := x.Crash
		if b.Len() == 0 {
			fmt.Fprintf(&b, "Crash fault: %.0f%% of the peers crash (host and node closed, no goodbye) once every channel has published half of its blocks; E(b) leaves the crashed peers out for every block. After the crash:\n\n", 100*c.Fraction)
			b.WriteString("| system | size | seed | crashed peers | crash at (s) | blocks | live_cov_2s | P_full within 2 s | cov_final | T_full p50 / p99 / max (ms) |\n")
			b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.2f | %d | %.4f | %.3f | %.4f | %.0f / %.0f / %.0f |\n",
			x.System, sizeName(x.BlockSize), x.Seed, ints(c.CrashedPeers), c.CrashAtSeconds, c.PostCrashBlocks,
			c.LiveCov2s, c.PostCrashPFull2s, c.PostCrashCovFinal, c.PostCrashTFullP50Ms, c.PostCrashTFullP99Ms, c.PostCrashTFullMaxMs)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
