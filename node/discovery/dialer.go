package discovery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// maxRateEntries bounds the memory of candidate rate limiting: past it,
// entries older than the redial interval are swept, and if that is not
// enough the table is reset (which at worst allows one early redial per
// peer; dials stay bounded by the slots).
const maxRateEntries = 4096

// dialer connects to candidates: at most cap(slots) dials at once, one per
// peer, each bounded by timeout, and a peer not again within minInterval.
// Dial goroutines are counted in the Discovery's WaitGroup.
type dialer struct {
	h           host.Host
	timeout     time.Duration
	slots       chan struct{}
	minInterval time.Duration
	now         func() time.Time
	tracer      Tracer
	log         *slog.Logger

	mu       sync.Mutex
	ctx      context.Context // nil until start, and after stop
	wg       *sync.WaitGroup
	inflight map[peer.ID]bool
	lastTry  map[peer.ID]time.Time
}

// start lets try dial, with goroutines bound to ctx and counted in wg.
func (d *dialer) start(ctx context.Context, wg *sync.WaitGroup) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx, d.wg = ctx, wg
}

// stop makes try a no-op; dials in flight end with their context.
func (d *dialer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = nil
}

// try dials ai in the background if it should be (see
// Discovery.AddCandidate), and reports whether a dial was started. ai.Addrs
// are handed to Connect, which adds them to the peerstore.
func (d *dialer) try(src Source, ai peer.AddrInfo) bool {
	d.tracer.CandidateFound(src, ai.ID)
	if ai.ID == d.h.ID() || d.h.Network().Connectedness(ai.ID) == network.Connected {
		return false
	}
	now := d.now()
	d.mu.Lock()
	if d.ctx == nil || d.ctx.Err() != nil || d.inflight[ai.ID] {
		d.mu.Unlock()
		return false
	}
	if last, ok := d.lastTry[ai.ID]; ok && now.Sub(last) < d.minInterval {
		d.mu.Unlock()
		return false
	}
	select {
	case d.slots <- struct{}{}:
	default:
		d.mu.Unlock()
		d.log.Debug("all dial slots busy, candidate dropped", "peer", ai.ID, "source", src)
		return false
	}
	d.inflight[ai.ID] = true
	d.recordLocked(ai.ID, now)
	ctx := d.ctx
	d.wg.Add(1) // under mu, so never after stop's Wait has begun
	d.mu.Unlock()

	go func() {
		defer d.wg.Done()
		err := connect(ctx, d.h, ai, d.timeout)
		<-d.slots
		d.mu.Lock()
		delete(d.inflight, ai.ID)
		d.mu.Unlock()
		d.tracer.Dialed(src, ai.ID, err)
		if err != nil && ctx.Err() == nil {
			d.log.Debug("candidate dial failed", "peer", ai.ID, "source", src, "err", err)
		}
	}()
	return true
}

func (d *dialer) recordLocked(p peer.ID, now time.Time) {
	if len(d.lastTry) >= maxRateEntries {
		for q, t := range d.lastTry {
			if now.Sub(t) >= d.minInterval {
				delete(d.lastTry, q)
			}
		}
		if len(d.lastTry) >= maxRateEntries {
			clear(d.lastTry)
		}
	}
	d.lastTry[p] = now
}

// connect dials ai within timeout. It skips libp2p's dial back-off
// (network.WithForceDirectDial): discovery paces its own retries, and the
// swarm's back-off (5 s and up after a failure) would otherwise make a
// retry of a peer that has just come up fail.
func connect(ctx context.Context, h host.Host, ai peer.AddrInfo, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = network.WithForceDirectDial(ctx, "fabgossip discovery paces its own redials")
	return h.Connect(ctx, ai)
}
