package bench

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// recorder collects what every system reports, on one in-process clock:
// publish times, first arrivals (and whether push brought them), payload
// copies, leaks and bytes. It is safe for concurrent use; its methods are
// cheap because they run inside the systems' tracers.
type recorder struct {
	l     *layout
	start time.Time // a monotonic origin for every timestamp

	mu     sync.Mutex
	blocks map[blockID]*blockRec
	crash  crashRec // the crash fault, if the run has one (crash.go)
	// traces is what fabgossip's trees did toward each member for each
	// block, for the push misses (misses.go).
	traces map[pairID]*pairTrace

	// Payload copies transmitted (sent) and that reached a peer (received),
	// push and pull alike, and leaks.
	sentCopies atomic.Int64
	copies     atomic.Int64
	leaks      atomic.Int64

	// Bytes per peer as framed on the stream (length prefix included):
	// data is the dissemination protocols (push and pull, or GossipSub RPCs,
	// or the direct protocol); hello is fabgossip's handshake, kept apart.
	sent  []atomic.Int64
	hello []atomic.Int64

	// drops counts messages a system discarded, by "layer/kind/reason".
	dropMu sync.Mutex
	drops  map[string]int64
}

type blockID struct {
	ch  int
	num uint64
}

type blockRec struct {
	t0      time.Duration // publish time
	size    int
	arrival map[int]arrival // member peer index → first arrival
}

type arrival struct {
	at   time.Duration // since the recorder's start
	push bool
	from int // the peer index it came from, -1 if not known
}

func newRecorder(l *layout) *recorder {
	return &recorder{
		l:      l,
		start:  time.Now(),
		blocks: make(map[blockID]*blockRec),
		drops:  make(map[string]int64),
		sent:   make([]atomic.Int64, l.peers()+1), // +1: the outsider
		hello:  make([]atomic.Int64, l.peers()+1),
	}
}

func (r *recorder) now() time.Duration { return time.Since(r.start) }

// published records that block (ch, num) of size bytes is published now. It
// is called just before the system's publish call, so no arrival precedes it.
func (r *recorder) published(ch int, num uint64, size int) {
	at := r.now()
	r.mu.Lock()
	r.blocks[blockID{ch, num}] = &blockRec{t0: at, size: size, arrival: make(map[int]arrival, len(r.l.channels[ch].members))}
	r.mu.Unlock()
}

// arrived records that peer got block (ch, num); only the first arrival at a
// member counts, and the publisher's own copy never does.
func (r *recorder) arrived(ch int, num uint64, peer int, push bool) {
	r.arrivedFrom(ch, num, peer, push, -1)
}

// arrivedFrom is arrived with the index of the peer the copy came from.
func (r *recorder) arrivedFrom(ch int, num uint64, peer int, push bool, from int) {
	at := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.blocks[blockID{ch, num}]
	if b == nil || peer == r.l.channels[ch].publisher {
		return
	}
	if _, ok := b.arrival[peer]; !ok {
		b.arrival[peer] = arrival{at: at, push: push, from: from}
	}
}

// complete reports whether every published block reached every member.
func (r *recorder) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, b := range r.blocks {
		if r.missing(id.ch, b) {
			return false
		}
	}
	return true
}

func (r *recorder) bytesSent(peer int, n int) { r.sent[peer].Add(int64(n)) }

func (r *recorder) dropped(what string, n int) {
	r.dropMu.Lock()
	r.drops[what] += int64(n)
	r.dropMu.Unlock()
}

// counters is a snapshot of the byte counters.
type counters struct {
	sent, hello        []int64
	copies, sentCopies int64
}

func (r *recorder) snapshot() counters {
	c := counters{sent: make([]int64, len(r.sent)), hello: make([]int64, len(r.hello)), copies: r.copies.Load(), sentCopies: r.sentCopies.Load()}
	for i := range r.sent {
		c.sent[i] = r.sent[i].Load()
		c.hello[i] = r.hello[i].Load()
	}
	return c
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// window is what Run measured for one system, in the order it happened.
type window struct {
	idle     time.Duration
	idleFrom counters // start of the idle window
	pubFrom  counters // end of idle, first publish
	pubTo    counters // after the settle wait
	pubDur   time.Duration
	cpu      time.Duration // process CPU over the publish window
	// pubOnlyDur and pubOnlyCPU are the wall and CPU time from the first
	// publish to the last, without the settle wait: how busy the cores
	// were while blocks were coming.
	pubOnlyDur, pubOnlyCPU time.Duration
	peakHeap               uint64
}

// result turns the records into the metrics of BENCHMARK.md.
func (r *recorder) result(res *Result, w window, floors []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	const settle = 10 * time.Second // cov_final deadline
	var pairs, pushPairs, finalPairs, fullPush, blocks, pairs1s, full1s int
	var orgBlocks, orgFullPush, pubOrgFullPush int
	var tFull, ratio, pairLat []float64
	var idealBytes, deliveredBytes float64
	type chanAcc struct {
		blocks, pairs, pushPairs, fullPush, pubOrgFull int
		tFull                                          []float64
	}
	perChan := make([]chanAcc, len(r.l.channels))
	peerSum := make(map[int]float64)
	peerN := make(map[int]int)
	ids := make([]blockID, 0, len(r.blocks))
	for id := range r.blocks {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b blockID) int {
		if a.ch != b.ch {
			return a.ch - b.ch
		}
		return int(a.num) - int(b.num)
	})
	for _, id := range ids {
		b := r.blocks[id]
		ch := r.l.channels[id.ch]
		acc := &perChan[id.ch]
		blocks++
		acc.blocks++
		full, allPush := true, true
		orgPush := map[int]bool{}
		var worst time.Duration
		for _, p := range ch.members {
			if !r.expects(id.ch, p) { // the publisher, or a crashed peer
				continue
			}
			pairs++
			acc.pairs++
			idealBytes += float64(b.size)
			a, ok := b.arrival[p]
			if _, seen := orgPush[r.l.org[p]]; !seen {
				orgPush[r.l.org[p]] = true
			}
			if !ok || !a.push {
				allPush = false
				orgPush[r.l.org[p]] = false
			}
			if ok && a.push {
				pushPairs++
				acc.pushPairs++
			}
			if !ok || a.at-b.t0 > settle {
				full = false
				continue
			}
			finalPairs++
			deliveredBytes += float64(b.size)
			lat := a.at - b.t0
			if lat <= time.Second {
				pairs1s++
			}
			worst = max(worst, lat)
			ms := float64(lat) / float64(time.Millisecond)
			pairLat = append(pairLat, ms)
			peerSum[p] += ms
			peerN[p]++
		}
		for org, ok := range orgPush {
			orgBlocks++
			if ok {
				orgFullPush++
				if org == r.l.org[ch.publisher] {
					pubOrgFullPush++
					acc.pubOrgFull++
				}
			}
		}
		if allPush {
			fullPush++
			acc.fullPush++
		}
		if full && worst <= time.Second {
			full1s++
		}
		if full {
			ms := float64(worst) / float64(time.Millisecond)
			tFull = append(tFull, ms)
			acc.tFull = append(acc.tFull, ms)
			if f := floors[id.ch]; f > 0 {
				ratio = append(ratio, float64(worst)/float64(f))
			}
		}
	}
	res.Blocks = blocks
	res.Pairs = pairs
	res.CovPush = frac(pushPairs, pairs)
	res.PFullPush = frac(fullPush, blocks)
	res.PFullPushPerOrg = frac(orgFullPush, orgBlocks)
	res.PFullPushPublisherOrg = frac(pubOrgFullPush, blocks)
	res.CovFinal = frac(finalPairs, pairs)
	res.BlocksFull = frac(len(tFull), blocks)
	res.Cov1s = frac(pairs1s, pairs)
	res.PFull1s = frac(full1s, blocks)
	slices.Sort(tFull)
	slices.Sort(ratio)
	slices.Sort(pairLat)
	res.TFullP50Ms = quantile(tFull, 0.50)
	res.TFullP99Ms = quantile(tFull, 0.99)
	res.TFullMaxMs = quantile(tFull, 1)
	res.TFullMs = make([]float64, len(tFull))
	for i, ms := range tFull {
		res.TFullMs[i] = math.Round(ms*100) / 100
	}
	res.TFullOverFloor = quantile(ratio, 0.50)
	res.TFullP99OverFloor = quantile(ratio, 0.99)
	res.PeerP50Ms = quantile(pairLat, 0.50)
	res.PeerP99Ms = quantile(pairLat, 0.99)
	if len(peerN) > 0 {
		lo, hi := -1.0, 0.0
		for p, n := range peerN {
			m := peerSum[p] / float64(n)
			if lo < 0 || m < lo {
				lo = m
			}
			hi = max(hi, m)
		}
		res.FairnessMs = hi - lo
	}
	for _, f := range floors {
		res.FloorMs = append(res.FloorMs, float64(f)/float64(time.Millisecond))
	}
	for c, acc := range perChan {
		slices.Sort(acc.tFull)
		res.Channels = append(res.Channels, ChannelResult{
			Name: r.l.channels[c].name, Orgs: len(r.l.channels[c].orgs), Members: len(r.l.channels[c].members), Blocks: acc.blocks,
			CovPush: frac(acc.pushPairs, acc.pairs), PFullPush: frac(acc.fullPush, acc.blocks),
			PFullPushPublisherOrg: frac(acc.pubOrgFull, acc.blocks),
			TFullP50Ms:            quantile(acc.tFull, 0.50), TFullP99Ms: quantile(acc.tFull, 0.99),
			FloorMs: float64(floors[c]) / float64(time.Millisecond),
		})
	}

	res.Crash = r.crashResult()
	if r.traces != nil {
		res.PushMisses, res.PushMissCount = r.pushMisses()
	}

	copies := w.pubTo.copies - w.pubFrom.copies
	sentCopies := w.pubTo.sentCopies - w.pubFrom.sentCopies
	if finalPairs > 0 {
		res.RMR = float64(sentCopies)/float64(finalPairs) - 1
		res.DuplicatesPerDelivery = max(0, float64(copies-int64(finalPairs))/float64(finalPairs))
	}
	res.Leaks = r.leaks.Load()
	r.dropMu.Lock()
	if len(r.drops) > 0 {
		res.Drops = make(map[string]int64, len(r.drops))
		for k, v := range r.drops {
			res.Drops[k] = v
		}
	}
	r.dropMu.Unlock()

	// Bytes: everything the dissemination protocols framed during the
	// publish window, less the idle rate over the same time (the control
	// traffic that flows anyway), over the ideal size(b) × |E(b)|.
	idleBytes := float64(sum(w.pubFrom.sent) - sum(w.idleFrom.sent))
	idleRate := 0.0
	if w.idle > 0 {
		idleRate = idleBytes / w.idle.Seconds()
		if m := r.l.memberships(); m > 0 {
			res.IdleControlBytesPerSPerPeerPerChannel = idleRate / float64(m)
		}
	}
	runBytes := float64(sum(w.pubTo.sent) - sum(w.pubFrom.sent))
	attributable := max(0, runBytes-idleRate*w.pubDur.Seconds())
	if idealBytes > 0 {
		res.AWire = attributable / idealBytes
		res.AWireRaw = runBytes / idealBytes
	}
	res.BytesPerBlock = attributable / float64(max(blocks, 1))
	var pubBytes float64
	pubs := map[int]bool{}
	for _, ch := range r.l.channels {
		pubs[ch.publisher] = true
	}
	for p := range pubs {
		pubBytes += float64(w.pubTo.sent[p] - w.pubFrom.sent[p])
	}
	res.PublisherEgressBytesPerBlock = pubBytes / float64(max(blocks, 1))
	res.HelloBytes = sum(w.pubTo.hello) - sum(w.idleFrom.hello)

	res.CPUSeconds = w.cpu.Seconds()
	if deliveredBytes > 0 {
		res.CPUSPerDeliveredMB = w.cpu.Seconds() / (deliveredBytes / 1e6)
	}
	if w.pubOnlyDur > 0 {
		res.CPUUtilisation = w.pubOnlyCPU.Seconds() / (w.pubOnlyDur.Seconds() * float64(cores()))
	}
	res.CPUBound = res.CPUUtilisation > 0.70
	res.PeakHeapMB = float64(w.peakHeap) / (1 << 20)
	res.PublishSeconds = w.pubDur.Seconds()
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// quantile returns the q-quantile of sorted xs (nearest rank), 0 if empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.5) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
